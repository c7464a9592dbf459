"""The command line and the README's main job (the digits recipe learns, not only runs)."""

import pytest

from flowgrad import recipes
from flowgrad.cli import main


def test_list_names_every_recipe(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    for name in recipes.RECIPES:
        assert name in out


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown recipe 'nope'; available: digits_mlp"):
        main(["train", "nope"])


def test_digits_recipe_learns(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["train", "digits_mlp", "--epochs", "8", "--out", str(tmp_path)]) == 0
    summary = recipes.get("digits_mlp").run(epochs=8, out=str(tmp_path), progress=False)
    assert summary["test_accuracy"] > 0.9
    assert (tmp_path / "digits_mlp.md").exists() and (tmp_path / "digits_mlp.json").exists()
    assert (tmp_path / "digits_mlp_curves.png").stat().st_size > 1000


def test_options_reach_the_recipe_only_when_it_accepts_them(monkeypatch, tmp_path):
    seen = {}

    def fake_run(out, quick, steps=None, seeds=None):
        seen.update(out=out, quick=quick, steps=steps, seeds=seeds)
        return {"seed": 0}

    monkeypatch.setattr(recipes.get("mnist1d"), "run", fake_run)
    main(["train", "mnist1d", "--seeds", "3", "--steps", "10", "--epochs", "4", "--quick",
          "--out", str(tmp_path)])
    assert seen == {"out": str(tmp_path), "quick": True, "steps": 10, "seeds": 3}


def test_bare_options_run_the_embedded_default(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(recipes.get("digits_mlp"), "run",
                        lambda out, quick, epochs=None: seen.update(out=out, epochs=epochs)
                        or {"seed": 0})
    main(["--epochs", "2", "--out", str(tmp_path)])
    assert seen == {"out": str(tmp_path), "epochs": 2}

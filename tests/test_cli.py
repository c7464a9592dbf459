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


# --- where a run writes: its own directory by default, results/ only with --publish ---------

def _git_repo(path):
    """A git repository at ``path`` whose .gitignore is the project's (runs/ ignored)."""
    import shutil
    import subprocess
    from pathlib import Path

    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / ".gitignore", path / ".gitignore")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(path), "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([git, *args], cwd=path, env=env, check=True,
                              capture_output=True, text=True).stdout

    run("init", "-q")
    run("add", ".gitignore")
    run("commit", "-q", "-m", "init")
    return run


def test_a_run_without_flags_writes_its_own_run_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    git = _git_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["--epochs", "2"]) == 0  # the README's main command: python -m flowgrad
    assert not (tmp_path / "results").exists()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("digits_mlp-")
    assert (run_dir / "digits_mlp.md").exists() and (run_dir / "digits_mlp.json").exists()
    assert git("status", "--porcelain") == ""  # runs/ is ignored: the tree stays clean
    out = capsys.readouterr().out
    assert f"results written to runs/{run_dir.name}/" in out


def test_publish_writes_results(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "digits_mlp", "--epochs", "1", "--publish"]) == 0
    assert (tmp_path / "results" / "digits_mlp.md").exists()
    assert not (tmp_path / "runs").exists()
    assert "results written to results/" in capsys.readouterr().out


def test_publish_and_out_or_quick_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "digits_mlp", "--publish", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["train", "digits_mlp", "--publish", "--quick"])


def test_out_chooses_the_directory(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(recipes.get("digits_mlp"), "run",
                        lambda out, quick, **kw: seen.update(out=out) or {"seed": 0})
    monkeypatch.chdir(tmp_path)
    main(["train", "digits_mlp"])
    assert seen["out"].startswith("runs/digits_mlp-")
    main(["train", "digits_mlp", "--publish"])
    assert seen["out"] == "results"
    main(["train", "digits_mlp", "--out", "elsewhere"])
    assert seen["out"] == "elsewhere"


def test_the_recorded_command_line_reproduces_the_options(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    import functools
    import json
    import shlex

    argv = ["train", "digits_mlp", "--epochs", "3", "--lr", "0.05", "--batch-size", "16",
            "--seed", "2", "--set", "hidden=32", "--out", str(tmp_path)]
    assert main(argv) == 0
    command = json.loads((tmp_path / "digits_mlp.json").read_text())["command"]
    assert command == ("flowgrad train digits_mlp --epochs 3 --lr 0.05 --batch-size 16 "
                       "--seed 2 --set hidden=32")
    assert f"Command: `{command}`" in (tmp_path / "digits_mlp.md").read_text()
    module, calls = recipes.get("digits_mlp"), []
    fake = functools.wraps(module.run)(lambda **kw: calls.append(kw) or {"seed": 0})
    monkeypatch.setattr(module, "run", fake)  # same signature as the real run
    main(argv[:-2] + ["--out", "x"])
    main(shlex.split(command)[1:] + ["--out", "x"])  # what the .md says to run
    assert calls[0] == calls[1] == {"out": "x", "quick": False, "epochs": 3, "lr": 0.05,
                                    "batch_size": 16, "seed": 2, "hidden": 32}


def test_command_line_of_defaults_is_the_bare_recipe():
    from flowgrad.recipes.common import command_line

    run = recipes.get("mnist_cnn").run
    assert command_line("mnist_cnn", run, {"epochs": 8, "lr": 1e-3, "quick": False}) == \
        "flowgrad train mnist_cnn"
    assert command_line("mnist_cnn", run, {"epochs": 2, "lenet_epochs": 5, "quick": True}) == \
        "flowgrad train mnist_cnn --epochs 2 --set lenet_epochs=5 --quick"


def test_set_rejects_unknown_keys():
    with pytest.raises(SystemExit):
        main(["train", "digits_mlp", "--set", "nope=1"])


def test_tuple_options_round_trip_through_set():
    from flowgrad.cli import _value
    from flowgrad.recipes.common import command_line

    run = recipes.get("curriculum").run
    line = command_line("curriculum", run, {"switches": (0.25,), "hidden": (64, 32)})
    assert line == "flowgrad train curriculum --set switches=0.25, --set hidden=64,32"
    assert _value("0.25,") == (0.25,) and _value("64,32") == (64, 32)
    assert _value("mlp,") == ("mlp",) and _value("mlp,dcgan") == ("mlp", "dcgan")


def test_a_single_value_of_a_tuple_option_is_a_one_element_tuple(monkeypatch, tmp_path):
    """--set models=tr on a recipe whose default is a tuple of models runs the one model."""
    from flowgrad.cli import _as_default_kind
    from flowgrad.recipes import sort_of_clevr

    assert _as_default_kind("tr", ("tr", "tr_hsw")) == ("tr",)
    assert _as_default_kind(("tr",), ("tr", "tr_hsw")) == ("tr",)
    assert _as_default_kind("tr", "tr,tr_hsw") == "tr" and _as_default_kind(3, 1) == 3
    import functools

    seen = {}

    @functools.wraps(sort_of_clevr.run)  # the real signature, which the CLI reads
    def record(**kw):
        seen.update(kw)
        return {}

    monkeypatch.setattr(sort_of_clevr, "run", record)
    main(["train", "sort_of_clevr", "--set", "models=tr", "--out", str(tmp_path)])
    assert seen["models"] == ("tr",)


def test_command_line_of_a_seed_list_uses_set():
    """--seeds takes a count; a list of seeds (the scan recipe) is written as --set seeds=..."""
    from flowgrad.recipes.common import command_line
    from flowgrad.recipes.scan import run

    line = command_line("scan", run, {"seeds": (0, 3), "models": "attention", "quick": False})
    assert line == "flowgrad train scan --set models='attention' --set seeds=0,3"
    assert command_line("scan", run, {"seeds": 5}) == "flowgrad train scan --seeds 5"

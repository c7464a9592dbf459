"""The README's main job: the digits MLP learns (not only runs)."""

import pytest

from flowgrad.cli import main, train_digits_mlp


def test_digits_mlp_learns():
    pytest.importorskip("sklearn")
    result = train_digits_mlp(epochs=8, progress=False)
    assert result["losses"][-1] < 0.5 * result["losses"][0]
    assert result["test_accuracy"] > 0.9


def test_main_prints_test_accuracy(capsys):
    pytest.importorskip("sklearn")
    assert main(["demo", "--epochs", "2"]) == 0
    assert "test accuracy" in capsys.readouterr().out

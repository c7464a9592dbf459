"""Each recipe's short variant learns (the full runs are recipes, not tests: results/)."""

import pytest

from flowgrad import recipes
from flowgrad.datasets import MNIST


def _have_mnist() -> bool:
    try:
        MNIST(train=False, download=False)
        return True
    except Exception:
        return False


needs_mnist = pytest.mark.skipif(not _have_mnist(), reason="MNIST files not found")


@needs_mnist
def test_mnist_mlp_quick_learns(tmp_path):
    s = recipes.get("mnist_mlp").run(out=str(tmp_path), quick=True, progress=False)
    assert s["test_error"] < 0.5  # chance is 0.9


@needs_mnist
def test_mnist_cnn_quick_learns(tmp_path):
    s = recipes.get("mnist_cnn").run(out=str(tmp_path), quick=True, progress=False)
    assert s["test_error"] < 0.75


@needs_mnist
def test_relu_vs_tanh_quick_learns(tmp_path):
    s = recipes.get("relu_vs_tanh").run(out=str(tmp_path), quick=True, progress=False)
    assert s["relu_final_train_loss"] < 2.2  # log(10) = 2.303 at chance


def test_mnist1d_quick_learns(tmp_path):
    s = recipes.get("mnist1d").run(out=str(tmp_path), quick=True, progress=False)
    assert s["cnn_test_accuracy"] > 0.5 and s["logistic_test_accuracy"] > 0.2


def test_debug_stats_quick_names_the_problems(tmp_path):
    s = recipes.get("debug_stats").run(out=str(tmp_path), quick=True, progress=False)
    assert s["sigmoid_small_init_verdict"].startswith("vanishing")
    assert s["relu_kaiming_verdict"] == "fine"
    assert s["curves_mlp_500_verdict"] == "overfitting"


def test_every_recipe_is_registered_and_runnable():
    for name in recipes.RECIPES:
        module = recipes.get(name)
        assert callable(module.run) and isinstance(module.DEFAULTS, dict), name

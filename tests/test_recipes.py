"""Every recipe's short variant runs into a temporary directory, writes its .md and .json, and
learns where that is meaningful (the full runs are recipes, not tests: results/)."""

import json

import pytest

from flowgrad import recipes
from flowgrad.datasets import MNIST, FashionMNIST


def _have(cls) -> bool:
    try:
        cls(train=False, download=False)
        return True
    except Exception:
        return False


HAVE_MNIST, HAVE_FASHION = _have(MNIST), _have(FashionMNIST)
NEEDS = {"mnist_mlp": HAVE_MNIST, "mnist_cnn": HAVE_MNIST, "relu_vs_tanh": HAVE_MNIST,
         "fashion_mnist": HAVE_FASHION}

# what "learns" means for each short variant (chance: 0.9 error on ten classes, log 10 = 2.303)
LEARNS = {
    "digits_mlp": lambda s: s["test_accuracy"] > 0.8,
    "mnist_mlp": lambda s: s["test_error"] < 0.5 and s["modern_test_error"] < 0.5,
    "mnist_cnn": lambda s: s["test_error"] < 0.5 and s["modern_test_error"] < 0.75,
    "fashion_mnist": lambda s: s["cnn_test_error"] < 0.75 and s["mlp_test_error"] < 0.75,
    "mnist1d": lambda s: s["cnn_test_accuracy"] > 0.5 and s["logistic_test_accuracy"] > 0.2,
    "relu_vs_tanh": lambda s: s["relu_final_train_loss"] < 2.2,
    "debug_checks": lambda s: s["healthy_all_fine"] and s["bugs_caught"] == s["planted_bugs"],
    "debug_stats": lambda s: (s["sigmoid_small_init_verdict"].startswith("vanishing")
                              and s["relu_kaiming_verdict"] == "fine"
                              and s["curves_mlp_500_verdict"] == "overfitting"),
    "validate_analyze": lambda s: s["cnn_test_error"] < 0.8,
    "noise_injection": lambda s: s["gradient_noise_train_loss_mean"] < 2.2,
    "curriculum": lambda s: s["no_curriculum_test_error_mean"] < 0.6,  # chance 2/3
    "guided_training": lambda s: s["guided_test_error_mean"] < 0.4,  # chance 1/2
    "saddle_points": lambda s: s["final_loss_mean"] < s["initial_loss_mean"] - 0.5,
    "backprop_cost": lambda s: s["backprop_slope"] < s["finite_differences_slope"],
}


def test_every_recipe_has_a_learning_check():
    assert set(LEARNS) == set(recipes.RECIPES)


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_quick_variant_runs_writes_and_learns(name, tmp_path):
    if not NEEDS.get(name, True):
        pytest.skip("MNIST / Fashion-MNIST files not found")
    module = recipes.get(name)
    assert isinstance(module.DEFAULTS, dict)
    s = module.run(out=str(tmp_path), quick=True, progress=False)
    assert LEARNS[name](s), {k: v for k, v in s.items() if isinstance(v, (int, float, str))}
    md, js = tmp_path / f"{name}.md", tmp_path / f"{name}.json"
    assert md.exists() and js.exists(), sorted(p.name for p in tmp_path.iterdir())
    assert s["command"] == f"flowgrad train {name} --quick"
    assert f"Command: `{s['command']}`" in md.read_text()
    assert json.loads(js.read_text())["command"] == s["command"]
    if name in ("mnist_mlp", "mnist_cnn", "fashion_mnist"):  # the honest protocol
        text = md.read_text()
        assert f"validation is {s['splits']['valid']:,} of the last 10,000 training" in text
        from flowgrad.recipes.common import held_out

        assert held_out(10_000, 10_000) == "the last 10,000 training images"
        assert "no published counterpart" in text
        csv = next(tmp_path.glob("*_history.csv")).read_text().splitlines()[0]
        assert "valid_error" in csv and "test" not in csv
    if name == "mnist_cnn":
        assert s["splits"] == {"train": 1000, "valid": 500, "test": 1000}
        assert "0.95% (LeNet-5, no distortions)" in md.read_text()
        assert 1 <= s["best_epoch"] <= s["epochs"]


def test_split_validation_holds_out_the_last_examples():
    import numpy as np

    from flowgrad.recipes.common import split_validation

    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (xtr, ytr), (xva, yva) = split_validation(x, y, 3)
    assert ytr.tolist() == list(range(7)) and yva.tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        split_validation(x, y, 10)

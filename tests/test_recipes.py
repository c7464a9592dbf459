"""Every recipe's short variant runs into a temporary directory, writes its .md and .json, and
learns where that is meaningful (the full runs are recipes, not tests: results/)."""

import json

import pytest

from flowgrad import recipes
from flowgrad.datasets import MNIST, BrownCorpus, FashionMNIST, PennTreebank, load_sachs
from flowgrad.datasets.scan import SCAN


def _have(cls, **kwargs) -> bool:
    try:
        cls(**kwargs)
        return True
    except Exception:
        return False


HAVE_MNIST = _have(MNIST, train=False, download=False)
HAVE_FASHION = _have(FashionMNIST, train=False, download=False)
HAVE_PTB = _have(PennTreebank, download=False)
HAVE_BROWN = _have(BrownCorpus, download=False)
HAVE_SCAN = _have(SCAN, split="simple", download=False)
NEEDS = {"mnist_mlp": HAVE_MNIST, "mnist_cnn": HAVE_MNIST, "relu_vs_tanh": HAVE_MNIST,
         "fashion_mnist": HAVE_FASHION, "ptb_lstm": HAVE_PTB, "ptb_ngram": HAVE_PTB,
         "brown_nplm": HAVE_BROWN, "transformer_lm": HAVE_PTB, "scan": HAVE_SCAN,
         "sachs_structure": _have(load_sachs),
         "dcgan": HAVE_MNIST, "conditional_gan": HAVE_MNIST,
         "zero_shot": HAVE_FASHION, "data_fusion": HAVE_MNIST,
         "rims_seq_mnist": HAVE_MNIST,
         "gan_mnist": HAVE_MNIST, "multitask_tagging": HAVE_BROWN}

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
    "teacher_forcing": lambda s: s["teacher_forcing"]["valid_nll"] < s["uniform_nll"] - 1.0,
    "long_term_dependencies": lambda s: s["success_rate"]["lstm"]["5"] == 1.0,
    "ptb_lstm": lambda s: s["valid_ppl"] < 0.3 * s["initial_valid_ppl"],
    "ptb_ngram": lambda s: s["kn_test_ppl"] < s["vocab_size"] / 5,
    "brown_nplm": lambda s: s["best_nplm_test_ppl"] < s["vocab_size"] / 5,
    "memory_recall": lambda s: s["ntm_valid_bit_errors"] < 0.25 * s["chance_valid_bit_errors"],
    "meta_transfer": lambda s: s["gamma_median_final"] > 0.8 and s["mirror_median_final"] < 0.2,
    "seq2seq_length": lambda s: (s["results"]["attention"]["test"][str(s["train_range"][0])]
                                 ["token"] > max(0.6, s["results"]["plain"]["test"][
                                     str(s["train_range"][0])]["token"])),
    "scan": lambda s: s["stats"]["attention"]["simple"]["valid_mean"] > 10.0,
    "transformer_lm": lambda s: s["valid_ppl"] < 0.3 * s["initial_valid_ppl"],
    "sachs_structure": lambda s: s["best_observational_shd"] < s["empty_graph_shd"],
    "sdi": lambda s: s["fork3"]["shd"][0] <= 1 and s["fork3"]["true_edge_belief_min"] > 0.6,
    "gan_ring": lambda s: (s["nonsaturating_final_distance_mean"]
                           < 0.5 * s["nonsaturating_initial_distance_mean"]),
    "gan_mnist": lambda s: (s["final_d_real_accuracy"] > 0.6 and s["valid_parzen_best"] > -1e3
                            and s["real_data_valid_parzen"]["mean"] > s["valid_parzen_best"]),
    "dcgan": lambda s: s["mnist_dcgan_fd"] < 0.75 * s["mnist_dcgan_untrained_fd"],
    "conditional_gan": lambda s: s["dcgan_conditional_accuracy"] > 0.15,  # chance 0.1
    "nce": lambda s: s["within_at_reference_nu"] == s["seeds"] and s["mixture_integral"] > 0.75,
    "distributed_codes": lambda s: s["factored_unseen_accuracy"] > 0.5 > s["local_unseen_accuracy"],
    "family_trees": lambda s: s["transe_test_mrr"] > 2 * s["random_test_mrr"],
    "linear_regions": lambda s: s["constructed_matches_bound"] and s["tent_exact_regions_ok"]
                                and s["tent_shallow_best_test_mse"][0] < 0.04,  # var 0.083
    "zero_shot": lambda s: s["zsl_accuracy_best"] > 0.6,  # chance 1/3
    "data_fusion": lambda s: s["tiled_test_accuracy_mean"] > s["image_test_accuracy_mean"] + 0.15,
    "concept_units": lambda s: s["test_accuracy_mean"] > 0.25,  # chance 1/6
    "multitask_tagging": lambda s: min(s["multitask_test_accuracy"].values()) > 0.6,  # NOUN .24
    "rims_copying": lambda s: s["rims_valid_digit_accuracy_mean"] > 0.17,  # chance 1/8
    "scoff_adding": lambda s: s["lstm_valid_mse_mean"] < 0.75 * s["valid_baseline_mse"],
    "rims_seq_mnist": lambda s: s["rims_valid_accuracy_mean"] > 0.18,  # chance 0.1
    "workspace_triangles": lambda s: max(s[k]["final_train_loss"][0] for k in s["models"]) < 0.3,
    "bouncing_balls": lambda s: s["worst_valid_tf_bce"] < 0.85 * s["valid_mean_frame_bce"],
    # Empty-5x5: a random policy returns about 0.5, the shortest path 0.955
    "fourroom": lambda s: all(s[f"{m}_return_mean"] > s["random_return_mean"] + 0.15
                              for m in ("lstm", "rims", "rims_workspace")),
    # the quick run learns each question type's answer prior: loss from ~2 to under half of it
    "sort_of_clevr": lambda s: all(s[k]["final_train_loss"][0] < 0.55 * s[k][
        "initial_train_loss"][0] for k in s["models"]),
}


def test_every_recipe_has_a_learning_check():
    assert set(LEARNS) == set(recipes.RECIPES)


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_quick_variant_runs_writes_and_learns(name, tmp_path):
    if not NEEDS.get(name, True):
        pytest.skip("the recipe's dataset files were not found")
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
        assert s["splits"] == {"train": 1000, "valid": 500, "test": 1000, "final_train": 1500}
        assert "0.95% (LeNet-5, no distortions)" in md.read_text()
        assert 1 <= s["best_epoch"] <= s["epochs"]
    if name in ("mnist_mlp", "mnist_cnn"):  # the refit on train + validation, on by default
        text = md.read_text()
        assert s["refit"] is True and s["final_train_size"] == sum(
            s["splits"][k] for k in ("train", "valid"))
        assert "**test error** of the refit model" in text
        assert "evaluated once for each refit model" in text
        refit_csv = (tmp_path / f"{name}_refit.csv").read_text().splitlines()
        assert "valid" not in refit_csv[0] and len(refit_csv) == 1 + s["modern_best_epoch"]


def test_split_validation_holds_out_the_last_examples():
    import numpy as np

    from flowgrad.recipes.common import split_validation

    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (xtr, ytr), (xva, yva) = split_validation(x, y, 3)
    assert ytr.tolist() == list(range(7)) and yva.tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        split_validation(x, y, 10)


def test_refit_trains_on_train_and_validation_and_tests_once(tmp_path, monkeypatch):
    """The refit step: the model from build() (same seed, same weights) is trained on the
    training and the validation split together for exactly the chosen number of epochs, the
    validation split is not measured, and the test set is evaluated once."""
    import numpy as np

    import flowgrad as fg
    from flowgrad.recipes import common

    rng = np.random.default_rng(0)
    split = [(rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n))
             for n in (20, 7, 11)]
    seen, evaluated = [], []

    class Counting(fg.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = fg.nn.Linear(4, 3)

        def forward(self, x):
            if self.training:
                seen.append(len(x))
            return self.fc(x)

    def build():
        fg.manual_seed(0)
        model = Counting()
        optimizer = fg.optim.SGD(model.parameters(), lr=0.1)
        return model, optimizer, fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)

    real = common.evaluate
    monkeypatch.setattr(common, "evaluate",
                        lambda model, x, y: evaluated.append(len(x)) or real(model, x, y))
    result = common.refit_classifier(build, *split, epochs=3, batch_size=8, out=tmp_path,
                                     name="tiny", progress=False)
    assert sum(seen) == 3 * (20 + 7) and result["n_train"] == 27 and result["epochs"] == 3
    assert evaluated == [11]  # the test set, once; nothing else evaluated
    assert 0 <= result["test"]["error"] <= 1
    history = (tmp_path / "tiny_refit.csv").read_text().splitlines()
    assert len(history) == 1 + 3 and "valid" not in history[0]
    # the schedule is the validation run's (T_max=5), stopped after 3 epochs
    lrs = [float(r.split(",")[history[0].split(",").index("lr")]) for r in history[1:]]
    assert np.allclose(lrs, [0.1 * (1 + np.cos(np.pi * k / 5)) / 2 for k in range(3)],
                       rtol=1e-4)


@pytest.mark.skipif(not HAVE_MNIST, reason="the MNIST files were not found")
def test_dcgan_datasets_are_cells_that_a_rerun_reuses(tmp_path, monkeypatch):
    """Each dataset's result is a cell in dcgan_cells/; a rerun into the same --out trains
    nothing and reports the same numbers, and a cell of other settings is refused."""
    from flowgrad.recipes import dcgan

    first = dcgan.run(out=str(tmp_path), quick=True, progress=False)
    assert (tmp_path / "dcgan_cells" / "mnist.json").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(dcgan, "train_gan", no_training)
    again = dcgan.run(out=str(tmp_path), quick=True, progress=False)
    assert again["mnist_dcgan_fd"] == first["mnist_dcgan_fd"]
    assert again["datasets"] == ["mnist"]
    text = (tmp_path / "dcgan.md").read_text()
    assert "dcgan_cells/" in text and "`flowgrad train dcgan --quick`" in text
    assert "![dcgan_mnist_dcgan_samples](dcgan_mnist_dcgan_samples.png)" in text
    with pytest.raises(ValueError, match="other settings"):
        dcgan.run(out=str(tmp_path), quick=True, progress=False, seed=1)


@pytest.mark.skipif(not HAVE_MNIST, reason="the MNIST files were not found")
def test_conditional_gan_models_run_apart_into_one_table(tmp_path, monkeypatch):
    from flowgrad.recipes import conditional_gan

    conditional_gan.run(models="mlp", out=str(tmp_path), quick=True, progress=False)
    both = conditional_gan.run(models="dcgan", out=str(tmp_path), quick=True, progress=False)
    assert both["models"] == ["mlp", "dcgan"]
    assert len(both["runs"]) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(conditional_gan, "train_gan", no_training)
    again = conditional_gan.run(out=str(tmp_path), quick=True, progress=False)
    assert again["mlp_conditional_accuracy"] == both["mlp_conditional_accuracy"]
    text = (tmp_path / "conditional_gan.md").read_text()
    assert "--set models='mlp'" in text or "models=mlp" in text, text[-600:]
    assert "conditional_gan_mlp_classes.png" in text and "conditional_gan_dcgan_classes" in text


def test_conditional_mlp_gan_paper_protocol_sets_sgd_schedule_and_init():
    import numpy as np

    from flowgrad.models.dcgan import ConditionalMLPDiscriminator, ConditionalMLPGenerator
    from flowgrad.recipes import conditional_gan

    g, d = ConditionalMLPGenerator(), ConditionalMLPDiscriminator()
    images = np.random.default_rng(0).uniform(0.0, 1.0, (50, 1, 28, 28)).astype(np.float32)
    options = conditional_gan._paper_training(g, d, images)
    opt_g, opt_d = options["optimizers"]
    assert options["update"] == "simultaneous" and options["d_loss_weight"] == 0.5
    for opt in (opt_g, opt_d):
        assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.5
    assert np.abs(d.x_map.weight.detach().numpy()).max() <= 0.005
    assert not d.out.bias.detach().numpy().any()
    assert np.abs(g.z_map.weight.detach().numpy()).max() <= 0.05
    mean = images.reshape(50, -1).mean(0).astype(np.float64)
    np.testing.assert_allclose(g.out.bias.detach().numpy(), np.log(mean / (1 - mean)),
                               atol=1e-5)
    schedule = options["callbacks"][0]
    assert schedule.decay == 1.00004 and schedule.momentum_at(250) == 0.7
    with pytest.raises(ValueError, match="mlp_protocol"):
        conditional_gan.run(mlp_protocol="rmsprop", quick=True, progress=False)


@pytest.mark.skipif(not HAVE_MNIST, reason="the MNIST files were not found")
@pytest.mark.skipif(not HAVE_MNIST, reason="the MNIST files were not found")
def test_gan_mnist_resumed_run_continues_as_one_run(tmp_path):
    """Stopped after epoch 1 and resumed to 2: the same validation curve, kept generator and
    test estimate as an uninterrupted 2-epoch run (evaluating every epoch)."""
    from flowgrad.recipes import gan_mnist

    kw = dict(quick=True, progress=False, threads=1, epochs=2, eval_every=1, write=False)
    whole = gan_mnist.run(out=str(tmp_path / "whole"), **kw)
    gan_mnist.run(out=str(tmp_path / "parts"), **{**kw, "epochs": 1})
    resumed = gan_mnist.run(out=str(tmp_path / "parts"), resume=True, **kw)
    assert resumed["resumed_from_epoch"] == 1 and len(resumed["epoch_seconds"]) == 2
    for key in ("valid_parzen_curve", "chosen_epoch", "initial_valid_parzen", "sigma"):
        assert resumed[key] == whole[key], key
    assert resumed["test_parzen_mean"] == pytest.approx(whole["test_parzen_mean"], abs=1e-9)
    with pytest.raises(ValueError, match="resume found no checkpoint"):
        gan_mnist.run(out=str(tmp_path / "none"), resume=True, **kw)


def test_gan_mnist_rewrite_renders_the_same_file_from_its_json(tmp_path):
    from flowgrad.recipes import gan_mnist

    gan_mnist.run(out=str(tmp_path), quick=True, progress=False, threads=1)
    before = (tmp_path / "gan_mnist.md").read_text()
    (tmp_path / "gan_mnist.md").unlink()
    summary = gan_mnist.run(out=str(tmp_path), rewrite=True)
    assert (tmp_path / "gan_mnist.md").read_text() == before
    assert summary["command"] == "flowgrad train gan_mnist --set threads=1 --quick"
    with pytest.raises(ValueError, match="rewrite needs --out"):
        gan_mnist.run(out=str(tmp_path / "nothing"), rewrite=True)

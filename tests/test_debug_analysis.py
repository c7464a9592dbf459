"""flowgrad.debug: significance (Wilson, bootstrap, McNemar), capacity sweeps, learning curves,
classification reports, worst examples and scikit-learn baselines (lecture: "Validate and
Analyze")."""

import math

import numpy as np
import pytest
from scipy import stats

import flowgrad as fg
from flowgrad import nn
from flowgrad.debug.analysis import (
    capacity_sweep,
    classification_report,
    learning_curve,
    predict_log_proba,
    worst_examples,
)
from flowgrad.debug.baselines import compare_with_baselines
from flowgrad.debug.significance import (
    bootstrap_interval,
    compare_models,
    mcnemar,
    required_test_size,
    wilson_interval,
)
from flowgrad.models import MLP
from flowgrad.utils.data import TensorDataset


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small matrices on a busy machine: threads only fight (10x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --- significance -------------------------------------------------------------------------------

def test_wilson_known_values():
    lo, hi = wilson_interval(5, 100)  # statsmodels proportion_confint(5, 100, method="wilson")
    assert lo == pytest.approx(0.0215436792, rel=1e-6)
    assert hi == pytest.approx(0.1117504692, rel=1e-6)
    z2 = stats.norm.ppf(0.975) ** 2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))  # closed form at 0
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + z2))


@pytest.mark.parametrize("errors,n,conf", [(7, 50, 0.95), (130, 1000, 0.9), (1, 400, 0.99)])
def test_wilson_endpoints_are_where_the_score_test_rejects(errors, n, conf):
    # Wilson's interval = {p : (p_hat - p)^2 n / (p (1 - p)) <= z^2}; its ends solve equality
    z = stats.norm.ppf(0.5 + conf / 2)
    p_hat = errors / n
    for p in wilson_interval(errors, n, conf):
        assert (p_hat - p) ** 2 * n / (p * (1 - p)) == pytest.approx(z * z, rel=1e-9)
    lo, hi = wilson_interval(errors, n, conf)
    assert lo < p_hat < hi


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.5)


def test_bootstrap_interval_matches_normal_approximation_for_large_n():
    correct = np.ones(4000, bool)
    correct[::10] = False  # 10 % errors
    lo, hi = bootstrap_interval(correct, n_boot=2000, seed=0)
    half = 1.959964 * math.sqrt(0.1 * 0.9 / 4000)
    assert lo == pytest.approx(0.1 - half, abs=2e-3)
    assert hi == pytest.approx(0.1 + half, abs=2e-3)
    assert bootstrap_interval(correct, seed=3) == bootstrap_interval(correct, seed=3)
    assert bootstrap_interval(np.ones(30, bool)) == (0.0, 0.0)


def _pairs(b, c, both_right, both_wrong, classes=10):
    """Targets and two prediction vectors with the given McNemar table."""
    n = b + c + both_right + both_wrong
    y = np.arange(n) % classes
    wrong = (y + 1) % classes
    ra = np.r_[np.ones(b, bool), np.zeros(c, bool), np.ones(both_right, bool),
               np.zeros(both_wrong, bool)]
    rb = np.r_[np.zeros(b, bool), np.ones(c, bool), np.ones(both_right, bool),
               np.zeros(both_wrong, bool)]
    return np.where(ra, y, wrong), np.where(rb, y, wrong), y


def test_mcnemar_exact_matches_scipy_binomial():
    a, b, y = _pairs(3, 12, 80, 5)
    r = mcnemar(a, b, y)
    assert r.exact and (r.b, r.c, r.both_right, r.both_wrong) == (3, 12, 80, 5)
    assert r.pvalue == pytest.approx(stats.binomtest(3, 15, 0.5).pvalue)
    assert r.pvalue == pytest.approx(0.03515625)
    assert r.significant and "B is significantly better" in r.verdict


def test_mcnemar_chi_square_matches_scipy_on_a_known_table():
    # Wikipedia's example: b = 121, c = 59; corrected statistic (|b-c|-1)^2/(b+c) = 20.672
    a, b, y = _pairs(121, 59, 101, 33)
    r = mcnemar(a, b, y)
    assert not r.exact
    assert r.statistic == pytest.approx(61 ** 2 / 180)
    assert r.pvalue == pytest.approx(stats.chi2.sf(61 ** 2 / 180, 1))
    assert r.pvalue < 1e-5
    # forcing the exact test on the same table agrees with scipy's binomial test
    assert mcnemar(a, b, y, exact=True).pvalue == pytest.approx(
        stats.binomtest(59, 180, 0.5).pvalue)


def test_mcnemar_identical_models_and_scores_input():
    a, _, y = _pairs(10, 10, 50, 5)
    r = mcnemar(a, a, y)
    assert r.pvalue == 1.0 and r.discordant == 0 and not r.significant
    scores = np.eye(10)[a]  # (N, C) scores are accepted as well as labels
    assert mcnemar(scores, a, y).pvalue == 1.0


def test_too_small_test_set_warns_for_close_models():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50)
    a, b = y.copy(), y.copy()
    a[:6] = (a[:6] + 1) % 10     # 12 % error
    b[4:11] = (b[4:11] + 1) % 10  # 14 % error
    rep = compare_models(a, b, y, names=("cnn", "mlp"))
    assert rep.too_small and rep.warnings
    assert "WARNING" in str(rep) and "too small" in rep.verdict
    assert rep.required_n > 50
    assert rep.errors == pytest.approx((0.12, 0.14))


def test_no_warning_for_large_clearly_different_models():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 5000)
    a, b = y.copy(), y.copy()
    a[rng.random(5000) < 0.05] += 1
    b[rng.random(5000) < 0.15] += 1
    rep = compare_models(a % 10, b % 10, y, names=("good", "bad"))
    assert not rep.warnings and not rep.too_small
    assert rep.mcnemar.significant and rep.mcnemar.pvalue < 1e-10
    assert "good is significantly better" in rep.verdict
    assert rep.wilson[0][1] < rep.wilson[1][0]  # disjoint intervals
    assert rep.required_n < 5000
    d = rep.as_dict()
    assert d["mcnemar"]["significant"] and d["warnings"] == []


def test_required_test_size_grows_as_the_difference_shrinks():
    assert required_test_size(40, 60, 1000) < required_test_size(45, 55, 1000)
    assert math.isinf(required_test_size(5, 5, 100))


# --- a tiny synthetic problem -------------------------------------------------------------------

def _xor(n, seed, noise=0.1):
    """Two classes: the sign of x0 * x1 (not linearly separable), labels flipped with prob noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)
    flip = rng.random(n) < noise
    y[flip] = 1 - y[flip]
    return x, y


def _mlp(width):
    return MLP(sizes=(2, width, 2), activation="tanh" if width < 4 else "relu")


FIT = {"epochs": 150, "lr": 2e-2, "batch_size": 50, "seed": 0}


def test_capacity_sweep_tiny_model_underfits(tmp_path):
    train, valid = _xor(400, 0), _xor(1000, 1)
    sweep = capacity_sweep(_mlp, train, valid, [1, 32], FIT)
    assert sweep.best == 32
    assert sweep.region(1) == "underfitting"
    assert sweep.train_errors[0] > 0.2 and sweep.valid_errors[1] < 0.2
    assert sweep.underfitting == [1] and sweep.overfitting == []
    assert "underfitting" in sweep.verdict and "at width 1." in sweep.verdict
    assert sweep.plot(tmp_path / "sweep.png").stat().st_size > 0
    text = str(sweep)
    assert "| width |" in text and "Verdict:" in text and text == sweep.to_markdown()


def test_capacity_sweep_big_model_on_few_points_overfits():
    train, valid = _xor(24, 2, noise=0.2), _xor(1000, 3, noise=0.2)
    sweep = capacity_sweep(_mlp, TensorDataset(fg.from_numpy(train[0]), fg.from_numpy(train[1])),
                           valid, [1, 256], {**FIT, "epochs": 300, "batch_size": 24})
    assert sweep.train_errors[1] == 0.0
    assert sweep.valid_errors[1] > 0.2
    assert sweep.region(256) == "overfitting" and 256 in sweep.overfitting
    assert "overfit" in sweep.verdict


def test_learning_curve_big_model_wants_more_data(tmp_path):
    curve = learning_curve(lambda: _mlp(128), _xor(2000, 4, noise=0.0), _xor(1000, 5, 0.0),
                           [16, 32, 64, 128, 256], {**FIT, "epochs": 60, "batch_size": 16})
    assert curve.sizes == [16, 32, 64, 128, 256]
    assert curve.train_errors[0] == 0.0 and curve.valid_errors[0] > 0.1
    assert curve.valid_errors[-1] < curve.valid_errors[0] / 2
    assert curve.more_data_helps and "more data should help" in curve.verdict
    assert curve.extrapolated < curve.valid_errors[-1]
    assert curve.plot(tmp_path / "curve.png").stat().st_size > 0


def test_learning_curve_linear_model_does_not():
    curve = learning_curve(lambda: nn.Linear(2, 2), _xor(3000, 6, 0.0), _xor(1000, 7, 0.0),
                           [500, 1000, 2000], {**FIT, "epochs": 10})
    assert all(e > 0.3 for e in curve.valid_errors)  # a line cannot solve XOR
    assert not curve.more_data_helps
    assert "would not help" in curve.verdict and "capacity" in curve.verdict


# --- classification report and worst examples ---------------------------------------------------

def _random_classifier(seed=0, n=300, d=5, c=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, c))
    y = (x @ w + rng.normal(scale=1.5, size=(n, c))).argmax(1).astype(np.int64)
    fg.manual_seed(seed)
    model = nn.Linear(d, c)
    with fg.no_grad():
        model.weight.copy_(fg.from_numpy(w.T.astype(np.float32)))
    return model, x, y


def test_classification_report_matches_sklearn(tmp_path):
    from sklearn import metrics

    model, x, y = _random_classifier()
    rep = classification_report(model, x, y, class_names=["a", "b", "c", "d"])
    logp = predict_log_proba(model, x)
    pred = logp.argmax(1)
    assert 0 < rep.error < 0.75
    assert rep.accuracy == pytest.approx(metrics.accuracy_score(y, pred))
    assert rep.nll == pytest.approx(metrics.log_loss(y, np.exp(logp), labels=range(4)), rel=1e-6)
    p, r, f, s = metrics.precision_recall_fscore_support(y, pred, labels=range(4),
                                                         zero_division=0)
    np.testing.assert_allclose(rep.precision, p)
    np.testing.assert_allclose(rep.recall, r)
    np.testing.assert_allclose(rep.f1, f)
    np.testing.assert_array_equal(rep.support, s)
    np.testing.assert_array_equal(rep.confusion, metrics.confusion_matrix(y, pred))
    assert rep.macro_f1 == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    assert len(rep.rows) == 5 and rep.rows[0][0] == "a" and "macro avg" in str(rep)
    assert "accuracy" in rep.verdict and "weakest class" in rep.verdict
    assert rep.plot_confusion(tmp_path / "cm.png").stat().st_size > 0
    # a Dataset gives the same report
    ds = classification_report(model, TensorDataset(fg.from_numpy(x), fg.from_numpy(y)))
    np.testing.assert_array_equal(ds.confusion, rep.confusion)


def test_worst_examples_are_the_highest_loss_ones(tmp_path):
    model, x, y = _random_classifier(1)
    logp = predict_log_proba(model, x)
    loss = -logp[np.arange(len(y)), y]
    w = worst_examples(model, x, y, k=10)
    assert set(w.indices.tolist()) == set(np.argsort(-loss)[:10].tolist())
    assert np.all(np.diff(w.losses) <= 0)
    np.testing.assert_allclose(w.losses, loss[w.indices], rtol=1e-6)
    assert loss[w.indices].min() >= np.delete(loss, w.indices).max()
    np.testing.assert_array_equal(w.inputs, x[w.indices])
    np.testing.assert_array_equal(w.targets, y[w.indices])
    np.testing.assert_array_equal(w.predicted, logp[w.indices].argmax(1))
    np.testing.assert_allclose(w.prob_predicted, np.exp(logp[w.indices].max(1)), rtol=1e-6)
    assert len(w.rows) == 10 and "misclassified" in w.verdict
    assert w.plot_worst(tmp_path / "worst_1d.png").stat().st_size > 0


def test_worst_examples_plot_images(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    fg.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    w = worst_examples(model, x, y, k=6)
    assert w.inputs.shape == (6, 1, 28, 28)
    assert w.plot_worst(tmp_path / "worst.png", image_shape=(28, 28)).stat().st_size > 0
    assert w.plot_worst(tmp_path / "worst_auto.png").stat().st_size > 0


# --- baselines ----------------------------------------------------------------------------------

def test_baselines_table_has_every_row():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32) / 16
    xtr, ytr, xte, yte = x[:600], y[:600], x[600:900], y[600:900]
    net = yte.copy()
    net[:15] = (net[:15] + 1) % 10  # a "network" with 5 % error
    cmp = compare_with_baselines(xtr, ytr, xte, yte, net, max_train=400)
    names = [r[0] for r in cmp.rows]
    assert names == ["logistic", "linear_svm", "rbf_svm", "random_forest", "network"]
    assert all(r["n_train"] == 400 for r in cmp.results if r["kind"] == "baseline")
    assert all(0 <= e < 0.3 for e in cmp.errors.values())
    assert cmp.errors["network"] == pytest.approx(0.05)
    assert cmp.best_baseline == min(
        (k for k in cmp.errors if k != "network"), key=cmp.errors.get)
    assert cmp.mcnemar is not None and cmp.mcnemar.names == ("network", cmp.best_baseline)
    for r in cmp.results:
        lo, hi = r["interval"]
        assert lo <= r["error"] <= hi
    text = str(cmp)
    assert "Wilson 95 %" in text and "McNemar" in text and cmp.verdict
    assert cmp.as_dict()["best_baseline"] == cmp.best_baseline


# --- the recipe ---------------------------------------------------------------------------------

def test_validate_analyze_quick_recipe(tmp_path):
    from flowgrad import recipes

    try:
        module = recipes.get("validate_analyze")
    except KeyError:  # not registered in RECIPES yet
        from flowgrad.recipes import validate_analyze as module
    s = module.run(out=str(tmp_path), quick=True, progress=False)
    assert s["cnn_test_error"] < 0.8 and s["mlp_test_error"] < 0.85  # chance is 0.9
    for key in ("capacity_verdict", "learning_curve_verdict", "baselines_verdict",
                "significance_verdict", "classification_verdict", "worst_examples_verdict"):
        assert isinstance(s[key], str) and s[key]
    assert len(s["worst_examples"]["indices"]) == 16

"""flowgrad.generative.metrics: the Fréchet distance against a direct NumPy/SciPy computation and
the closed form for two Gaussians, the classifier score on hand-made probabilities, conditional
accuracy, the ring of Gaussians and mode coverage, and the feature classifier (a tiny one on
tiny data: training, checksummed save and reload, refusal of a changed file)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.generative import metrics
from flowgrad.generative.metrics import (
    FeatureClassifier,
    classifier_score,
    conditional_accuracy,
    frechet_distance,
    load_or_train_classifier,
    mode_coverage,
    ring_centres,
    ring_of_gaussians,
)

# --- Fréchet distance ---------------------------------------------------------------------------


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _direct_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Tr((C_a C_b)^(1/2)) = Tr((C_a^(1/2) C_b C_a^(1/2))^(1/2)), by symmetric eigh roots."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ra = _psd_sqrt(ca)
    cross = np.trace(_psd_sqrt(ra @ cb @ ra))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def _with_moments(rng, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n points whose sample mean and covariance (ddof=1) are exactly ``mean`` and ``cov``."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T
    return z @ np.linalg.cholesky(cov).T + mean


def test_frechet_matches_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((250, 6)) @ rng.standard_normal((6, 6)) + 0.5
    expect = _direct_frechet(a, b)
    assert frechet_distance(a, b) == pytest.approx(expect, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(expect, rel=1e-8)
    # also SciPy's sqrtm written out, the way the FID's reference code does it
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    d = a.mean(0) - b.mean(0)
    scipy_value = d @ d + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(scipy_value, rel=1e-10)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_frechet_closed_form_for_two_gaussians():
    rng = np.random.default_rng(1)
    mean_a, mean_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = _with_moments(rng, 500, mean_a, np.diag(var_a))
    b = _with_moments(rng, 400, mean_b, np.diag(var_b))
    # diagonal covariances commute: d^2 = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    closed = ((mean_a - mean_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)  # 5 + 4 + 1 = 10
    # a general pair: the 2-Wasserstein distance between Gaussians, with the PSD roots
    cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov_b = np.array([[1.0, -0.3], [-0.3, 0.5]])
    a = _with_moments(rng, 300, np.zeros(2), cov_a)
    b = _with_moments(rng, 300, np.array([0.5, -1.0]), cov_b)
    ra = _psd_sqrt(cov_a)
    closed = 1.25 + np.trace(cov_a + cov_b - 2 * _psd_sqrt(ra @ cov_b @ ra))
    assert frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)
    # one dimension: (m_a - m_b)^2 + (s_a - s_b)^2
    a = _with_moments(rng, 100, np.array([3.0]), np.array([[4.0]]))
    b = _with_moments(rng, 100, np.array([1.0]), np.array([[1.0]]))
    assert frechet_distance(a, b) == pytest.approx(4.0 + 1.0, rel=1e-9)


def test_frechet_singular_covariances_stay_finite():
    rng = np.random.default_rng(2)
    a = np.zeros((40, 5))
    b = np.zeros((30, 5))
    a[:, :2] = rng.standard_normal((40, 2))  # rank 2 of 5: C_a C_b is singular
    b[:, 2:4] = rng.standard_normal((30, 2))
    value = frechet_distance(a, b)
    assert np.isfinite(value)
    assert value == pytest.approx(_direct_frechet(a, b), abs=1e-4)


def test_frechet_adds_eps_when_the_root_is_not_finite(monkeypatch):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((60, 3)) + 1.0
    seen, real_sqrtm = [], linalg.sqrtm

    def failing_first(m):  # SciPy's sqrtm failing on the singular product, as it can
        seen.append(m.copy())
        return np.full_like(m, np.nan) if len(seen) == 1 else real_sqrtm(m)

    monkeypatch.setattr(linalg, "sqrtm", failing_first)
    value = frechet_distance(a, b, eps=1e-3)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], (ca + 1e-3 * np.eye(3)) @ (cb + 1e-3 * np.eye(3)))
    assert value == pytest.approx(_direct_frechet(a, b), abs=1e-2)
    monkeypatch.setattr(linalg, "sqrtm", lambda m: real_sqrtm(m) + 0.5j * np.eye(len(m)))
    with pytest.raises(ValueError, match="imaginary part of 0.5"):
        frechet_distance(a, b)


def test_frechet_bad_input():
    rng = np.random.default_rng(3)
    with pytest.raises(ShapeError, match=r"feature sizes differ.*\(10, 3\).*\(10, 4\)"):
        frechet_distance(rng.random((10, 3)), rng.random((10, 4)))
    with pytest.raises(ShapeError, match=r"must be 2-D.*\(10,\)"):
        frechet_distance(rng.random(10), rng.random((10, 1)))
    with pytest.raises(ValueError, match=r"at least 2 samples.*\(1, 3\)"):
        frechet_distance(rng.random((1, 3)), rng.random((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 2), np.nan), rng.random((4, 2)))


# --- classifier score, conditional accuracy -----------------------------------------------------

def test_classifier_score_on_hand_made_probabilities():
    k = 10
    confident = np.eye(k)[np.arange(200) % k]  # one-hot, every class equally often
    assert classifier_score(confident) == pytest.approx(k, rel=1e-12)
    constant = np.tile(np.random.default_rng(0).dirichlet(np.ones(k)), (50, 1))
    assert classifier_score(constant) == pytest.approx(1.0, abs=1e-12)
    assert classifier_score(np.eye(k)[np.zeros(30, int)]) == pytest.approx(1.0)  # one mode only
    probs = np.random.default_rng(1).dirichlet(0.3 * np.ones(k), size=100)
    marginal = probs.mean(0)
    kl = (probs * (np.log(probs) - np.log(marginal))).sum(1)
    assert classifier_score(probs) == pytest.approx(np.exp(kl.mean()), rel=1e-12)
    assert classifier_score(fg.tensor(probs)) == pytest.approx(np.exp(kl.mean()), rel=1e-12)


def test_classifier_score_and_accuracy_bad_input():
    with pytest.raises(ValueError, match=r"row 1 sums to 2.*softmax"):
        classifier_score(np.array([[0.5, 0.5], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        classifier_score(np.array([[1.5, -0.5]]))
    with pytest.raises(ShapeError, match=r"\(4,\)"):
        classifier_score(np.ones(4) / 4)
    probs = np.eye(3)[[0, 1, 2, 2]]
    with pytest.raises(ShapeError, match=r"labels of shape \(3,\) do not match probs \(4, 3\)"):
        conditional_accuracy(probs, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"integers in 0..2.*\[0, 3\]"):
        conditional_accuracy(probs, np.array([0, 1, 2, 3]))


def test_conditional_accuracy():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    assert conditional_accuracy(probs, np.array([0, 1, 2, 2])) == 0.75
    assert conditional_accuracy(probs, fg.tensor(np.array([1, 0, 0, 1]))) == 0.0


# --- ring of Gaussians and mode coverage --------------------------------------------------------

def test_ring_of_gaussians_and_full_coverage():
    centres = ring_centres(8, 2.0)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0)
    np.testing.assert_allclose(centres[2], [0.0, 2.0], atol=1e-12)
    x = ring_of_gaussians(10_000, rng=0)
    assert x.shape == (10_000, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, ring_of_gaussians(10_000, rng=0))
    result = mode_coverage(x, centres, std=0.02)
    assert result["modes_covered"] == 8 and result["modes"] == 8
    # P(|z| <= 3) for a 2-D standard normal is 1 - exp(-9/2) = 0.98889
    assert result["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert sum(result["per_mode"]) == pytest.approx(result["high_quality_fraction"])
    assert all(abs(f - 1 / 8) < 0.02 for f in result["per_mode"])


def test_mode_coverage_counts_collapse_and_threshold():
    centres = ring_centres(8, 2.0)
    rng = np.random.default_rng(1)
    collapsed = centres[rng.integers(0, 2, 1000)] + 0.02 * rng.standard_normal((1000, 2))
    few = centres[5] + 0.01 * rng.standard_normal((5, 2))  # 0.5 % of the samples on mode 5
    off = rng.uniform(-0.5, 0.5, (95, 2))  # far from every mode: low quality
    x = np.concatenate([collapsed, few, off])
    result = mode_coverage(x, centres, std=0.02)
    assert result["modes_covered"] == 2
    assert result["covered"] == [True, True] + [False] * 6
    assert result["high_quality_fraction"] == pytest.approx(
        (np.linalg.norm(collapsed - centres[np.argmin(np.linalg.norm(
            collapsed[:, None] - centres[None], axis=2), 1)], axis=1) <= 0.06).sum() / 1100
        + 5 / 1100)
    assert mode_coverage(x, centres, std=0.02, threshold=0.0)["modes_covered"] == 3  # VEEGAN
    assert mode_coverage(x, centres, std=0.02, threshold=0.004)["modes_covered"] == 3


def test_mode_coverage_bad_input():
    centres = ring_centres()
    with pytest.raises(ShapeError, match=r"\(10, 3\) and \(8, 2\)"):
        mode_coverage(np.zeros((10, 3)), centres, 0.02)
    with pytest.raises(ValueError, match="std > 0"):
        mode_coverage(np.zeros((10, 2)), centres, 0.0)
    with pytest.raises(ValueError, match="std > 0"):
        ring_of_gaussians(10, std=-1.0)


# --- the feature classifier ---------------------------------------------------------------------

def _toy_images(n: int, seed: int):
    """Two classes of 28x28 images: a bright top half or a bright bottom half, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = 0.2 * rng.random((n, 1, 28, 28))
    for i, label in enumerate(y):
        rows = slice(0, 14) if label == 0 else slice(14, 28)
        x[i, 0, rows] += 0.7
    return x.astype(np.float32), y.astype(np.int64)


TINY = dict(channels=(2, 4), hidden=8, classes=2)


def _tiny_data():
    return _toy_images(256, 0), _toy_images(64, 1), _toy_images(64, 2)


def test_feature_classifier_shapes_and_errors():
    model = FeatureClassifier(**TINY)
    x, _ = _toy_images(5, 3)
    assert model(fg.tensor(x)).shape == (5, 2)
    feats = model.features(x, batch_size=2)
    probs = model.predict_proba(x.reshape(5, 784))
    assert feats.shape == (5, 8) and feats.dtype == np.float64 and (feats >= 0).all()
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert model.training  # the mode is put back
    with pytest.raises(ValueError, match=r"pixels must lie in \[0, 1\].*\(x \+ 1\) / 2"):
        model.features(2 * x - 1)
    with pytest.raises(ShapeError, match=r"\(batch, 1, 28, 28\).*\(5, 3, 28, 28\)"):
        model.features(np.zeros((5, 3, 28, 28), np.float32))


def test_load_or_train_trains_saves_and_reloads(tmp_path, monkeypatch):
    path = tmp_path / "toy.safetensors"
    model = load_or_train_classifier("mnist", path, epochs=2, batch_size=32, data=_tiny_data(),
                                     progress=False, threads=1, **TINY)
    assert model.info["test_accuracy"] >= 0.95  # the tiny model learns the toy task
    assert model.info["valid_accuracy"] >= 0.95 and len(model.info["history"]) == 2
    assert not model.training
    check = tmp_path / "toy.safetensors.sha256"
    digest = check.read_text().split()
    assert digest == [metrics.sha256_of(path), "toy.safetensors"]

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although a checked file exists")

    monkeypatch.setattr(metrics, "train_feature_classifier", refuse)
    again = load_or_train_classifier("mnist", path)
    x, _ = _toy_images(10, 4)
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    np.testing.assert_array_equal(again.features(x), model.features(x))
    assert again.info["test_accuracy"] == model.info["test_accuracy"]
    with pytest.raises(ValueError, match="holds a 'mnist' classifier, asked for "
                                         "'fashion_mnist'"):
        load_or_train_classifier("fashion_mnist", path)

    path.write_bytes(path.read_bytes() + b" ")  # the file changes: its checksum no longer fits
    with pytest.raises(ValueError, match="SHA-256 of .* is .* says"):
        load_or_train_classifier("mnist", path)
    check.unlink()
    with pytest.raises(ValueError, match="sha256 is missing"):
        load_or_train_classifier("mnist", path)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_or_train_classifier("cifar10", path)

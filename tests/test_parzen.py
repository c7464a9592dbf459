"""The Parzen-window log-likelihood of Goodfellow et al. (2014): against the analytic
log-likelihood of a known Gaussian mixture (samples from the true model), against a direct
SciPy computation, the choice of sigma on a validation set, the standard error, batching,
float64 and log-sum-exp, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.generative.parzen import (
    PAPER_SIGMAS,
    parzen_evaluate,
    parzen_log_likelihood,
    parzen_sigma_scores,
    select_parzen_sigma,
)


def _mixture(d: int, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 2.0, (k, d)), rng.uniform(0.5, 1.0, k)


def _sample(means, stds, n: int, rng) -> np.ndarray:
    c = rng.integers(0, len(means), n)
    return means[c] + stds[c, None] * rng.standard_normal((n, means.shape[1]))


def _mixture_logpdf(x, means, stds) -> np.ndarray:
    """Analytic log-density of the equal-weight isotropic Gaussian mixture."""
    d = x.shape[1]
    sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    comp = -0.5 * sq / stds ** 2 - d * np.log(stds) - 0.5 * d * np.log(2 * np.pi)
    return logsumexp(comp, axis=1) - np.log(len(means))


def _direct(samples, x, sigma) -> np.ndarray:
    """log (1/m) sum_j prod_i N(x_i; mu_ji, sigma), term by term with SciPy."""
    terms = norm.logpdf(x[:, None, :], loc=samples[None], scale=sigma).sum(-1)
    return logsumexp(terms, axis=1) - np.log(len(samples))


@pytest.mark.parametrize("d,m,seed", [(2, 3000, 0), (2, 3000, 1), (5, 4000, 2)])
def test_known_mixture_within_0_1_nats_per_dimension(d, m, seed):
    means, stds = _mixture(d, seed=seed)
    rng = np.random.default_rng(100 + seed)
    samples, valid, test = (_sample(means, stds, n, rng) for n in (m, 500, 1000))
    result = parzen_evaluate(samples, valid, test)
    exact = _mixture_logpdf(test, means, stds).mean()
    assert abs(result["mean"] - exact) / d < 0.1
    assert result["sigma"] in PAPER_SIGMAS
    assert result["dim"] == d and result["n_test"] == 1000 and result["n_valid"] == 500
    assert result["per_dim"] == pytest.approx(result["mean"] / d)


def test_matches_direct_scipy_computation_and_batches():
    rng = np.random.default_rng(3)
    samples, x = rng.standard_normal((40, 3)), 2 * rng.standard_normal((25, 3))
    for sigma in (0.1, 0.37, 1.0):
        expect = _direct(samples, x, sigma)
        for batch_size in (1, 7, 1000):
            got = parzen_log_likelihood(samples, x, sigma, batch_size=batch_size)
            assert got.dtype == np.float64 and got.shape == (25,)
            np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-9)


def test_float32_tensors_and_images_are_flattened_to_float64():
    rng = np.random.default_rng(4)
    samples = rng.random((30, 1, 2, 2)).astype(np.float32)
    x = rng.random((6, 1, 2, 2)).astype(np.float32)
    got = parzen_log_likelihood(fg.tensor(samples), fg.tensor(x), 0.2)
    expect = _direct(samples.reshape(30, 4).astype(np.float64), x.reshape(6, 4), 0.2)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expect, rtol=1e-9)


def test_log_sum_exp_keeps_far_points_finite():
    samples = np.array([[0.0, 0.0], [1.0, 0.0]])
    x = np.array([[100.0, 0.0]])  # exp(-99^2 / (2 * 0.01)) underflows to 0 in float64
    got = parzen_log_likelihood(samples, x, 0.1)
    expect = -(99.0 ** 2) / (2 * 0.01) + np.log1p(np.exp(-(100.0 ** 2 - 99.0 ** 2) / 0.02)) \
        - np.log(2) - np.log(2 * np.pi * 0.01)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [expect], rtol=1e-12)


def test_sigma_selection_picks_the_best_validation_sigma():
    rng = np.random.default_rng(5)
    samples = rng.standard_normal((200, 2))
    valid = rng.standard_normal((80, 2))
    scores = parzen_sigma_scores(samples, valid)
    manual = [parzen_log_likelihood(samples, valid, s).mean() for s in PAPER_SIGMAS]
    np.testing.assert_allclose(scores, manual, rtol=1e-12)
    best = select_parzen_sigma(samples, valid)
    assert best == PAPER_SIGMAS[int(np.argmax(manual))]
    # a grid whose best width is known: samples on a lattice of spacing 1, valid points near
    # them; a tiny width puts the valid points in the kernels' tails, a huge one spreads them
    grid = np.array([0.001, 0.3, 30.0])
    chosen = select_parzen_sigma(samples, samples + 0.3 * rng.standard_normal((200, 2)), grid)
    assert chosen == 0.3
    result = parzen_evaluate(samples, valid, valid)
    assert [s for s, _ in result["per_sigma"]] == pytest.approx(list(PAPER_SIGMAS))
    assert result["sigma"] == best
    assert max(v for _, v in result["per_sigma"]) == pytest.approx(scores.max())


def test_standard_error_is_std_over_sqrt_n_and_fixed_sigma():
    rng = np.random.default_rng(6)
    samples, test = rng.standard_normal((50, 2)), rng.standard_normal((64, 2))
    result = parzen_evaluate(samples, None, test, sigma=0.5)
    ll = parzen_log_likelihood(samples, test, 0.5)
    assert result["mean"] == pytest.approx(ll.mean())
    assert result["stderr"] == pytest.approx(ll.std() / 8.0)  # ddof=0, as the paper's code
    assert result["sigma"] == 0.5 and result["per_sigma"] == [] and result["n_valid"] == 0


def test_bad_input_names_the_shapes_and_values():
    rng = np.random.default_rng(7)
    samples, x = rng.standard_normal((10, 3)), rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"3 samples for 5 dimensions.*\(3, 5\)"):
        parzen_log_likelihood(rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), 0.5)
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma must be finite and > 0"):
            parzen_log_likelihood(samples, x, bad)
    with pytest.raises(ValueError, match=r"> 0, got \[0.1, 0.0\]"):
        select_parzen_sigma(samples, x, [0.1, 0.0])
    with pytest.raises(ShapeError, match=r"x has 2 dimensions \(shape \(4, 2\)\).*\(10, 3\)"):
        parzen_log_likelihood(samples, x[:, :2], 0.5)
    with pytest.raises(ShapeError, match=r"test has 4 dimensions"):
        parzen_evaluate(samples, x, rng.standard_normal((5, 4)))
    with pytest.raises(ShapeError, match=r"valid has 2 dimensions"):
        parzen_evaluate(samples, x[:, :2], x)
    with pytest.raises(ShapeError, match=r"at least 2 dimensions, got \(3,\)"):
        parzen_log_likelihood(samples, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        parzen_log_likelihood(samples, np.full((2, 3), np.nan), 0.5)
    with pytest.raises(ValueError, match="sigma must be one number"):
        parzen_log_likelihood(samples, x, [0.1, 0.2])
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        parzen_log_likelihood(samples, x, 0.5, batch_size=0)
    with pytest.raises(ValueError, match="give a validation set"):
        parzen_evaluate(samples, None, x)
    with pytest.raises(ShapeError, match="empty"):
        parzen_log_likelihood(samples, np.zeros((0, 3)), 0.5)

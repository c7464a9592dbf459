"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010, 2012): the loss −J_T against the
papers' formula in NumPy and against torch's BCE-with-logits composition (value and every
gradient, float64 and float32); consistency on a Gaussian with known parameters; the error
shrinking as ν grows; the Gaussian noise; bad input."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.generative import (
    GaussianNoise,
    MLPLogDensity,
    NCEDensity,
    UnnormalizedGaussian,
    nce_loss,
)
from flowgrad.generative.nce import (
    fit_nce_lbfgs,
    gaussian_log_normalizer,
    gaussian_mle,
    nce_loss_from_log_probs,
)

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=1e-5, rtol=1e-5), "float64": dict(atol=1e-12, rtol=1e-10)}
MU = np.array([1.0, -0.5])
COV = np.array([[1.2, 0.45], [0.45, 0.54]])


def _paper_loss(lpm_x, lpn_x, lpm_y, lpn_y):
    """−J_T written as in JMLR 2012 section 2.1: h = r_ν(G), r_ν(u) = 1/(1 + ν exp(−u)),
    G = ln p_m − ln p_n, J_T = (1/T_d)(Σ ln h(x) + Σ ln(1 − h(y)))."""
    nu = len(lpm_y) / len(lpm_x)
    h_x = 1.0 / (1.0 + nu * np.exp(-(lpm_x - lpn_x)))
    h_y = 1.0 / (1.0 + nu * np.exp(-(lpm_y - lpn_y)))
    return -(np.log(h_x).sum() + np.log1p(-h_y).sum()) / len(lpm_x)


def _values(dtype, t_d=7, t_n=35, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=2.0, size=n).astype(dtype) for n in (t_d, t_d, t_n, t_n)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("t_n", [7, 35, 3])
def test_loss_matches_the_papers_formula_and_torch(dtype, t_n):
    lpm_x, lpn_x, lpm_y, lpn_y = _values(dtype, t_n=t_n)
    a, b = fg.tensor(lpm_x, requires_grad=True), fg.tensor(lpm_y, requires_grad=True)
    loss = nce_loss_from_log_probs(a, lpn_x, b, lpn_y)
    loss.backward()
    assert loss.dtype == getattr(fg, dtype)
    ref = _paper_loss(*(v.astype(np.float64) for v in (lpm_x, lpn_x, lpm_y, lpn_y)))
    np.testing.assert_allclose(loss.item(), ref, **TOL[dtype])
    # torch: BCE-with-logits on the log-odds G − ln ν, data labelled 1, noise 0, sum / T_d
    ta, tb = torch.tensor(lpm_x, requires_grad=True), torch.tensor(lpm_y, requires_grad=True)
    log_nu = np.log(t_n / len(lpm_x))
    g_x = ta - torch.tensor(lpn_x) - log_nu
    g_y = tb - torch.tensor(lpn_y) - log_nu
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    tl = (bce(g_x, torch.ones_like(g_x), reduction="sum")
          + bce(g_y, torch.zeros_like(g_y), reduction="sum")) / len(lpm_x)
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), **TOL[dtype])
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), **TOL[dtype])
    # the gradient by hand: −(1 − h(x))/T_d at the data, h(y)/T_d at the noise
    h = lambda lpm, lpn: 1 / (1 + (t_n / len(lpm_x)) * np.exp(-(lpm - lpn)))  # noqa: E731
    np.testing.assert_allclose(a.grad.numpy(), -(1 - h(lpm_x, lpn_x)) / len(lpm_x),
                               **TOL[dtype])
    np.testing.assert_allclose(b.grad.numpy(), h(lpm_y, lpn_y) / len(lpm_x), **TOL[dtype])


def test_loss_is_finite_for_extreme_log_odds():
    lpm_x = fg.tensor([800.0, -800.0], requires_grad=True)
    loss = nce_loss_from_log_probs(lpm_x, np.zeros(2), fg.tensor([-900.0, 900.0]), np.zeros(2))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(lpm_x.grad.numpy()).all()
    np.testing.assert_allclose(loss.item(), (800.0 + 900.0) / 2)


def _torch_gaussian_loss(mean, factor, c, x, y, lpn_x, lpn_y):
    tri = torch.tril(torch.ones_like(factor))

    def log_p(u):
        v = (u - mean) @ (factor * tri)
        return -0.5 * (v * v).sum(1) + c

    log_nu = np.log(len(y) / len(x))
    g_x, g_y = log_p(x) - lpn_x - log_nu, log_p(y) - lpn_y - log_nu
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return (bce(g_x, torch.ones_like(g_x), reduction="sum")
            + bce(g_y, torch.zeros_like(g_y), reduction="sum")) / len(x)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gaussian_model_loss_and_parameter_gradients_match_torch(dtype):
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal(MU, COV, size=20)
    noise = GaussianNoise.fit(x, scale=1.5)
    y = noise.sample(60, rng)
    model = NCEDensity(UnnormalizedGaussian(2, dtype=getattr(fg, dtype)), c=-1.3)
    start = {"log_model.mean": np.array([0.3, -0.2]),
             "log_model.factor": np.array([[1.1, 0.7], [0.4, 0.9]])}  # upper entry masked
    model.load_state_dict({**model.state_dict(), **{k: v.astype(dtype) for k, v in
                                                    start.items()}})
    loss = nce_loss(model.log_prob, noise.log_prob, x.astype(dtype), y.astype(dtype))
    loss.backward()
    tp = {k: torch.tensor(v.astype(dtype), requires_grad=True) for k, v in start.items()}
    tc = torch.tensor(np.float64(-1.3).astype(dtype), requires_grad=True)
    tl = _torch_gaussian_loss(tp["log_model.mean"], tp["log_model.factor"], tc,
                              torch.tensor(x.astype(dtype)), torch.tensor(y.astype(dtype)),
                              torch.tensor(noise.log_prob(x).astype(dtype)),
                              torch.tensor(noise.log_prob(y).astype(dtype)))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), **TOL[dtype])
    grads = dict(model.named_parameters())
    np.testing.assert_allclose(grads["c"].grad.numpy(), tc.grad.numpy(), **TOL[dtype])
    for k, t in tp.items():
        np.testing.assert_allclose(grads[k].grad.numpy(), t.grad.numpy(), **TOL[dtype])
    assert grads["log_model.factor"].grad.numpy()[0, 1] == 0.0


def test_gaussian_noise_log_prob_and_samples():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    x = rng.multivariate_normal(MU, COV, size=500)
    noise = GaussianNoise.fit(x, scale=2.0)
    np.testing.assert_allclose(noise.covariance, 4 * np.cov(x, rowvar=False, bias=True))
    ref = scipy_stats.multivariate_normal(noise.mean, noise.covariance).logpdf(x[:10])
    np.testing.assert_allclose(noise.log_prob(x[:10]), ref, rtol=1e-12)
    s = noise.sample(20000, np.random.default_rng(3))
    np.testing.assert_allclose(np.cov(s, rowvar=False), noise.covariance, rtol=0.05, atol=0.02)
    diag = GaussianNoise.fit(x, diagonal=True)
    assert diag.covariance[0, 1] == 0.0


def _fit(nu, seed, n, precision="full"):
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(MU, COV, size=n)
    density = NCEDensity(UnnormalizedGaussian(2, precision=precision))
    fit_nce_lbfgs(density, GaussianNoise.fit(x, scale=2.0), x, nu, rng)
    density.data = x
    return density


def _errors(density, lam):
    mean = density.log_model.mean.detach().numpy()
    prec = density.log_model.precision()
    return {"c": abs(density.c.item() - gaussian_log_normalizer(lam)),
            "mean": np.linalg.norm(mean - MU) / np.linalg.norm(MU),
            "precision": np.linalg.norm(prec - lam) / np.linalg.norm(lam),
            "squared": float(((mean - MU) ** 2).sum() + ((prec - lam)[np.tril_indices(2)] ** 2)
                             .sum() + (density.c.item() - gaussian_log_normalizer(lam)) ** 2)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consistent_on_a_gaussian_at_nu_10(seed):
    """c within ±0.05 of −ln Z, mean and precision within 5% (relative norm) at ν = 10."""
    e = _errors(_fit(10, seed, 10_000), np.linalg.inv(COV))
    assert e["c"] < 0.05 and e["mean"] < 0.05 and e["precision"] < 0.05, e


def test_consistent_with_a_diagonal_precision():
    cov = np.diag(np.diag(COV))
    rng = np.random.default_rng(4)
    x = MU + rng.standard_normal((10_000, 2)) * np.sqrt(np.diag(cov))
    density = NCEDensity(UnnormalizedGaussian(2, precision="diagonal"))
    fit_nce_lbfgs(density, GaussianNoise.fit(x, diagonal=True, scale=2.0), x, 10, rng)
    lam = np.linalg.inv(cov)
    e = _errors(density, lam)
    assert e["c"] < 0.05 and e["mean"] < 0.05 and e["precision"] < 0.05, e
    mle = gaussian_mle(x)
    assert abs(mle["c"] - gaussian_log_normalizer(lam)) < 0.05


def test_error_shrinks_as_nu_grows():
    """Median over 5 seeds (the same data for every ν within a seed) of the squared error of
    (μ, Λ, c) against the truth, and of its part due to the noise: the squared distance to the
    maximum-likelihood estimate on the same data (NCE behaves like the MLE for large ν)."""
    lam = np.linalg.inv(COV)
    errors, to_mle = [], []
    for nu in (1, 10, 25):
        fits = [_fit(nu, s, 4000) for s in range(5)]
        errors.append(np.median([_errors(f, lam)["squared"] for f in fits]))
        dist = []
        for f in fits:
            mle = gaussian_mle(f.data)
            d = f.log_model.precision() - mle["precision"]
            dist.append(((f.log_model.mean.detach().numpy() - mle["mean"]) ** 2).sum()
                        + (d[np.tril_indices(2)] ** 2).sum() + (f.c.item() - mle["c"]) ** 2)
        to_mle.append(np.median(dist))
    assert errors[0] > errors[1] > errors[2], errors
    assert to_mle[0] > 2 * to_mle[1] and to_mle[1] > to_mle[2], to_mle


def test_mlp_density_state_dict_round_trip_and_float32():
    a = NCEDensity(MLPLogDensity(2, hidden=(8,), dtype=fg.float32), c=0.5)
    assert a.c.dtype == fg.float32
    b = NCEDensity(MLPLogDensity(2, hidden=(8,), dtype=fg.float32))
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(a.log_prob(x).detach().numpy(), b.log_prob(x).detach().numpy())
    assert b.c.item() == 0.5


def test_bad_input_names_shapes():
    model = NCEDensity(UnnormalizedGaussian(2))
    noise = GaussianNoise(np.zeros(2), np.eye(2))
    with pytest.raises(ShapeError, match=r"\(4, 2\).*\(6, 3\)"):
        nce_loss(model.log_prob, noise.log_prob, np.zeros((4, 2)), np.zeros((6, 3)))
    with pytest.raises(ValueError, match="T_d=0"):
        nce_loss_from_log_probs(fg.zeros(0), np.zeros(0), fg.zeros(3), np.zeros(3))
    with pytest.raises(ShapeError, match=r"log p_n\(noise\).*expected \(3,\)"):
        nce_loss_from_log_probs(fg.zeros(2), np.zeros(2), fg.zeros(3), np.zeros(4))
    with pytest.raises(ShapeError, match=r"expected \(n, 2\)"):
        model.log_prob(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match=r"\(3, 3\).*expected \(2, 2\)"):
        GaussianNoise(np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="not positive definite"):
        GaussianNoise(np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="scale must be > 0"):
        GaussianNoise.fit(np.zeros((5, 2)) + np.arange(5)[:, None], scale=0)
    with pytest.raises(ValueError, match="'full' or 'diagonal'"):
        UnnormalizedGaussian(2, precision="banded")
    with pytest.raises(ValueError, match="ν must be > 0"):
        fit_nce_lbfgs(model, noise, np.zeros((4, 2)), 0, np.random.default_rng(0))

"""The log-likelihood losses of flowgrad.representations.likelihood ("Log-Likelihood for Neural
Nets", "Multiple Output Variables"): F.gaussian_nll_loss against torch; the masked losses against
hand-computed values and torch on the observed subset (values and gradients, float32 and
float64), gradients exactly zero at missing targets with no NaN leaking from NaN targets or
predictions; GaussianHead learning a noise level that varies with x; bad input."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import DTypeError, IndexOutOfRangeError, ShapeError, ValueRangeError
from flowgrad.representations.likelihood import (
    GaussianHead,
    gaussian_nll_from_log_var,
    masked_binary_cross_entropy_with_logits,
    masked_cross_entropy,
    masked_gaussian_nll_loss,
    masked_mse_loss,
    multi_output_loss,
    observed_mask,
)

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {"float32": dict(atol=1e-5, rtol=1e-4), "float64": dict(atol=1e-12, rtol=1e-10)}
DTYPES = ("float32", "float64")


def _data(dtype, shape=(6, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.standard_normal(shape).astype(dtype)
    var = rng.uniform(0.2, 2.0, shape).astype(dtype)
    mask = rng.uniform(size=shape) > 0.3
    mask[0] = True  # at least some observed
    return x, y, var, mask


# --- the existing Gaussian NLL against torch -----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("var_shape", ["same", "short", "one"])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_loss_matches_torch(dtype, var_shape, full):
    x, y, var, _ = _data(dtype)
    var = {"same": var, "short": var[:, 0], "one": var[:, :1]}[var_shape]
    for reduction in ("mean", "sum", "none"):
        out = {}
        for lib in (torch, fg):
            xt, vt = lib.tensor(x, requires_grad=True), lib.tensor(var, requires_grad=True)
            f = TF.gaussian_nll_loss if lib is torch else fg.nn.functional.gaussian_nll_loss
            loss = f(xt, lib.tensor(y), vt, full=full, reduction=reduction)
            loss.sum().backward()
            out[lib] = [loss.detach().numpy(), xt.grad.numpy(), vt.grad.numpy()]
        for a, b in zip(out[torch], out[fg]):
            np.testing.assert_allclose(b, a, **TOL[dtype])
    module = fg.nn.GaussianNLLLoss(full=full)(fg.tensor(x), fg.tensor(y), fg.tensor(var))
    ref = torch.nn.GaussianNLLLoss(full=full)(torch.tensor(x), torch.tensor(y),
                                              torch.tensor(var))
    np.testing.assert_allclose(module.numpy(), ref.numpy(), **TOL[dtype])


def test_gaussian_nll_loss_refuses_negative_var_like_torch():
    x, y, var, _ = _data("float64")
    var[2, 1] = -0.5
    with pytest.raises(ValueError, match="negative"):
        TF.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), torch.tensor(var))
    with pytest.raises(ValueError, match="negative"):
        fg.nn.functional.gaussian_nll_loss(fg.tensor(x), fg.tensor(y), fg.tensor(var))
    with pytest.raises(ValueError, match="-1"):
        fg.nn.functional.gaussian_nll_loss(fg.tensor(x), fg.tensor(y), -1.0)
    with pytest.raises(ValueError):
        TF.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), torch.rand(6, 4))
    with pytest.raises(ShapeError, match=r"\(6, 4\)"):
        fg.nn.functional.gaussian_nll_loss(fg.tensor(x), fg.tensor(y), fg.rand(6, 4))


# --- masked losses: hand-computed values --------------------------------------------------------

def test_masked_losses_hand_computed():
    x = fg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=fg.float64)
    y = np.array([[0.0, np.nan], [1.0, 1.0]])
    assert masked_mse_loss(x, y).item() == pytest.approx((1 + 4 + 9) / 3)
    assert masked_mse_loss(x, y, reduction="sum").item() == pytest.approx(14.0)
    np.testing.assert_array_equal(masked_mse_loss(x, y, reduction="none").numpy(),
                                  [[1.0, 0.0], [4.0, 9.0]])
    mask = np.array([[True, True], [False, True]])
    assert masked_mse_loss(x, y, mask).item() == pytest.approx((1 + 9) / 2)
    var = np.array([[2.0, 1.0], [1.0, 4.0]])
    want = 0.5 * np.mean([np.log(2) + 1 / 2, 0 + 4, np.log(4) + 9 / 4])
    assert masked_gaussian_nll_loss(x, y, var).item() == pytest.approx(want)
    full = want + 0.5 * np.log(2 * np.pi)
    assert masked_gaussian_nll_loss(x, y, var, full=True).item() == pytest.approx(full)
    assert gaussian_nll_from_log_var(x, y, np.log(var)).item() == pytest.approx(want)
    logits = fg.tensor([[0.0, 0.0], [2.0, -1.0]], dtype=fg.float64)
    b = np.array([[1.0, np.nan], [0.0, 1.0]])
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731 - softplus
    want = np.mean([sp(-0.0), sp(2.0), sp(1.0)])
    assert masked_binary_cross_entropy_with_logits(logits, b).item() == pytest.approx(want)
    scores = fg.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, 1.0, 1.0]], dtype=fg.float64)
    t = np.array([2.0, np.nan, 0.0])
    lse = lambda r: np.log(np.exp(r).sum())  # noqa: E731
    want = np.mean([lse([1, 2, 3]) - 3, lse([5, 1, 1]) - 5])
    assert masked_cross_entropy(scores, t).item() == pytest.approx(want)
    assert masked_cross_entropy(scores, np.array([2, 1, 0]),
                                np.array([True, False, True])).item() == pytest.approx(want)


# --- masked losses against torch on the observed subset ----------------------------------------

def _fg_loss(kind, x, y, var, mask):
    if kind == "mse":
        return masked_mse_loss(x, y, mask)
    if kind == "gaussian":
        return masked_gaussian_nll_loss(x, y, var, mask)
    if kind == "binary":
        return masked_binary_cross_entropy_with_logits(x, y, mask)
    return masked_cross_entropy(x, y, mask)


def _torch_loss(kind, x, y, var, obs):
    if kind == "mse":
        return TF.mse_loss(x[obs], y[obs])
    if kind == "gaussian":
        return TF.gaussian_nll_loss(x[obs], y[obs], var[obs])
    if kind == "binary":
        return TF.binary_cross_entropy_with_logits(x[obs], y[obs])
    target = torch.where(obs, y.nan_to_num(0).long(), torch.full_like(y, -100).long())
    return TF.cross_entropy(x, target, ignore_index=-100)


def _case(kind, dtype, use_nan, seed=0):
    x, y, var, mask = _data(dtype, seed=seed)
    if kind == "binary":
        y = (y > 0).astype(dtype)
    if kind == "categorical":  # logits (N, C, d) and class targets (N, d)
        x = np.random.default_rng(seed).standard_normal((6, 4, 3)).astype(dtype)
        y = np.random.default_rng(seed + 1).integers(0, 4, (6, 3)).astype(dtype)
    if use_nan:
        y = np.where(mask, y, np.nan).astype(dtype)
        return x, y, var, None, mask
    return x, y, var, mask, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["mse", "gaussian", "binary", "categorical"])
@pytest.mark.parametrize("use_nan", [True, False], ids=["nan", "mask"])
def test_masked_loss_matches_torch_on_observed_and_zero_gradient_elsewhere(dtype, kind, use_nan):
    x, y, var, mask, obs = _case(kind, dtype, use_nan)
    xf = fg.tensor(x, requires_grad=True)
    vf = fg.tensor(var, requires_grad=True)
    loss = _fg_loss(kind, xf, y if kind != "categorical" or use_nan else y.astype(np.int64),
                    vf, mask)
    loss.backward()
    xt, vt = torch.tensor(x, requires_grad=True), torch.tensor(var, requires_grad=True)
    ref = _torch_loss(kind, xt, torch.tensor(y), vt, torch.tensor(obs))
    ref.backward()
    assert loss.dtype == getattr(fg, dtype)
    np.testing.assert_allclose(loss.item(), ref.item(), **TOL[dtype])
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    missing = ~obs if kind != "categorical" else np.broadcast_to(~obs[:, None], x.shape)
    assert np.all(xf.grad.numpy()[missing] == 0.0)  # exactly zero, not merely small
    assert np.isfinite(xf.grad.numpy()).all()
    if kind == "gaussian":
        np.testing.assert_allclose(vf.grad.numpy(), vt.grad.numpy(), **TOL[dtype])
        assert np.all(vf.grad.numpy()[~obs] == 0.0)


@pytest.mark.parametrize("kind", ["mse", "gaussian", "binary", "categorical"])
def test_nan_targets_and_nan_predictions_at_missing_positions_never_reach_gradients(kind):
    x, y, var, _, obs = _case(kind, "float64", use_nan=True)
    missing = ~obs if kind != "categorical" else np.broadcast_to(~obs[:, None], x.shape)
    x = np.where(missing, np.nan, x)  # garbage predictions where nothing is observed
    var = np.where(~obs, -np.inf, var)  # and an invalid variance there too
    xf, vf = fg.tensor(x, requires_grad=True), fg.tensor(var, requires_grad=True)
    loss = _fg_loss(kind, xf, y, vf, None)
    loss.backward()
    assert np.isfinite(loss.item())
    assert np.isfinite(xf.grad.numpy()).all() and np.all(xf.grad.numpy()[missing] == 0.0)
    if kind == "gaussian":
        assert np.isfinite(vf.grad.numpy()).all() and np.all(vf.grad.numpy()[~obs] == 0.0)


def test_nothing_observed_gives_zero_loss_and_zero_gradient():
    x = fg.randn(3, 2, dtype=fg.float64, requires_grad=True)
    loss = masked_mse_loss(x, np.full((3, 2), np.nan))
    loss.backward()
    assert loss.item() == 0.0 and np.all(x.grad.numpy() == 0.0)


def test_log_var_form_equals_var_form_and_is_finite_at_extremes():
    x, y, var, mask = _data("float64")
    a = masked_gaussian_nll_loss(x, y, var, mask)
    b = masked_gaussian_nll_loss(x, y, mask=mask, log_var=np.log(var))
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    lv = fg.tensor(np.full((6, 3), -80.0), requires_grad=True)  # var = e^-80
    loss = gaussian_nll_from_log_var(fg.tensor(y), fg.tensor(y), lv)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(lv.grad.numpy()).all()


def test_multi_output_loss_sums_the_per_output_means():
    rng = np.random.default_rng(3)
    n = 8
    preds = {"age": fg.tensor(rng.standard_normal((n, 1)), requires_grad=True),
             "glasses": fg.tensor(rng.standard_normal((n, 1)), requires_grad=True),
             "kind": fg.tensor(rng.standard_normal((n, 3)), requires_grad=True),
             "height": (fg.tensor(rng.standard_normal((n, 1)), requires_grad=True),
                        fg.tensor(rng.uniform(0.5, 1.5, (n, 1)), requires_grad=True))}
    targets = {"age": np.where(rng.uniform(size=(n, 1)) > 0.5, rng.standard_normal((n, 1)),
                               np.nan),
               "glasses": (rng.uniform(size=(n, 1)) > 0.5).astype(float),
               "kind": rng.integers(0, 3, n), "height": rng.standard_normal((n, 1))}
    masks = {"glasses": rng.uniform(size=(n, 1)) > 0.4, "kind": rng.uniform(size=n) > 0.4}
    kinds = {"age": "mse", "glasses": "binary", "kind": "categorical", "height": "gaussian"}
    total, parts = multi_output_loss(preds, targets, kinds, masks, weights={"kind": 2.0})
    want = (masked_mse_loss(preds["age"], targets["age"]).item()
            + masked_binary_cross_entropy_with_logits(preds["glasses"], targets["glasses"],
                                                      masks["glasses"]).item()
            + 2 * masked_cross_entropy(preds["kind"], targets["kind"], masks["kind"]).item()
            + masked_gaussian_nll_loss(preds["height"][0], targets["height"],
                                       preds["height"][1]).item())
    assert total.item() == pytest.approx(want, rel=1e-12)
    assert set(parts) == set(kinds)
    total.backward()
    assert np.all(preds["kind"].grad.numpy()[~masks["kind"]] == 0.0)
    assert np.all(preds["age"].grad.numpy()[np.isnan(targets["age"])] == 0.0)
    with pytest.raises(ValueError, match="'poisson'"):
        multi_output_loss(preds, targets, {**kinds, "age": "poisson"})
    with pytest.raises(KeyError, match="extra"):
        multi_output_loss(preds, targets, {**kinds, "extra": "mse"})


# --- bad input ----------------------------------------------------------------------------------

def test_non_positive_variance_is_an_error_naming_value_index_and_shape():
    x, y, var, _ = _data("float64")
    for bad in (0.0, -0.25):
        v = var.copy()
        v[4, 2] = bad
        with pytest.raises(ValueRangeError, match=rf"got {bad:g} at index \(4, 2\).*\(6, 3\)"):
            masked_gaussian_nll_loss(x, y, v)
    v = var.copy()
    v[4, 2] = -1.0
    mask = np.ones((6, 3), bool)
    mask[4, 2] = False  # a missing target's variance is not looked at
    assert np.isfinite(masked_gaussian_nll_loss(x, y, v, mask).item())
    with pytest.raises(ValueError, match="exactly one"):
        masked_gaussian_nll_loss(x, y)
    with pytest.raises(ShapeError, match=r"\(6, 2\).*\(6, 3\)"):
        masked_gaussian_nll_loss(x, y, var[:, :2])


def test_mask_of_the_wrong_shape_or_dtype_is_an_error_naming_shapes():
    x, y, _, mask = _data("float64")
    with pytest.raises(ShapeError, match=r"mask of shape \(6,\).*target of shape \(6, 3\)"):
        masked_mse_loss(x, y, mask[:, 0])
    with pytest.raises(ShapeError, match=r"\(3, 6\)"):
        masked_binary_cross_entropy_with_logits(x, (y > 0) * 1.0, mask.T)
    with pytest.raises(DTypeError, match="bool"):
        masked_mse_loss(x, y, mask.astype(np.float64))
    with pytest.raises(ShapeError, match=r"\(6, 2\)"):
        masked_mse_loss(x, y[:, :2])
    with pytest.raises(ShapeError, match=r"\(5,\).*\(6, 4\)"):
        masked_cross_entropy(np.zeros((6, 4)), np.zeros(5, np.int64))
    assert observed_mask(np.array([1.0, np.nan]), np.array([False, True])).tolist() == [False,
                                                                                         False]


def test_out_of_range_targets_are_errors():
    with pytest.raises(IndexOutOfRangeError, match="target 4 at index \\(1,\\).*4 classes"):
        masked_cross_entropy(fg.zeros(3, 4), np.array([0, 4, 1]))
    masked_cross_entropy(fg.zeros(3, 4), np.array([0, 4, 1]), np.array([True, False, True]))
    with pytest.raises(DTypeError, match="whole class indices"):
        masked_cross_entropy(fg.zeros(3, 4), np.array([0.5, 1.0, np.nan]))
    with pytest.raises(ValueRangeError, match="in \\[0, 1\\], got 2"):
        masked_binary_cross_entropy_with_logits(fg.zeros(2, 2), np.array([[0, 1], [2, 1.0]]))


# --- the Gaussian head ---------------------------------------------------------------------------

def test_gaussian_head_keeps_the_variance_positive_and_finite():
    head = GaussianHead(3, 2, min_var=1e-3, dtype=fg.float64)
    head.linear.bias.data = fg.tensor([0.0, 0.0, -1e4, 1e4], dtype=fg.float64)
    mean, var = head(fg.randn(5, 3, dtype=fg.float64))
    assert tuple(mean.shape) == tuple(var.shape) == (5, 2)
    v = var.detach().numpy()
    assert np.all(v[:, 0] >= 1e-3) and np.all(np.isfinite(v)) and v[:, 1].min() > 9e3
    loss = head.nll(fg.randn(5, 3, dtype=fg.float64), np.zeros((5, 2)))
    loss.backward()
    assert np.isfinite(loss.item())
    assert all(np.isfinite(p.grad.numpy()).all() for p in head.parameters())
    with pytest.raises(ValueError, match="min_var"):
        GaussianHead(3, min_var=0.0)


def test_heteroscedastic_regression_learns_a_noise_level_that_varies_with_x():
    """y = sin(3x) + σ(x) ε with σ(x) = 0.05 + 0.45 x on [0, 1]: the predicted σ follows."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1024, 1)).astype(np.float32)
    sigma = 0.05 + 0.45 * x
    y = (np.sin(3 * x) + sigma * rng.standard_normal(x.shape)).astype(np.float32)
    fg.manual_seed(0)
    body = fg.nn.Sequential(fg.nn.Linear(1, 32), fg.nn.Tanh())
    head = GaussianHead(32, 1)
    params = list(body.parameters()) + list(head.parameters())
    opt = fg.optim.Adam(params, lr=1e-2)
    xt = fg.tensor(x)
    for _ in range(400):
        loss = head.nll(body(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe = np.array([[0.1], [0.5], [0.9]], dtype=np.float32)
    with fg.no_grad():
        mean, var = head(body(fg.tensor(probe)))
    std = np.sqrt(var.numpy()[:, 0])
    true = 0.05 + 0.45 * probe[:, 0]
    assert std[0] < std[1] < std[2], std
    np.testing.assert_allclose(std, true, rtol=0.35)
    np.testing.assert_allclose(mean.numpy()[:, 0], np.sin(3 * probe[:, 0]), atol=0.1)
    # a constant-variance fit of the same mean has a worse likelihood
    resid = (y - head(body(xt))[0].detach().numpy()) ** 2
    constant = 0.5 * (np.log(resid.mean()) + 1)
    assert loss.item() < constant - 0.1

"""Log-likelihood losses for the lecture's slides "Log-Likelihood for Neural Nets" (a Gaussian
output whose variance the network predicts too: heteroscedastic regression) and "Multiple Output
Variables" (when some targets are missing, ignore their losses).

A missing target is a NaN in a floating target, or False in a boolean ``mask`` of the target's
shape (per example and per output). Every masked loss takes the mean over the observed targets
only (0 when none is observed); the missing positions are cut out of the graph with ``where``
before any arithmetic, so their gradients are exactly zero and a NaN target, or a NaN/inf
prediction at a missing position, never reaches a gradient. Targets are constants (no gradient
flows to them)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DTypeError, IndexOutOfRangeError, ShapeError, ValueRangeError
from ..nn import functional as F
from ..nn.layers.linear import Linear
from ..nn.module import Module
from ..tensor import Tensor, as_tensor, where

__all__ = ["GaussianHead", "gaussian_nll_from_log_var", "masked_binary_cross_entropy_with_logits",
           "masked_cross_entropy", "masked_gaussian_nll_loss", "masked_mse_loss",
           "multi_output_loss", "observed_mask"]

_REDUCTIONS = ("mean", "sum", "none")
_LOG_2PI = math.log(2 * math.pi)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _const(t: Tensor, data) -> Tensor:
    """A constant (no gradient) holding ``data`` on ``t``'s array library."""
    return Tensor._wrap(t.xp.asarray(data), None, False)


def observed_mask(target, mask=None, op: str = "observed_mask"):
    """The boolean array of observed targets: not NaN (for a floating target) and, if given,
    True in ``mask``. ``mask`` (bool) must have exactly the target's shape."""
    target = _as_tensor(target)
    data = target._data
    observed = ~target.xp.isnan(data) if data.dtype.kind == "f" else target.xp.ones(
        data.shape, dtype=bool)
    if mask is not None:
        mask = _as_tensor(mask)
        if mask.dtype.kind != "b":
            raise DTypeError(f"{op}: mask must be a bool tensor (True = observed), got "
                             f"{mask.dtype}")
        if tuple(mask.shape) != tuple(target.shape):
            raise ShapeError(f"{op}: mask of shape {tuple(mask.shape)} does not match the target "
                             f"of shape {tuple(target.shape)}: expected one entry per example "
                             "and per output, the target's shape")
        observed = observed & mask._data
    return observed


def _check_pair(op: str, input: Tensor, target: Tensor) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} and target of shape "
                         f"{tuple(target.shape)} must have the same shape")
    if input.dtype.kind != "f":
        raise DTypeError(f"{op}: input must be floating point, got {input.dtype}")


def _safe(x: Tensor, observed: Tensor, fill: float) -> Tensor:
    """``x`` where observed, else the constant ``fill``: nothing of a missing position (its value
    or its gradient) survives."""
    return where(observed, x, fill)


def _masked_reduce(op: str, loss: Tensor, observed: Tensor, reduction: str) -> Tensor:
    loss = where(observed, loss, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        count = int(observed._data.sum())
        return loss.sum() / max(count, 1)
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _prepare(op: str, input, target, mask):
    input, target = _as_tensor(input), _as_tensor(target)
    _check_pair(op, input, target)
    observed = _const(input, observed_mask(target, mask, op))
    target = _safe(target.detach().to(input.dtype), observed, 0.0)
    return input, target, observed


def masked_mse_loss(input, target, mask=None, reduction: str = "mean") -> Tensor:
    """(input − target)², averaged over the observed targets ("Multiple Output Variables")."""
    input, target, observed = _prepare("masked_mse_loss", input, target, mask)
    d = _safe(input, observed, 0.0) - target
    return _masked_reduce("masked_mse_loss", d * d, observed, reduction)


def _first_bad(op: str, name: str, data, bad, shape) -> None:
    if bool(bad.any()):
        index = tuple(int(i) for i in np.argwhere(np.asarray(bad))[0])
        value = float(np.asarray(data)[index])
        raise ValueRangeError(f"{op}: {name} must be positive at every observed target, got "
                              f"{value:.6g} at index {index} of {name} with shape {shape}; "
                              "predict it through softplus or exp (see GaussianHead)")


def gaussian_nll_from_log_var(input, target, log_var, full: bool = False,
                              reduction: str = "mean") -> Tensor:
    """½ (log σ² + (y − μ)² e^{−log σ²}) (+ ½ log 2π if ``full``) from the log-variance: finite
    for any log_var, the stable form of the Gaussian output's negative log-likelihood."""
    return masked_gaussian_nll_loss(input, target, log_var=log_var, full=full,
                                    reduction=reduction)


def masked_gaussian_nll_loss(input, target, var=None, mask=None, *, log_var=None,
                             full: bool = False, reduction: str = "mean") -> Tensor:
    """½ (log σ² + (y − μ)²/σ²) (+ ½ log 2π if ``full``) over the observed targets: the
    Gaussian output of "Log-Likelihood for Neural Nets" with a predicted variance.

    Give the variance as ``var`` (positive at every observed target, else a ValueRangeError that
    names the value and where it is) or as ``log_var`` (any real), of the input's shape. Unlike
    F.gaussian_nll_loss there is no eps clamp: a non-positive variance is an error."""
    op = "masked_gaussian_nll_loss"
    if (var is None) == (log_var is None):
        raise ValueError(f"{op}: give exactly one of var and log_var")
    input, target, observed = _prepare(op, input, target, mask)
    scale = _as_tensor(var if log_var is None else log_var)
    if isinstance(var, (int, float)) or isinstance(log_var, (int, float)):
        scale = _const(input, input.xp.full(input.shape, float(scale.item()), dtype=input.dtype))
    name = "var" if log_var is None else "log_var"
    if tuple(scale.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: {name} of shape {tuple(scale.shape)} must have the input's "
                         f"shape {tuple(input.shape)}")
    if log_var is None:
        s = scale._data
        _first_bad(op, "var", s, observed._data & ~(s > 0), tuple(scale.shape))
        var = _safe(scale, observed, 1.0)
        log_var, inv_var = var.log(), 1.0 / var
    else:
        log_var = _safe(scale, observed, 0.0)
        inv_var = (-log_var).exp()
    d = _safe(input, observed, 0.0) - target
    loss = (log_var + d * d * inv_var) * 0.5
    if full:
        loss = loss + 0.5 * _LOG_2PI
    return _masked_reduce(op, loss, observed, reduction)


def masked_binary_cross_entropy_with_logits(input, target, mask=None,
                                            reduction: str = "mean") -> Tensor:
    """−[y log σ(x) + (1 − y) log(1 − σ(x))] from logits x over the observed targets (a
    Bernoulli output per column), finite at any logit."""
    op = "masked_binary_cross_entropy_with_logits"
    input, target, observed = _prepare(op, input, target, mask)
    t = target._data
    bad = observed._data & ~((t >= 0) & (t <= 1))
    if bool(bad.any()):
        index = tuple(int(i) for i in np.argwhere(np.asarray(bad))[0])
        raise ValueRangeError(f"{op}: observed targets must be in [0, 1], got "
                              f"{float(np.asarray(t)[index]):.6g} at index {index} of the "
                              f"target with shape {tuple(target.shape)}")
    x = _safe(input, observed, 0.0)
    loss = -(target * F.logsigmoid(x) + (1.0 - target) * F.logsigmoid(-x))
    return _masked_reduce(op, loss, observed, reduction)


def masked_cross_entropy(input, target, mask=None, reduction: str = "mean") -> Tensor:
    """−log softmax(x)[y] over the observed targets (a categorical output).

    Args: input (N, C) or (N, C, d1, ...) logits; target (N,) or (N, d1, ...) class indices,
    int64, or floating with NaN where the target is missing; mask (bool) of the target's shape.
    """
    op = "masked_cross_entropy"
    input, target = _as_tensor(input), _as_tensor(target)
    if input.dtype.kind != "f":
        raise DTypeError(f"{op}: input must hold floating-point logits, got {input.dtype}")
    if input.ndim < 2 or tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
        raise ShapeError(f"{op}: target of shape {tuple(target.shape)} does not fit logits of "
                         f"shape {tuple(input.shape)}: expected logits (N, C, ...) and target "
                         "(N, ...) without the class dim")
    c = input.shape[1]
    observed_data = observed_mask(target, mask, op)
    t = target._data
    if t.dtype.kind == "f":
        whole = observed_data & (t != np.floor(np.where(observed_data, t, 0)))
        if bool(whole.any()):
            raise DTypeError(f"{op}: a floating target must hold whole class indices (or NaN "
                             f"for missing), got {float(t[whole].reshape(-1)[0]):.6g}")
    elif t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must hold class indices (int64, or floating with NaN "
                         f"for missing), got {target.dtype}")
    labels = input.xp.where(observed_data, t, 0).astype(np.int64)
    bad = observed_data & ((labels < 0) | (labels >= c))
    if bool(bad.any()):
        index = tuple(int(i) for i in np.argwhere(np.asarray(bad))[0])
        raise IndexOutOfRangeError(f"{op}: target {int(labels[index])} at index {index} is out "
                                   f"of range for {c} classes (expected 0 to {c - 1})")
    observed = _const(input, observed_data)
    expand = observed_data.reshape((input.shape[0], 1) + tuple(input.shape[2:]))
    x = _safe(input, _const(input, input.xp.broadcast_to(expand, input.shape)), 0.0)
    log_p = x.log_softmax(1)
    picked = log_p.gather(1, _const(input, labels[:, None])).squeeze(1)
    return _masked_reduce(op, -picked, observed, reduction)


_KINDS = {"mse": masked_mse_loss, "binary": masked_binary_cross_entropy_with_logits,
          "categorical": masked_cross_entropy, "gaussian": None}


def multi_output_loss(predictions: dict, targets: dict, kinds: dict, masks: dict | None = None,
                      weights: dict | None = None) -> tuple[Tensor, dict]:
    """Σ_k w_k · (mean loss of output k over its observed targets): the negative log-likelihood
    of several output variables with some targets missing ("Multiple Output Variables").

    ``kinds[k]`` is "mse", "gaussian" (prediction a pair (mean, var)), "binary" (logits) or
    "categorical" (logits (N, C, ...)); an output with no observed target adds 0. Returns the
    total and the per-output losses."""
    masks, weights = masks or {}, weights or {}
    unknown = set(kinds) ^ set(predictions) | set(kinds) ^ set(targets)
    if unknown:
        raise KeyError(f"multi_output_loss: outputs {sorted(unknown)} are not in all of "
                       f"predictions {sorted(predictions)}, targets {sorted(targets)} and kinds "
                       f"{sorted(kinds)}")
    parts, total = {}, None
    for name, kind in kinds.items():
        if kind not in _KINDS:
            raise ValueError(f"multi_output_loss: output {name!r} has kind {kind!r}; expected "
                             f"one of {sorted(_KINDS)}")
        if kind == "gaussian":
            mean, var = predictions[name]
            loss = masked_gaussian_nll_loss(mean, targets[name], var, masks.get(name))
        else:
            loss = _KINDS[kind](predictions[name], targets[name], masks.get(name))
        parts[name] = loss
        term = loss * float(weights.get(name, 1.0))
        total = term if total is None else total + term
    return total, parts


class GaussianHead(Module):
    """A Gaussian output layer: one affine map predicts the mean μ(x) and a raw scale r(x), the
    variance σ²(x) = softplus(r) + ``min_var`` (positive, bounded away from 0) — heteroscedastic
    regression (lecture: "Log-Likelihood for Neural Nets").

    Shapes: input (*, in_features) -> (mean, var), each (*, out_features)."""

    def __init__(self, in_features: int, out_features: int = 1, min_var: float = 1e-4,
                 dtype=None) -> None:
        super().__init__()
        if not min_var > 0:
            raise ValueError(f"GaussianHead: min_var must be positive, got {min_var}")
        self.out_features = out_features
        self.min_var = float(min_var)
        self.linear = Linear(in_features, 2 * out_features, dtype=dtype)

    def forward(self, input) -> tuple[Tensor, Tensor]:
        out = self.linear(input)
        k = self.out_features
        mean, raw = out[..., :k], out[..., k:]
        return mean, F.softplus(raw) + self.min_var

    def nll(self, input, target, mask=None, full: bool = False,
            reduction: str = "mean") -> Tensor:
        """The Gaussian negative log-likelihood of ``target`` (missing targets skipped)."""
        mean, var = self(input)
        return masked_gaussian_nll_loss(mean, target, var, mask, full=full, reduction=reduction)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, min_var={self.min_var:g}"

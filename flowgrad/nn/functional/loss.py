"""Losses (lecture: "Log-Likelihood as Loss function", "Gaussian output"): the negative log-
likelihoods and the margin losses of torch.nn.functional."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...autograd.grad_mode import is_grad_enabled
from ...dtypes import mixed_dtypes, require_floating
from ...errors import DTypeError, ShapeError, ValueRangeError
from ...ops import activation as A
from ...ops import loss as LS
from ...tensor import Tensor, where
from ._util import _shape, _tensor
from .activation import logsigmoid
from .distance import pairwise_distance

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op: str, size_average, reduce, reduction: str, extra: tuple = ()) -> str:
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated; use reduction=",
                      stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in _REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + extra)
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _pair(op: str, input: Tensor, target) -> tuple:
    """The input and target of an elementwise loss, broadcast (with PyTorch's warning) when
    their shapes differ but broadcast."""
    target = _tensor(target)
    if input.shape != target.shape:
        try:
            shape = np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ShapeError(f"{op}: input {_shape(input)} and target {_shape(target)} must "
                             "have the same shape") from None
        warnings.warn(f"{op}: target size {_shape(target)} differs from input size "
                      f"{_shape(input)}; they broadcast to {shape}, which is likely not what "
                      "you want. Please ensure they have the same size.", stacklevel=3)
        input, target = input.expand(shape), target.expand(shape)
    return input, target


def _bool_to_float(x: Tensor, y: Tensor) -> tuple:
    """A bool operand beside a floating one takes its dtype (PyTorch's mse/smooth_l1/huber
    kernels compute in the promoted dtype, where a bool - bool subtraction would be refused)."""
    if x.dtype.kind == "b" and y.dtype.kind == "f":
        x = x.to(y.dtype)
    elif y.dtype.kind == "b" and x.dtype.kind == "f":
        y = y.to(x.dtype)
    return x, y


def _weighted(op: str, loss: Tensor, weight, reduction: str, input: Tensor,
              mean_by_weight: bool = True) -> Tensor:
    if weight is None:
        return _reduce(loss, reduction)
    if _shape(weight) != _shape(input):
        raise ShapeError(f"{op}: weight of shape {_shape(weight)} must have the input's shape "
                         f"{_shape(input)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def _class_weight(op: str, weight, c: int, input: Tensor):
    if weight is None:
        return None
    weight = _tensor(weight)
    if _shape(weight) != (c,):
        raise ShapeError(f"{op}: weight must hold one entry per class, shape ({c},), got "
                         f"{_shape(weight)}")
    if weight.requires_grad and is_grad_enabled():
        raise ValueError(f"{op}: the gradient with respect to the class weight is not "
                         "computed (as in PyTorch); pass weight.detach()")
    if weight.dtype != input.dtype:
        raise mixed_dtypes(op, input.dtype, weight.dtype)
    return weight


def _check_class_target(op: str, input: Tensor, target: Tensor, c: int,
                        ignore_index: int) -> None:
    if target.dtype not in (np.int64, np.uint8):  # PyTorch's kernels take Long or Byte
        raise DTypeError(f"{op}: target must be an integer tensor of class indices (int64), "
                         f"got {target.dtype}; convert with .long()")
    expected = () if input.ndim == 1 else (input.shape[0],) + _shape(input)[2:]
    if _shape(target) != expected:
        raise ShapeError(f"{op}: target of shape {_shape(target)} does not fit input of shape "
                         f"{_shape(input)}: expected target of shape {expected} holding class "
                         f"indices in [0, {c})")
    t = target._data
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        v = int(t[bad].reshape(-1)[0])
        raise IndexError(f"{op}: target {v} is out of bounds for {c} classes (expected 0 to "
                         f"{c - 1}, or ignore_index={ignore_index})")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-log softmax(x)[target], fused into one node (lecture: "Log-Likelihood as Loss
    function"; label smoothing: Szegedy et al. 2016).

    Args: input (N, C, d1, ...) or (C,) logits; target (N, d1, ...) or () integer class
    indices (``ignore_index`` skipped), or class probabilities of the input's shape;
    weight (C,). Returns a scalar, or (N, d1, ...) for reduction='none'.
    """
    reduction = _reduction("cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    target = _tensor(target)
    if input.ndim and input.dtype.kind != "f":  # the dtype first, as PyTorch's log_softmax
        require_floating("cross_entropy", input)
    if input.ndim == 0:
        raise ShapeError("cross_entropy: input must be (C,) or (N, C, ...) logits, got a 0-d "
                         "tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    weight = _class_weight("cross_entropy", weight, c, input)
    if target.dtype.kind == "f":
        if _shape(target) != _shape(input):
            raise DTypeError(f"cross_entropy: a floating target is read as class probabilities "
                             f"and must have the input's shape {_shape(input)}, got "
                             f"{_shape(target)}; for class indices pass an integer tensor "
                             "(target.long())")
        if ignore_index >= 0:
            raise ValueError("cross_entropy: ignore_index is not supported for class-"
                             "probability targets")
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c)
    _check_class_target("cross_entropy", input, target, c, ignore_index)
    return LS.CrossEntropy.apply(input, target, weight, ignore_index, float(label_smoothing),
                                 reduction)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c):
    cdim = 1 if input.ndim >= 2 else 0
    logp = input.log_softmax(cdim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    prod = logp * target
    if weight is not None:
        prod = prod * (weight.reshape((1, c) + (1,) * (input.ndim - 2)) if cdim else weight)
    if reduction == "none":
        return -prod.sum(cdim)
    if reduction == "sum":
        return -prod.sum()
    rows = input.numel() // c if c else 0
    return -prod.sum() / (rows if rows else float("nan"))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """-input[target] for log-probabilities (lecture: "Log-Likelihood as Loss function").

    Args: input (N, C, d1, ...) or (C,) log-probabilities; target (N, d1, ...) or () class
    indices; weight (C,). 'mean' divides by the summed weight of the targets used.
    """
    reduction = _reduction("nll_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if input.ndim == 0:
        raise ShapeError("nll_loss: input must be (C,) or (N, C, ...) log-probabilities, got a "
                         "0-d tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    weight = _class_weight("nll_loss", weight, c, input)
    _check_class_target("nll_loss", input, target, c, ignore_index)
    return LS.NLLLoss.apply(input, target, weight, ignore_index, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(x - y)^2, the log-likelihood of a unit-variance Gaussian up to constants (lecture:
    "Gaussian output"); with ``weight`` (input's shape), 'mean' divides by its sum."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    x, y = _bool_to_float(*_pair("mse_loss", input, target))
    if weight is None and x.dtype == y.dtype:
        return LS.MSELoss.apply(x, y, reduction)
    d = x - y
    return _weighted("mse_loss", d * d, weight, reduction, input)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|x - y| (the Laplace log-likelihood up to constants)."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    x, y = _pair("l1_loss", input, target)
    if x.dtype.kind != "f" and y.dtype.kind != "f":
        require_floating("l1_loss", x)
    return _weighted("l1_loss", (x - y).abs(), weight, reduction, input)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None,
                   reduce=None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (Girshick 2015)."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    x, y = _bool_to_float(*_pair("smooth_l1_loss", input, target))
    if x.dtype.kind != "f" and y.dtype.kind != "f":
        require_floating("smooth_l1_loss", x)
    d = (x - y).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (Huber 1964); with
    ``weight``, 'mean' is the mean of the weighted losses (PyTorch's rule)."""
    reduction = _reduction("huber_loss", None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x, y = _pair("huber_loss", input, target)
    require_floating("huber_loss", x)
    x, y = _bool_to_float(x, y)
    d = (x - y).abs()
    loss = where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if loss.dtype != input.dtype:  # PyTorch: computed in the promoted dtype, returned in input's
        loss = loss.to(input.dtype)
    return _weighted("huber_loss", loss, weight, reduction, input, mean_by_weight=False)


def _check_binary(op: str, input: Tensor, target: Tensor, weight, pos_weight=None,
                  promote: bool = False):
    if _shape(target) != _shape(input):  # checked first, as in PyTorch
        raise ShapeError(f"{op}: target of shape {_shape(target)} must have the input's shape "
                         f"{_shape(input)}")
    require_floating(op, input)
    if target.dtype.kind != "f":
        raise DTypeError(f"{op}: target must be a floating tensor (probabilities of the "
                         f"positive class), got {target.dtype}; convert with .float()")
    if target.dtype != input.dtype:
        if not promote:  # PyTorch's binary_cross_entropy refuses
            raise mixed_dtypes(op, input.dtype, target.dtype, ("input", "target"))
        # the logits form computes its log-sigmoid in the input's dtype and the rest in the
        # target's (PyTorch's result dtype, either way); BCEWithLogits does the cast
    out = []
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is not None:
            t = _tensor(t)
            try:
                ok = np.broadcast_shapes(t.shape, input.shape) == input.shape
            except ValueError:
                ok = False
            if not ok:
                raise ShapeError(f"{op}: {name} of shape {_shape(t)} does not broadcast to the "
                                 f"input's shape {_shape(input)}")
            t = t.to(target.dtype)
        out.append(t)
    return input, target, out[0], out[1]


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-w [y log x + (1 - y) log(1 - x)] for probabilities x, logs clamped at -100 as in
    PyTorch (lecture: "Log-Likelihood as Loss function", Bernoulli output)."""
    reduction = _reduction("binary_cross_entropy", size_average, reduce, reduction)
    target = _tensor(target)
    input, target, weight, _ = _check_binary("binary_cross_entropy", input, target, weight)
    for name, data in (("input", input._data), ("target", target._data)):
        # NaN fails the test too, as in PyTorch (``not 0 <= x <= 1``)
        if data.size and not bool(((data >= 0) & (data <= 1)).all()):
            bad = data[~((data >= 0) & (data <= 1))].reshape(-1)[0]
            raise ValueRangeError(f"binary_cross_entropy: all elements of {name} should be "
                                  f"between 0 and 1 (probabilities), got {float(bad):.4g}"
                                  + ("; for logits use binary_cross_entropy_with_logits"
                                     if name == "input" else ""))
    return LS.BinaryCrossEntropy.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(x), fused and stable at any logit; ``pos_weight``
    (broadcasting along the last dim, one per class) weights the positive term."""
    reduction = _reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    target = _tensor(target)
    input, target, weight, pos_weight = _check_binary("binary_cross_entropy_with_logits",
                                                      input, target, weight, pos_weight,
                                                      promote=True)
    return LS.BCEWithLogits.apply(input, target, weight, pos_weight, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """0.5 (log var + (x - y)^2 / var) (+ 0.5 log 2 pi if ``full``): the negative
    log-likelihood of a Gaussian whose variance is predicted too (lecture: "Gaussian output").

    Args: input, target (N, *); var of the input's shape, or one dim short / of size 1 in one
    dim (shared variance), or a float. var is clamped at eps with the gradient passing through.
    """
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var must be non-negative, got {var}")
        var = Tensor._wrap(input.xp.full(input.shape, var, dtype=input.dtype), None, False)
    else:
        var = _tensor(var)
        if bool((var._data < 0).any()):
            raise ValueError("gaussian_nll_loss: var has negative entries; predict it through "
                             "softplus or exp")
    if var.shape != input.shape:
        if _shape(input)[:-1] == _shape(var):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and sum(v for i, v in zip(input.shape, var.shape)
                                                 if i != v) == 1):
            raise ShapeError(f"gaussian_nll_loss: var of shape {_shape(var)} does not fit input "
                             f"{_shape(input)}: expected the input's shape, the input's shape "
                             "without its last dim, or a size-1 dim in place of one")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"gaussian_nll_loss: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    low = var._data < eps
    if bool(low.any()):  # clamp the value only: the gradient passes through, as in PyTorch
        var = var + Tensor._wrap(var.xp.where(low, eps - var._data, 0).astype(var.dtype),
                                 None, False)
    d = input - _tensor(target)
    loss = (var.log() + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: y (log y - x) for log-probabilities x;
    'batchmean' divides the sum by the batch size (the true KL), 'mean' by every element."""
    if size_average is not None or reduce is not None:
        reduction = _reduction("kl_div", size_average, reduce, reduction)
    else:
        reduction = _reduction("kl_div", None, None, reduction, ("batchmean",))
        if reduction == "mean":
            warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch "
                          "size and the support size; 'batchmean' divides only by the batch "
                          "size, which is the KL divergence", stacklevel=2)
    target = _tensor(target)
    require_floating("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:  # xlogy(y, y) - y x, with 0 log 0 = 0
        loss = target * where(target == 0, 1.0, target).log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True,
                     full: bool = False, size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """exp(x) - y x (log_input) or x - y log(x + eps): the Poisson negative log-likelihood,
    with Stirling's term for y > 1 if ``full``."""
    reduction = _reduction("poisson_nll_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        big = target > 1
        safe = where(big, target, 2.0)
        stirling = safe * safe.log() - safe + 0.5 * (safe * (2 * math.pi)).log()
        loss = loss + where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor,
                        margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, -y (x1 - x2) + margin) for y = +-1: a ranking loss (lecture: "Maps between
    representations")."""
    reduction = _reduction("margin_ranking_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ShapeError(f"margin_ranking_loss: input1 {_shape(input1)}, input2 "
                         f"{_shape(input2)} and target {_shape(target)} must have the same "
                         "number of dimensions")
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1."""
    reduction = _reduction("hinge_embedding_loss", size_average, reduce, reduction)
    target = _tensor(target)
    require_floating("hinge_embedding_loss", input)
    loss = where(target != 1, (margin - input).clamp_min(0.0), 0.0) \
        + where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None,
                     reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)) for y = +-1 (logistic loss)."""
    reduction = _reduction("soft_margin_loss", size_average, reduce, reduction)
    return _reduce(A.Softplus.apply(-_tensor(target) * input, 1.0, 20.0), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor,
                                weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """Mean over classes of the binary cross-entropy of each logit (multi-label output)."""
    reduction = _reduction("multilabel_soft_margin_loss", size_average, reduce, reduction)
    target = _tensor(target)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    cdim = input.ndim - 1
    loss = loss.sum(dim=cdim) * (1.0 / input.shape[cdim])
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor,
                          margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (joint
    embeddings; lecture: "Maps between representations")."""
    reduction = _reduction("cosine_embedding_loss", size_average, reduce, reduction)
    target = _tensor(target)
    d = input1.ndim - 1
    prod = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + 1e-12
    m2 = (input2 * input2).sum(d) + 1e-12
    cos = prod / (m1 * m2).sqrt()
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).clamp_min(0.0),
                                                    0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin) with pairwise p-norm distances (Schroff et al. 2015);
    ``swap`` uses the smaller of d(a, n) and d(p, n) (Balntas et al. 2016)."""
    reduction = _reduction("triplet_margin_loss", size_average, reduce, reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ShapeError(f"triplet_margin_loss: anchor {_shape(anchor)}, positive "
                         f"{_shape(positive)} and negative {_shape(negative)} must have the "
                         "same number of dimensions")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = d_an.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((d_ap - d_an + margin).clamp_min(0.0), reduction)

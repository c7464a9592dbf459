"""Normalisation: layer, RMS, batch, instance and group norm; normalize."""

from __future__ import annotations

import numpy as np

from ...autograd.grad_mode import no_grad
from ...dtypes import check_same, require_floating
from ...errors import ShapeError
from ...ops import normalization as N
from ...tensor import Tensor
from ._util import _shape


def _affine(out: Tensor, weight, bias, shape: tuple) -> Tensor:
    if weight is not None:
        out = out * (weight.reshape(shape) if shape else weight)
    if bias is not None:
        out = out + (bias.reshape(shape) if shape else bias)
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last dims to zero mean and unit variance, then scale and shift
    (Ba et al. 2016).

    Args: input (*, *normalized_shape); weight and bias of ``normalized_shape``.
    """
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or _shape(input)[-k:] != ns:
        raise ShapeError(f"layer_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input, got input of shape {_shape(input)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and _shape(t) != ns:
            raise ShapeError(f"layer_norm: {name} of shape {_shape(t)} must have "
                             f"normalized_shape {ns}")
    require_floating("layer_norm", input)
    check_same("layer_norm", (input, weight, bias), ("input", "weight", "bias"))
    return N.LayerNorm.apply(input, weight, bias, k, float(eps))


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dims, times weight (Zhang & Sennrich 2019);
    eps defaults to the dtype's machine epsilon, as in PyTorch."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or _shape(input)[-k:] != ns:
        raise ShapeError(f"rms_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input, got input of shape {_shape(input)}")
    require_floating("rms_norm", input)
    if weight is not None and _shape(weight) != ns:
        raise ShapeError(f"rms_norm: expected weight of the shape of normalized_shape {ns}, got "
                         f"{_shape(weight)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    if weight is None:
        return out
    out = out * weight
    # PyTorch: normalised in the input's dtype, scaled in the promoted one, returned in input's
    return out if out.dtype == input.dtype else out.to(input.dtype)


def batch_norm(input: Tensor, running_mean: Tensor | None,
               running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel over the batch (and spatial dims) (Ioffe & Szegedy 2015).

    Args: input (N, C, *); running_mean, running_var, weight, bias (C,). While training, uses
    the batch's statistics and updates the running ones in place (no_grad) with momentum,
    the variance unbiased, as PyTorch does; otherwise uses the running statistics.
    """
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected input of shape (N, C, ...), got {_shape(input)}")
    c = input.shape[1]
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ShapeError(f"batch_norm: {name} of shape {_shape(t)} does not fit the {c} "
                             f"channels of input {_shape(input)}: expected ({c},)")
    require_floating("batch_norm", input)
    check_same("batch_norm", (input, weight, bias, running_mean, running_var),
               ("input", "weight", "bias", "running_mean", "running_var"))
    if training:
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {_shape(input)}")
        if momentum is None:
            raise ValueError("batch_norm: momentum must be a number; for a cumulative average "
                             "pass momentum=1/num_batches_tracked")
        stats = []
        out = N.BatchNorm.apply(input, weight, bias, float(eps), stats)
        mean, var = (Tensor._wrap(a, None, False) for a in stats)
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(var, alpha=momentum * n / (n - 1))
        return out
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training=False (evaluation normalises with them)")
        rm = running_mean.to(input.dtype).reshape(stat_shape)
        rv = running_var.to(input.dtype).reshape(stat_shape)
        out = (input - rm) * (rv + eps).rsqrt()
    return _affine(out, weight, bias, stat_shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample over its spatial dims (Ulyanov et al. 2016).

    Args: input (N, C, *); running stats, weight and bias (C,).
    """
    if input.ndim < 3:
        raise ShapeError(f"instance_norm: expected input of shape (N, C, L, ...), got "
                         f"{_shape(input)}")
    n, c = input.shape[:2]
    x = input.reshape((1, n * c) + _shape(input)[2:])
    rm = None if running_mean is None else running_mean.detach().repeat(n)
    rv = None if running_var is None else running_var.detach().repeat(n)
    out = batch_norm(x, rm, rv, None, None, use_input_stats, momentum, eps).reshape(input.shape)
    if use_input_stats:
        with no_grad():
            if running_mean is not None:
                running_mean.copy_(rm.reshape(n, c).mean(dim=0))
            if running_var is not None:
                running_var.copy_(rv.reshape(n, c).mean(dim=0))
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each group of channels of each sample (Wu & He 2018).

    Args: input (N, C, *) with C divisible by num_groups; weight and bias (C,).
    """
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected input of shape (N, C, ...), got {_shape(input)}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ShapeError(f"group_norm: the {c} channels of input {_shape(input)} must be "
                         f"divisible by num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ShapeError(f"group_norm: {name} of shape {_shape(t)} does not fit the {c} "
                             f"channels: expected ({c},)")
    require_floating("group_norm", input)
    check_same("group_norm", (input, weight, bias), ("input", "weight", "bias"))
    x = input.reshape(n, num_groups, -1)
    xc = x - x.mean(dim=-1, keepdim=True)
    var = (xc * xc).mean(dim=-1, keepdim=True)
    out = (xc * (var + eps).rsqrt()).reshape(input.shape)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """x / max(||x||_p, eps) along ``dim``."""
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    return input / input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)

"""Helpers shared by the distributions: broadcasting, probs/logits maps, lazy properties, erfinv."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend, dtypes
from ..autograd import Function
from ..nn import functional as F
from ..tensor import Tensor, tensor
from ..tensor_functions import broadcast_tensors

__all__ = ["broadcast_all", "clamp_probs", "erfinv", "lazy_property", "logits_to_probs",
           "probs_to_logits"]


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number)


def broadcast_all(*values):
    """Broadcast Tensors and Python numbers together, as ``torch.distributions.utils``.

    Numbers become Tensors of the first Tensor's dtype and device (the default dtype when all
    are numbers); then everything is broadcast with ``broadcast_tensors``.
    """
    if not all(isinstance(v, Tensor) or _is_number(v) for v in values):
        raise ValueError("Input arguments must all be instances of Number or flowgrad.Tensor, "
                         f"got {[type(v).__name__ for v in values]}")
    if not all(isinstance(v, Tensor) for v in values):
        dtype, device = dtypes.get_default_dtype(), None
        for v in values:
            if isinstance(v, Tensor):
                dtype, device = v.dtype, v.device
                break
        values = tuple(v if isinstance(v, Tensor) else
                       tensor(float(v), dtype=dtype, device=device) for v in values)
    if len(values) == 1:
        return tuple(values)
    return tuple(broadcast_tensors(*values))


def _sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """Sum the ``dim`` rightmost dims of ``value`` away."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[:value.dim() - dim]) + (-1,)).sum(-1)


def finfo(dtype):
    return np.finfo(dtypes.to_dtype(dtype))


def clamp_probs(probs: Tensor) -> Tensor:
    """Clamp into [eps, 1 - eps] (eps of the dtype), so logits stay finite."""
    eps = float(finfo(probs.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    return logits.sigmoid() if is_binary else F.softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    p = clamp_probs(probs)
    return p.log() - (-p).log1p() if is_binary else p.log()


class lazy_property:
    """Computed on first access and cached in the instance's ``__dict__`` (a non-data
    descriptor), so a distribution given ``probs`` derives ``logits`` only when asked."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


# Giles (2010), "Approximating the erfinv function": a single-precision polynomial start,
# refined by Newton steps on erf in float64.
_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
            -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
         -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coefs, w):
    p = coefs[0]
    for c in coefs[1:]:
        p = c + p * w
    return p


def _erfinv_array(y):
    xp = backend.get_array_module(y)
    x = y.astype(np.float64)
    inside = xp.abs(x) < 1
    xs = xp.where(inside, x, 0.0)
    w = -xp.log((1 - xs) * (1 + xs))
    out = xp.where(w < 5, _horner(_CENTRAL, w - 2.5), _horner(_TAIL, xp.sqrt(w) - 3)) * xs
    two_over_sqrt_pi = 2 / math.sqrt(math.pi)
    for _ in range(2):
        err = backend.erf(xp, out) - xs
        out = out - err / (two_over_sqrt_pi * xp.exp(-out * out))
    out = xp.where(inside, out, xp.where(xp.abs(x) == 1, xp.copysign(xp.inf, x), xp.nan))
    return out.astype(y.dtype)


class _Erfinv(Function):
    @staticmethod
    def forward(ctx, y):
        out = Tensor._wrap(_erfinv_array(y._data), None, False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (math.sqrt(math.pi) / 2) * (out * out).exp()


def erfinv(y: Tensor) -> Tensor:
    """The inverse error function, differentiable: d/dy erfinv(y) = sqrt(pi)/2 exp(erfinv(y)^2)."""
    if not y.is_floating_point():
        y = y.to(dtypes.get_default_dtype())
    return _Erfinv.apply(y)

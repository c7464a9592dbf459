"""Gradient clipping (lecture: "Long-Term Dependencies" — clip the gradient when it explodes;
Pascanu et al. 2013), with PyTorch's signatures."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ...tensor import Tensor, tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(xp, a, norm_type: float) -> float:
    """The norm of one gradient array, as a Python float."""
    if norm_type == math.inf:
        return float(xp.abs(a).max()) if a.size else 0.0
    if norm_type == -math.inf:
        return float(xp.abs(a).min()) if a.size else math.inf
    if norm_type == 2.0:
        flat = a.reshape(-1)
        if flat.dtype.itemsize < 4:
            flat = flat.astype(xp.float32)
        return math.sqrt(float(xp.dot(flat, flat)))  # one BLAS call, as fast as a copy
    if norm_type == 1.0:
        return float(xp.abs(a).sum(dtype=xp.float64))
    if norm_type == 0.0:
        return float((a != 0).sum())
    return float((xp.abs(a.astype(xp.float64)) ** norm_type).sum()) ** (1.0 / norm_type)


def _combine(norms: list, norm_type: float) -> float:
    if norm_type == math.inf:
        return max(norms)
    if norm_type == -math.inf:
        return min(norms)
    if norm_type == 0.0:
        return float(sum(norms))
    return sum(n ** norm_type for n in norms) ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:  # noqa: ARG001 - PyTorch's keyword, no effect
    """The ``norm_type`` norm of all ``tensors`` together, as if concatenated into one vector
    (a 0-d Tensor of their dtype)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    first = tensors[0]
    total = _combine([_norm(t.xp, t._data, norm_type) for t in tensors], norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients "
                           "from `parameters` is non-finite, so it cannot be clipped. To "
                           "disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return Tensor._wrap(first.xp.asarray(total, dtype=first.dtype), None, False)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm,
                          foreach=None) -> None:  # noqa: ARG001 - PyTorch's keyword, no effect
    """Scale the gradients in place by min(1, max_norm / (total_norm + 1e-6))."""
    grads = _grads(parameters)
    if not grads:
        return
    total = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    coef = min(float(max_norm) / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    if coef == 1.0:  # multiplying by 1 would change nothing
        return
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as in PyTorch, without a warning
        for g in grads:
            g._data *= g.dtype.type(coef)


def clip_grad_norm_(parameters: Iterable | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:  # noqa: ARG001 - PyTorch's keyword, no effect
    """Rescale the gradients of ``parameters`` in place so that their total ``norm_type``
    norm (all gradients as one vector) is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d Tensor), as PyTorch does. ``foreach`` is
    accepted for compatibility.

    Example:
        >>> loss.backward()
        >>> nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        >>> opt.step()
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Iterable | Tensor, clip_value: float,
                     foreach=None) -> None:  # noqa: ARG001 - PyTorch's keyword, no effect
    """Clamp every gradient entry of ``parameters`` to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.xp.clip(g._data, -clip_value, clip_value, out=g._data)

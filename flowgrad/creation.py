"""Tensor factories with PyTorch's names and arguments (zeros, randn, arange, ...)."""

from __future__ import annotations

import numpy as np

from . import backend, dtypes
from .tensor import Tensor, _shape_arg, as_tensor, tensor


def _new(array, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array, None, False)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _xp(device):
    return backend.xp_for(backend.normalize_device(device))


def _place(array, device):
    device = backend.normalize_device(device)
    return array if device == "cpu" else backend.to_device(array, device)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(_xp(device).zeros(_shape_arg(size), dtype=dtypes.to_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(_xp(device).ones(_shape_arg(size), dtype=dtypes.to_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(_xp(device).empty(_shape_arg(size), dtype=dtypes.to_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = (dtypes.bool_ if isinstance(fill_value, bool) else
                 dtypes.int64 if isinstance(fill_value, int) else dtypes.get_default_dtype())
    return _new(_xp(device).full(tuple(size) if not isinstance(size, int) else (size,),
                                 fill_value, dtype=dtypes.to_dtype(dtype)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    return _new(_xp(device).eye(n, m, dtype=dtypes.to_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = dtypes.int64 if is_int else dtypes.get_default_dtype()
    return _new(_xp(device).arange(start, end, step, dtype=dtypes.to_dtype(dtype)), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    return _new(_xp(device).linspace(start, end, steps, dtype=dtypes.to_dtype(dtype)),
                requires_grad)


def _random(device, draw, size, dtype, requires_grad):
    xp = _xp(device)
    shape = _shape_arg(size)
    arr = draw(backend.rng(xp), shape)
    return _new(xp.asarray(arr, dtype=dtypes.to_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from flowgrad's seeded stream (see manual_seed)."""
    return _random(device, lambda g, s: g.random(s), size, dtype, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal, from flowgrad's seeded stream (see manual_seed)."""
    return _random(device, lambda g, s: g.standard_normal(s), size, dtype, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None) -> Tensor:
    if size is None:
        raise TypeError("randint: size is required, e.g. fg.randint(0, 10, (3,))")
    if high is None:
        low, high = 0, low
    xp = _xp(device)
    arr = backend.rng(xp).integers(low, high, size=tuple(size))
    return _new(xp.asarray(arr, dtype=dtypes.to_dtype(dtype or dtypes.int64)), False)


def randperm(n: int, dtype=None, device=None) -> Tensor:
    xp = _xp(device)
    return _new(xp.asarray(backend.rng(xp).permutation(n), dtype=dtypes.to_dtype(
        dtype or dtypes.int64)), False)


def _like(fn, x: Tensor, dtype, device, requires_grad, *args):
    return fn(*args, x.shape, dtype=dtype or x.dtype, device=device or x.device,
              requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(x.shape, dtype=dtype or x.dtype, device=device or x.device,
                 requires_grad=requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(x.shape, dtype=dtype or x.dtype, device=device or x.device,
                requires_grad=requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return empty(x.shape, dtype=dtype or x.dtype, device=device or x.device,
                 requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device,
                requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device,
                requires_grad=requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device,
                 requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array, None, False)


__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye",
           "arange", "linspace", "rand", "randn", "randint", "randperm", "zeros_like",
           "ones_like", "empty_like", "full_like", "rand_like", "randn_like"]

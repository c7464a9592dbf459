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


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Category indices drawn with probabilities proportional to ``input``'s non-negative
    weights (a 1-D tensor: ``num_samples`` indices; 2-D: that many for each row), int64, with
    torch.multinomial's arguments and checks. Without replacement the indices of a row are
    distinct (weighted sampling without replacement: the largest w/E, E ~ Exponential(1), as
    torch does), and categories of weight 0 come only after every positive one is drawn; with
    replacement, a category of weight 0 is never drawn.

    Draws come from ``generator`` (a flowgrad Generator, an int seed or an np.random.Generator)
    or flowgrad's global stream (seeded by ``fg.manual_seed``), on the host for every device:
    the same seed gives the same indices, though not torch's (another random engine).

    Example:
        >>> fg.multinomial(fg.tensor([0.1, 0.0, 0.9]), 4, replacement=True)  # never 1
    """
    from .utils.data.generator import as_generator, numpy_stream

    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(f"multinomial(): argument 'num_samples' must be int, not "
                        f"{type(num_samples).__name__}")
    num_samples = int(num_samples)
    if input.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype}; convert the weights with .float()")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim (multinomial: got a {input.ndim}-d "
                           f"tensor of shape {tuple(input.shape)}; one distribution per row)")
    if num_samples <= 0:
        raise RuntimeError(f"cannot sample n_sample <= 0 samples (multinomial: num_samples="
                           f"{num_samples})")
    n = input.shape[-1]
    if not replacement and num_samples > n:
        raise RuntimeError(f"cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement (multinomial: {num_samples} samples from {n} "
                           "categories; pass replacement=True)")
    w = np.asarray(backend.to_numpy(input.data), dtype=np.float64).reshape(-1, n)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0 "
                           "(multinomial: weights must be finite and non-negative)")
    total = w.sum(axis=1)
    if np.any(total <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0): "
                           "every row needs a positive weight")
    rng = numpy_stream(as_generator(generator, "multinomial"))
    rows = w.shape[0]
    if replacement:  # inverse CDF: u·total falls in category i's interval [cdf[i-1], cdf[i])
        cdf = np.cumsum(w, axis=1)
        u = rng.random((rows, num_samples)) * cdf[:, -1:]
        last = n - 1 - np.argmax(w[:, ::-1] > 0, axis=1)  # the last positive category
        out = np.empty((rows, num_samples), np.int64)
        for r in range(rows):
            out[r] = np.minimum(np.searchsorted(cdf[r], u[r], side="right"), last[r])
    else:  # the num_samples largest w / E (Efraimidis & Spirakis 2006): order = draw order
        keys = w / rng.standard_exponential((rows, n))
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples].astype(np.int64)
    out = out.reshape(input.shape[:-1] + (num_samples,))
    return _new(_place(out, input.device), False)


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
           "arange", "linspace", "rand", "randn", "randint", "randperm", "multinomial",
           "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"]

"""Tensor factories with PyTorch's names and arguments (zeros, randn, arange, ...)."""

from __future__ import annotations

import numpy as np

from . import backend, dtypes
from .devices import contiguous_format, preserve_format, strided
from .errors import DTypeError, ShapeError, ValueRangeError
from .tensor import Tensor, as_tensor, tensor


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


def _refuse(op: str, out=None, layout=None, pin_memory=False, memory_format=None) -> None:
    """Check PyTorch's options that flowgrad accepts only at their defaults."""
    if out is not None:
        raise TypeError(f"{op}(out=...): flowgrad factories return a new tensor; write "
                        f"`x = fg.{op}(...)` instead of passing out=")
    if layout is not None and layout is not strided:
        raise TypeError(f"{op}(layout={layout!r}): flowgrad tensors are dense (flowgrad.strided)")
    if pin_memory not in (False, None):
        pass  # accepted: NumPy has no page-locked host memory (docs/pytorch-differences.md)
    if memory_format not in (None, contiguous_format, preserve_format):
        raise TypeError(f"{op}(memory_format={memory_format!r}): flowgrad arrays are "
                        "C-contiguous (flowgrad.contiguous_format)")


def _size(sizes: tuple, size, op: str) -> tuple:
    """The shape of a factory's ``*size`` / ``size=`` argument: ints, a tuple or list of ints, a
    Size, or integer 0-d tensors, checked as PyTorch checks them."""
    if size is not None:
        if sizes:
            raise TypeError(f"{op}() received an invalid combination of arguments: sizes given "
                            f"both positionally {sizes} and as size={size!r}")
        sizes = (size,)
    if not sizes:
        raise TypeError(f'{op}() missing 1 required positional arguments: "size"')
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    shape = []
    for i, s in enumerate(sizes):
        if type(s) is not int:
            if isinstance(s, (bool, np.bool_, float, np.floating, tuple, list)) or not hasattr(
                    s, "__index__"):
                raise TypeError(f"{op}(): argument 'size' (position {i + 1}) must be tuple of "
                                f"ints, not {type(s).__name__}")
            s = s.__index__()
        if s < 0:
            raise ShapeError(f"{op}: Dimension size must be non-negative (got {s} in "
                             f"{tuple(sizes)})")
        shape.append(s)
    return tuple(shape)


def zeros(*sizes, size=None, out=None, dtype=None, layout=None, device=None,
          pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    _refuse("zeros", out, layout, pin_memory)
    return _new(_xp(device).zeros(_size(sizes, size, "zeros"), dtype=dtypes.to_dtype(dtype)),
                requires_grad)


def ones(*sizes, size=None, out=None, dtype=None, layout=None, device=None,
         pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    _refuse("ones", out, layout, pin_memory)
    return _new(_xp(device).ones(_size(sizes, size, "ones"), dtype=dtypes.to_dtype(dtype)),
                requires_grad)


def empty(*sizes, size=None, out=None, dtype=None, layout=None, device=None,
          pin_memory: bool = False, requires_grad: bool = False, memory_format=None) -> Tensor:
    """A new tensor of that shape (zero-filled: PyTorch leaves it uninitialised)."""
    _refuse("empty", out, layout, pin_memory, memory_format)
    return _new(_xp(device).zeros(_size(sizes, size, "empty"), dtype=dtypes.to_dtype(dtype)),
                requires_grad)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None,
         pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    _refuse("full", out, layout, pin_memory)
    if dtype is None:
        dtype = (dtypes.bool_ if isinstance(fill_value, bool) else
                 dtypes.int64 if isinstance(fill_value, int) else dtypes.get_default_dtype())
    shape = _size((size,) if isinstance(size, int) else (tuple(size),), None, "full")
    return _new(_xp(device).full(shape, fill_value, dtype=dtypes.to_dtype(dtype)), requires_grad)


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


def _draw(device, generator, draw, shape, dtype, op):
    """``draw(np_or_cupy_generator, shape)`` from ``generator`` (drawn on the host, then placed
    on the device) or flowgrad's global stream for the device."""
    xp = _xp(device)
    if generator is None:
        arr = draw(backend.rng(xp), shape)
    else:
        from .utils.data.generator import as_generator, numpy_stream

        arr = _place(draw(numpy_stream(as_generator(generator, op)), shape), device)
    return xp.asarray(arr, dtype=dtype)


def _random(op, device, draw, sizes, size, dtype, requires_grad, generator):
    dt = dtypes.to_dtype(dtype)
    if dt.kind != "f":
        raise DTypeError(f'"{op}" not implemented for \'{dt}\' ({op} draws floating-point '
                         "values; use randint for integers)")
    shape = _size(sizes, size, op)
    return _new(_draw(device, generator, draw, shape, dt, op), requires_grad)


def rand(*sizes, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
         pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from ``generator`` or flowgrad's seeded stream (see manual_seed)."""
    _refuse("rand", out, layout, pin_memory)
    return _random("rand", device, lambda g, s: g.random(s), sizes, size, dtype, requires_grad,
                   generator)


def randn(*sizes, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
          pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """Standard normal, from ``generator`` or flowgrad's seeded stream (see manual_seed)."""
    _refuse("randn", out, layout, pin_memory)
    return _random("randn", device, lambda g, s: g.standard_normal(s), sizes, size, dtype,
                   requires_grad, generator)


def randint(*args, size=None, low=None, high=None, generator=None, out=None, dtype=None,
            layout=None, device=None, pin_memory: bool = False,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high): ``randint(high, size)``, ``randint(low, high, size)``,
    or with ``size=`` / ``low=`` / ``high=`` keywords, as torch.randint; int64 by default."""
    _refuse("randint", out, layout, pin_memory)
    pos = list(args)
    if pos and isinstance(pos[-1], (tuple, list)):
        if size is not None:
            raise TypeError("randint(): size given both positionally and as size=")
        size = pos.pop()
    if len(pos) == 2 and low is None and high is None:
        low, high = pos
    elif len(pos) == 1 and high is None and low is None:
        high = pos[0]
    elif len(pos) == 1 and low is None:  # randint(low, high=..., size=...)
        low = pos[0]
    elif pos:
        raise TypeError(f"randint() received an invalid combination of arguments: expected "
                        f"(high, size), (low, high, size) or size=..., got "
                        f"{tuple(type(a).__name__ for a in args)}")
    if high is None or size is None:
        raise TypeError("randint(): high and size are required, e.g. fg.randint(10, (3,)) or "
                        "fg.randint(0, 10, (3,))")
    low = 0 if low is None else low
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, (bool, float, np.floating)) or not hasattr(v, "__index__"):
            raise TypeError(f"randint(): argument '{name}' must be int, not {type(v).__name__}")
    low, high = low.__index__(), high.__index__()
    if low >= high:
        raise ValueRangeError(f"random_ expects 'from' to be less than 'to', but got from={low} "
                              f">= to={high} (randint)")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint(): argument 'size' must be tuple of ints, not "
                        f"{type(size).__name__}")
    shape = _size((size,), None, "randint")
    dt = dtypes.to_dtype(dtype or dtypes.int64)
    out_arr = _draw(device, generator, lambda g, s: g.integers(low, high, size=s), shape, dt,
                    "randint")
    return _new(out_arr, requires_grad)


def randperm(n: int, *, generator=None, out=None, dtype=None, layout=None, device=None,
             pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    _refuse("randperm", out, layout, pin_memory)
    arr = _draw(device, generator, lambda g, _s: g.permutation(n), None,
                dtypes.to_dtype(dtype or dtypes.int64), "randperm")
    return _new(arr, requires_grad)


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
    w = np.asarray(backend.to_numpy(input._data), dtype=np.float64).reshape(-1, n)
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


def _like_options(op, x, dtype, device, layout, memory_format):
    _refuse(op, None, layout, False, memory_format)
    return x.shape, (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("zeros_like", input, dtype, device, layout,
                                         memory_format)
    return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("ones_like", input, dtype, device, layout,
                                         memory_format)
    return ones(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("empty_like", input, dtype, device, layout,
                                         memory_format)
    return empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None,
              requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("full_like", input, dtype, device, layout,
                                         memory_format)
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(input, *, generator=None, dtype=None, layout=None, device=None,
              requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("rand_like", input, dtype, device, layout,
                                         memory_format)
    return rand(shape, generator=generator, dtype=dtype, device=device,
                requires_grad=requires_grad)


def randn_like(input, *, generator=None, dtype=None, layout=None, device=None,
               requires_grad: bool = False, memory_format=None) -> Tensor:
    shape, dtype, device = _like_options("randn_like", input, dtype, device, layout,
                                         memory_format)
    return randn(shape, generator=generator, dtype=dtype, device=device,
                 requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, layout=None,
                 device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    """``randint_like(x, high)`` or ``randint_like(x, low, high)``: x's shape, dtype, device."""
    if high is None:
        low, high = 0, low
    shape, dtype, device = _like_options("randint_like", input, dtype, device, layout,
                                         memory_format)
    return randint(low, high, shape, generator=generator, dtype=dtype, device=device,
                   requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array, None, False)


__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye",
           "arange", "linspace", "rand", "randn", "randint", "randperm", "multinomial",
           "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
           "randint_like"]

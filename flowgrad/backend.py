"""The array engine: NumPy, or CuPy for the same code on a GPU.

This is the only module that imports CuPy; every difference between the two lives here
(chainer.backend.get_array_module is the model).
"""

from __future__ import annotations

import math

import numpy as np

try:  # CPU-only machines: flowgrad still works, GPU tests skip
    import cupy  # type: ignore[import-not-found]
except Exception:  # ImportError, or a CuPy without a usable CUDA driver
    cupy = None

from . import intraop
from .errors import DeviceError

try:
    from scipy import special as _special
except ImportError:  # SciPy is optional: erf then falls back to math.erf
    _special = None


def cuda_available() -> bool:
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def get_array_module(*arrays):
    """numpy, or cupy if any argument is a CuPy array."""
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return np


def device_of(a) -> str:
    if cupy is not None and isinstance(a, cupy.ndarray):
        return f"cuda:{a.device.id}" if a.device.id else "cuda"
    return "cpu"


class CudaUnavailableError(DeviceError, AssertionError):
    """A CUDA device asked for where there is none: a DeviceError (a RuntimeError), and the
    AssertionError that PyTorch's CPU build raises ("Torch not compiled with CUDA enabled")."""


_SIMPLE_DEVICES = {"cpu": "cpu", "cuda": "cuda", "cuda:0": "cuda"}


def normalize_device(device) -> str:
    """'cpu', 'cuda' or 'cuda:N' from a string, an ``fg.device``, an int (a CUDA index) or an
    object with a ``type`` attribute (a torch.device)."""
    if device is None:
        return "cpu"
    if isinstance(device, str) and device in _SIMPLE_DEVICES:
        return _SIMPLE_DEVICES[device]
    from .devices import device as _device

    try:
        d = _device(device)
    except RuntimeError as e:  # torch.device's errors, as a DeviceError (a RuntimeError)
        raise DeviceError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}: {e}") from None
    if d.type == "cpu":
        return "cpu"
    if d.type == "cuda":
        return "cuda" if not d.index else f"cuda:{d.index}"
    raise DeviceError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}: flowgrad runs on "
                      "NumPy (cpu) or CuPy (cuda) arrays only")


def xp_for(device: str):
    if device == "cpu":
        return np
    if cupy is None:
        raise CudaUnavailableError(
            f"device {device!r}: CuPy is not installed; install cupy-cuda12x to use a GPU "
            "(flowgrad's answer where PyTorch's CPU build says 'Torch not compiled with CUDA "
            "enabled')")
    return cupy


def to_device(a, device: str):
    """Copy an array to 'cpu' or 'cuda[:N]' (no copy when it is already there)."""
    device = normalize_device(device)
    if device == "cpu":
        return to_numpy(a)
    xp = xp_for(device)
    index = int(device.split(":")[1]) if ":" in device else 0
    with xp.cuda.Device(index):
        return xp.asarray(a)


def to_numpy(a) -> np.ndarray:
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return np.asarray(a)


# Random streams ----------------------------------------------------------------------------

_rngs: dict = {}
_seed = {"value": None}


def manual_seed(seed: int) -> None:
    """Seed every random stream flowgrad uses (NumPy's, and CuPy's when present)."""
    _seed["value"] = int(seed)
    _rngs.clear()


def initial_seed() -> int | None:
    """The seed last given to manual_seed (None: the streams were seeded from the OS)."""
    return _seed["value"]


def set_initial_seed(seed: int | None) -> None:
    """Record ``seed`` as the streams' seed without reseeding them (checkpoint restore)."""
    _seed["value"] = seed


def streams() -> dict:
    """The random streams created so far, array module -> Generator (live, for checkpoints)."""
    return _rngs


def rng(xp=np):
    """The Generator that flowgrad's random ops draw from for array module ``xp``."""
    gen = _rngs.get(xp)
    if gen is None:
        seed = _seed["value"]
        gen = xp.random.default_rng(seed)
        _rngs[xp] = gen
    return gen


# Kernels whose NumPy and CuPy spellings differ -------------------------------------------------

def scatter_add(xp, target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (in place)."""
    xp.add.at(target, index, values)  # NumPy and CuPy >= 13 spell it the same


def sliding_window_view(xp, x, window_shape, axis):
    if xp is np:
        return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
    return cupy.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def as_strided(xp, x, shape, strides):
    if xp is np:
        return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
    return cupy.lib.stride_tricks.as_strided(x, shape, strides)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(xp, x):
    if xp is not np:
        import cupyx.scipy.special as cps  # type: ignore[import-not-found]

        return cps.erf(x)
    if _special is not None:
        return _special.erf(x)
    # np.asarray: a ufunc from frompyfunc returns a bare Python float for a 0-d input
    return np.asarray(_erf_scalar(x), dtype=x.dtype)


_ZERO_ROW = 4096
_zero_rows: dict = {}


def relu(xp, x):
    """max(x, 0) as a new array. NumPy's float ``maximum`` against a broadcast scalar runs about
    half as fast as against an array (no vector loop for the scalar operand), so a large
    contiguous float array is taken as rows of 4096 against one cached row of zeros, in blocks
    of rows over the intra-op threads."""
    if xp is not np or x.size < 8 * _ZERO_ROW or x.dtype.kind != "f" or not x.flags.c_contiguous:
        return xp.maximum(x, 0)
    zero = _zero_rows.get(x.dtype)
    if zero is None:
        zero = _zero_rows[x.dtype] = np.zeros(_ZERO_ROW, dtype=x.dtype)
    out = np.empty_like(x)
    flat, dst = x.reshape(-1), out.reshape(-1)
    body = flat.size - flat.size % _ZERO_ROW
    rows, dst_rows = flat[:body].reshape(-1, _ZERO_ROW), dst[:body].reshape(-1, _ZERO_ROW)
    intraop.for_rows(lambda a, b: np.maximum(rows[a:b], zero, out=dst_rows[a:b]),
                     len(rows), body)
    if body < flat.size:
        np.maximum(flat[body:], zero[:flat.size - body], out=dst[body:])
    return out


def binary(xp, ufunc, x, y):
    """``ufunc(x, y)`` for two arrays: in blocks of rows over the intra-op threads when both
    are NumPy float arrays of one dtype and one of them has the result's (large) shape, the
    other broadcasting to it; plainly otherwise."""
    if (xp is not np or type(x) is not np.ndarray or type(y) is not np.ndarray
            or x.dtype != y.dtype or x.dtype.kind != "f"
            or max(x.size, y.size) < intraop.MIN_ELEMENTS):
        return ufunc(x, y)
    full = x if x.size >= y.size else y
    shape = full.shape
    if x.shape != shape and not _broadcasts_into(x.shape, shape) or \
            y.shape != shape and not _broadcasts_into(y.shape, shape):
        return ufunc(x, y)
    out = np.empty(shape, dtype=x.dtype)
    xs, ys = (len(a.shape) == len(shape) and a.shape[0] == shape[0] for a in (x, y))

    def block(a, b):
        ufunc(x[a:b] if xs else x, y[a:b] if ys else y, out=out[a:b])
    intraop.for_rows(block, shape[0], full.size)
    return out


def add_rows_(xp, out, row) -> None:
    """out += row in place, for a 2-D ``out`` and a row broadcasting along it (a bias), in
    blocks of rows over the intra-op threads."""
    intraop.for_rows(lambda a, b: xp.add(out[a:b], row, out=out[a:b]), len(out), out.size,
                     xp is np)


# A sum reads each number once and writes almost nothing: handing half of it to another thread
# pays only from about this many times the element-wise ops' threshold (measured on 2 cores).
REDUCTION_SHARE = 8


def column_sums(xp, a):
    """The sum of each column of a 2-D array (a bias's gradient): an einsum per block of rows
    over the intra-op threads for a large array, the blocks' sums added."""
    parts = intraop.for_rows(lambda lo, hi: xp.einsum("ij->j", a[lo:hi]), len(a),
                             a.size // REDUCTION_SHARE, xp is np)
    return parts[0] if len(parts) == 1 else sum(parts)


def reshape(xp, a, shape):
    """``a.reshape(shape)``; where that must copy (a permuted array: heads merged back), a
    large NumPy array is copied in blocks of rows over the intra-op threads."""
    if (xp is not np or a.size < intraop.MIN_ELEMENTS or a.ndim < 2 or a.flags.c_contiguous
            or intraop.get_num_threads() < 2):
        return a.reshape(shape)
    try:
        return a.reshape(shape, copy=False)  # a view where one exists, as NumPy gives
    except TypeError:  # NumPy < 2.1: no copy argument
        return a.reshape(shape)
    except ValueError:  # a copy is needed
        pass
    out = np.empty(a.shape, dtype=a.dtype)
    intraop.for_rows(lambda lo, hi: np.copyto(out[lo:hi], a[lo:hi]), len(a), a.size)
    return out.reshape(shape)


def copy_into(xp, dst, src, axis: int = 0) -> None:
    """``dst[...] = src`` for two arrays of one shape; for large NumPy arrays in blocks along
    ``axis`` (the images of a batch) over the intra-op threads."""
    if xp is not np or dst.size < intraop.MIN_ELEMENTS or intraop.get_num_threads() < 2:
        dst[...] = src
        return
    lead = (slice(None),) * axis

    def block(lo, hi):
        part = lead + (slice(lo, hi),)
        dst[part] = src[part]
    intraop.for_rows(block, dst.shape[axis], dst.size)


def copy_contiguous(xp, a, axis: int = 0):
    """A C-contiguous copy of ``a`` (a strided view: an im2col window, a transposed layout),
    made in blocks along ``axis`` over the intra-op threads when large (``copy_into``)."""
    if xp is not np or a.size < intraop.MIN_ELEMENTS or intraop.get_num_threads() < 2:
        return xp.ascontiguousarray(a)
    out = np.empty(a.shape, dtype=a.dtype)
    copy_into(xp, out, a, axis)
    return out


def flat_blocks(xp, arrays: tuple, n_out: int, kernel, *args) -> tuple:
    """``kernel(xp, *arrays, *args)`` -> ``n_out`` arrays of the first array's shape and
    dtype, for arrays of one shape: on NumPy, for large C-contiguous arrays, over flat blocks
    that the intra-op threads share (the kernel must be element-wise); at once otherwise."""
    first = arrays[0]
    if (xp is not np or first.size < intraop.MIN_ELEMENTS or intraop.get_num_threads() < 2
            or any(type(a) is not np.ndarray or a.shape != first.shape
                   or not a.flags.c_contiguous for a in arrays)):
        return kernel(xp, *arrays, *args)
    flats = [a.reshape(-1) for a in arrays]
    outs = [np.empty(first.size, dtype=first.dtype) for _ in range(n_out)]

    def block(lo, hi):
        for o, part in zip(outs, kernel(xp, *(f[lo:hi] for f in flats), *args)):
            o[lo:hi] = part
    intraop.for_rows(block, first.size, first.size)
    return tuple(o.reshape(first.shape) for o in outs)


def _broadcasts_into(small: tuple, shape: tuple) -> bool:
    """Whether an array of shape ``small`` broadcasts to ``shape`` without enlarging it."""
    if len(small) > len(shape):
        return False
    return all(s in (1, t) for s, t in zip(small[::-1], shape[::-1]))


def all_finite(xp, a) -> bool:
    """Whether every element of a float array is finite: one dot product for a contiguous
    NumPy array (NaN or an infinity anywhere makes it non-finite; a huge but finite array may
    overflow it, which only sends the caller down its exact path), else isfinite. The dot is
    an einsum rather than BLAS's, which the intra-op threads may call at once."""
    if xp is np and a.flags.c_contiguous and a.dtype.kind == "f" and a.dtype.itemsize >= 4:
        flat = a.reshape(-1)
        return bool(np.isfinite(np.einsum("i,i->", flat, flat)))
    return bool(xp.isfinite(a).all())


def select(xp, mask, grad, out=None):
    """``grad`` where ``mask`` else 0, as PyTorch's gradient selects (an infinite or NaN gradient
    where the mask is False gives 0, not NaN); into ``out`` if given. NumPy's ``where`` is about
    8x slower than a multiplication by the mask, so on NumPy the mask multiplies whenever every
    gradient is finite."""
    if (xp is np and type(grad) is np.ndarray and grad.size >= intraop.MIN_ELEMENTS
            and grad.ndim and type(mask) is np.ndarray and mask.shape == grad.shape):
        dst = np.empty_like(grad) if out is None else out
        intraop.for_rows(lambda a, b: _select(np, mask[a:b], grad[a:b], dst[a:b]),
                         len(grad), grad.size)
        return dst
    return _select(xp, mask, grad, out)


def _select(xp, mask, grad, out):
    if xp is np and (grad.dtype.kind != "f" or all_finite(xp, grad)):
        return np.multiply(grad, mask, out=out)
    picked = xp.where(mask, grad, grad.dtype.type(0))
    if out is None:
        return picked
    out[...] = picked
    return out

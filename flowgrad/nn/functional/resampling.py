"""Resampling with PyTorch's names and rules: ``interpolate`` (nearest, nearest-exact, linear,
bilinear) and ``pixel_shuffle``/``pixel_unshuffle`` (pure reshapes and permutes)."""

from __future__ import annotations

import math
import numbers

from ...errors import ShapeError
from ...ops import resample as RS
from ...tensor import Tensor
from ._util import _shape

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_SUPPORTED = ("nearest", "nearest-exact", "linear", "bilinear")
_NEEDS = {"linear": 3, "bilinear": 4, "trilinear": 5}


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of an (N, C, L) or (N, C, H, W) input to ``size``, or by
    ``scale_factor`` (output size floor(in * scale)), with torch.nn.functional.interpolate's
    modes 'nearest', 'nearest-exact', 'linear' (3-D input) and 'bilinear' (4-D input) and its
    index computations. Without recompute_scale_factor=True a given scale_factor is the one the
    indices use (1 / scale_factor), as in PyTorch."""
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = input.ndim - 2
    spatial = list(_shape(input)[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scales = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {spatial} and output size of {size}. "
                    "Please provide input tensor in (N, C, d1, d2, ...,dK) format and output "
                    "size in (o1, o2, ...,oK) format.")
            if not all(_is_int(s) for s in size):
                raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, int] "
                                "or Tuple[int, int, int], but got size with types "
                                f"{[type(s) for s in size]}")
            out = [int(s) for s in size]
        else:
            if not _is_int(size):
                raise TypeError(f"expected size to be an int or a tuple of ints, got "
                                f"{type(size).__name__}")
            out = [int(size)] * dim
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, but "
                    f"got input with spatial dimensions of {spatial} and scale_factor of shape "
                    f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) "
                    "format and scale_factor in (s1, s2, ...,sK) format.")
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
        out = [math.floor(float(n) * s) for n, s in zip(spatial, scales)]
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if recompute_scale_factor:
        scales = None
    if antialias and not (mode in ("bilinear", "bicubic") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and "
                         "requires a 4-D tensor as input")
    if mode not in _MODES or input.ndim not in (3, 4, 5):
        raise NotImplementedError(
            "Input Error: Only 3D, 4D and 5D input Tensors supported"
            f" (got {input.ndim}D) for the modes: nearest | linear | bilinear | bicubic | "
            f"trilinear | area | nearest-exact (got {mode})")
    need = _NEEDS.get(mode)
    if need is not None and input.ndim != need:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {need}D input")
    if mode not in _SUPPORTED or input.ndim == 5 or antialias:
        what = "antialias=True" if antialias else f"mode={mode!r} on a {input.ndim}-D input"
        raise NotImplementedError(f"interpolate: {what} is not implemented in flowgrad (it has "
                                  "'nearest', 'nearest-exact', 'linear' and 'bilinear' for 3-D "
                                  "and 4-D inputs)")
    if any(o <= 0 for o in out) or any(n <= 0 for n in spatial):
        raise ShapeError(f"interpolate: input and output sizes should be greater than 0, but got "
                         f"input {tuple(spatial)} and output {tuple(out)}")
    scales = scales or [None] * dim
    dt = input.dtype if input.dtype.kind == "f" else "float32"
    if mode.startswith("nearest"):
        idx = tuple(RS.nearest_indices(n, o, s, mode == "nearest-exact", dt,
                                       legacy=dim == 2)
                    for n, o, s in zip(spatial, out, scales))
        return RS.UpsampleNearest.apply(input, idx)
    ws = tuple(RS.linear_weights(n, o, align_corners, s, dt)
               for n, o, s in zip(spatial, out, scales))
    return RS.UpsampleLinear.apply(input, ws)


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of ``interpolate`` (as in PyTorch)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _check_factor(name: str, factor) -> int:
    if not _is_int(factor):
        raise TypeError(f"{name}(): argument 'upscale_factor' must be int, not "
                        f"{type(factor).__name__}")
    return int(factor)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C * r**2, H, W) -> (*, C, H * r, W * r)."""
    r = _check_factor("pixel_shuffle", upscale_factor)
    if input.ndim < 3:
        raise ShapeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                         f"input with {input.ndim} dimension(s)")
    if r <= 0:
        raise ShapeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *batch, c, h, w = _shape(input)
    if c % (r * r):
        raise ShapeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible "
                         f"by the square of upscale_factor, but input.size(-3)={c} is not "
                         f"divisible by {r * r}")
    n = len(batch)
    x = input.reshape(*batch, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) -> (*, C * r**2, H, W), the inverse of pixel_shuffle."""
    r = _check_factor("pixel_unshuffle", downscale_factor)
    if input.ndim < 3:
        raise ShapeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got "
                         f"input with {input.ndim} dimension(s)")
    if r <= 0:
        raise ShapeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *batch, c, h, w = _shape(input)
    if h % r or w % r:
        which, size = ("height", h) if h % r else ("width", w)
        dim = -2 if which == "height" else -1
        raise ShapeError(f"pixel_unshuffle expects {which} to be divisible by downscale_factor, "
                         f"but input.size({dim})={size} is not divisible by {r}")
    n = len(batch)
    x = input.reshape(*batch, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*batch, c * r * r, h // r, w // r)

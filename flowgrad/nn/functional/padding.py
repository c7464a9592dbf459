"""Padding (constant, reflect, replicate, circular) with PyTorch's argument order."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...ops import indexing as I
from ...ops import shape as S
from ...tensor import Tensor
from ._util import _shape


def _pad_index(mode: str, n: int, before: int, after: int):
    j = np.arange(-before, n + after)
    if mode == "reflect":
        j = np.abs(j)
        return np.where(j >= n, 2 * (n - 1) - j, j)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    return np.mod(j, n)  # circular


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad)/2 dims; ``pad`` = (left, right, top, bottom, ...) starts from the
    last dim; negative widths crop. Modes: constant, reflect, replicate, circular."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ShapeError(f"pad: padding {pad} must have an even length of at most "
                         f"2 * {input.ndim} (input of shape {_shape(input)})")
    k = len(pad) // 2
    widths = [(0, 0)] * input.ndim
    for i in range(k):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return S.Pad.apply(input, tuple(widths), 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no value argument (got value={value})")
    out = input
    xp = input.xp
    for d in range(input.ndim - k, input.ndim):
        before, after = widths[d]
        if before == 0 and after == 0:
            continue
        n = input.shape[d]
        limit = {"reflect": n - 1, "circular": n, "replicate": None}[mode]
        if n == 0 or (limit is not None and max(before, after) > limit) \
                or n + before + after < 0:
            raise ShapeError(f"pad: {mode} padding {(before, after)} of dimension {d} does not "
                             f"fit its size {n} (input {_shape(input)}); {mode} padding must be "
                             + ("smaller than the size" if mode == "reflect" else
                                "at most the size" if mode == "circular" else "non-empty"))
        idx = xp.asarray(_pad_index(mode, n, before, after))
        out = I.IndexSelect.apply(out, d, idx)
    return out

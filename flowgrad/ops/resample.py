"""Resampling: nearest and (bi)linear interpolation over the last one or two dims (F.interpolate).

Both are separable: along each spatial dim the output is a fixed linear map of the input. Nearest
picks one source index per output index (forward: a take; backward: a scatter-add of the
gradient, as index_add of rows). Linear mixes two neighbours with weights lambda0/lambda1, so
along each dim it is an (out, in) matrix with two entries a row: forward and backward are GEMMs
(``W @ x`` and ``W.T @ grad``). The index and weight formulas are ATen's (UpSample.h), computed
in the input's dtype as ATen computes them in ``opmath_t``.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd.op import Op
from .indexing import index_add_rows


def _scale(in_size: int, out_size: int, align_corners: bool, scale, dt):
    """ATen's area_pixel_compute_scale: the source step per output step."""
    if align_corners:
        return dt.type(in_size - 1) / dt.type(out_size - 1) if out_size > 1 else dt.type(0)
    if scale is not None and scale > 0:
        return dt.type(1.0 / scale)
    return dt.type(in_size) / dt.type(out_size)


def nearest_indices(in_size: int, out_size: int, scale, exact: bool, dtype,
                    legacy: bool = False) -> np.ndarray:
    """Source index of every output index, as ATen's HelperInterpNearest(Exact); ``legacy``
    is ATen's nearest_idx (the 2-D 'nearest' kernel): an output twice the input takes i // 2,
    and the scale is a float."""
    if legacy and not exact:
        if out_size == 2 * in_size:
            return np.arange(out_size, dtype=np.int64) >> 1
        dtype = np.float32
    dt = np.dtype(dtype)
    s = _scale(in_size, out_size, False, scale, dt)
    i = np.arange(out_size, dtype=dt)
    if exact:
        real = np.maximum(s * (i + dt.type(0.5)) - dt.type(0.5), dt.type(0)) + dt.type(0.5)
    else:
        real = s * i
    idx = np.floor(real.astype(np.float32)).astype(np.int64)  # ATen's floorf
    return np.minimum(idx, in_size - 1)


def linear_weights(in_size: int, out_size: int, align_corners: bool, scale, dtype) -> np.ndarray:
    """The (out, in) interpolation matrix of ATen's compute_source_index_and_lambda."""
    dt = np.dtype(dtype)
    w = np.zeros((out_size, in_size), dtype=dt)
    rows = np.arange(out_size)
    if in_size == out_size and not align_corners:
        w[rows, rows] = 1
        return w
    s = _scale(in_size, out_size, align_corners, scale, dt)
    i = np.arange(out_size, dtype=dt)
    real = s * i if align_corners else np.maximum(s * (i + dt.type(0.5)) - dt.type(0.5),
                                                  dt.type(0))
    i0 = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    lam1 = np.clip(real - i0.astype(dt), 0, 1).astype(dt)
    lam0 = (dt.type(1) - lam1).astype(dt)
    i1 = i0 + (i0 < in_size - 1)
    np.add.at(w, (rows, i0), lam0)
    np.add.at(w, (rows, i1), lam1)
    return w


class UpsampleNearest(Op):
    """out[..., i, j] = x[..., index_h[i], index_w[j]]: one source index array per spatial dim
    (the last ``len(indices)`` dims)."""

    dtype_rule = dtypes.FLOATING

    @staticmethod
    def forward(ctx, x, indices):
        xp = ctx.xp
        idx = [xp.asarray(i) for i in indices]
        ctx.shape = x.shape
        ctx.save_for_backward(*idx)
        out = x
        for k, i in enumerate(idx):
            out = xp.take(out, i, axis=x.ndim - len(idx) + k)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        g = grad
        indices = ctx.saved_tensors
        n = len(indices)
        for k, i in enumerate(indices):
            axis = grad.ndim - n + k
            moved = xp.moveaxis(g, axis, 0)
            rows = index_add_rows(xp, ctx.shape[axis], i, moved.reshape(moved.shape[0], -1))
            g = xp.moveaxis(rows.reshape((ctx.shape[axis],) + moved.shape[1:]), 0, axis)
        return g, None


class UpsampleLinear(Op):
    """Linear (1 spatial dim) or bilinear (2) interpolation as one (out, in) matrix per spatial
    dim: out = x @ W_w.T, or W_h @ x @ W_w.T; backward is the transposed products."""

    dtype_rule = dtypes.FLOATING

    @staticmethod
    def forward(ctx, x, weights):
        xp = ctx.xp
        ws = [xp.asarray(w, dtype=x.dtype) for w in weights]
        ctx.save_for_backward(*ws)
        out = xp.matmul(x, ws[-1].T)
        if len(ws) == 2:
            out = xp.matmul(ws[0], out)
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        ws = ctx.saved_tensors
        g = grad
        if len(ws) == 2:
            g = xp.matmul(ws[0].T, g)
        return xp.matmul(g, ws[-1]), None

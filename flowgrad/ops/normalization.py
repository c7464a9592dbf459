"""Layer and batch normalisation as one node each of the flow graph (Ba, Kiros & Hinton 2016;
Ioffe & Szegedy 2015).

Written as a composition of means, subtractions and products, layer norm records about ten
nodes, each a pass over the activations, and backward walks all of them. As one node it makes
four passes forward and six backward, over blocks of rows that the intra-op threads share,
with the gradient in closed form: for x̂ = (x − μ) / σ over n features and g = ∂L/∂y · w,

    ∂L/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / σ,   ∂L/∂w = Σ ∂L/∂y · x̂,   ∂L/∂b = Σ ∂L/∂y.

Batch norm has the same gradient with the statistics taken per channel over the batch and the
positions instead of per row. Sums along rows and columns, and sums of products, are
``einsum``s: NumPy's reductions along an axis run several times slower.
"""

from __future__ import annotations

import numpy as np

from .. import intraop
from ..autograd.op import Op


def _affine_into(xp, out, xhat, weight, bias) -> None:
    """out = xhat · weight + bias, each term optional (None), in one or two passes."""
    if weight is not None:
        xp.multiply(xhat, weight, out=out)
        if bias is not None:
            out += bias
    elif bias is not None:
        xp.add(xhat, bias, out=out)
    else:
        out[...] = xhat


class LayerNorm(Op):
    """y = (x − mean) / sqrt(var + eps) · weight + bias over the last ``k`` dimensions (the
    biased variance, as in PyTorch); weight and bias, each optional, have those dimensions'
    shape. Rows go in blocks to the intra-op threads."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        xp = ctx.xp
        norm_shape = x.shape[x.ndim - k:]
        n = 1
        for s in norm_shape:
            n *= s
        rows = x.reshape(-1, n)
        w = weight.reshape(n) if weight is not None else None
        b = bias.reshape(n) if bias is not None else None
        xhat = xp.empty(rows.shape, dtype=x.dtype)
        out = xp.empty(rows.shape, dtype=x.dtype)
        rstd = xp.empty((len(rows), 1), dtype=x.dtype)

        def block(lo, hi):
            r, xh, o = rows[lo:hi], xhat[lo:hi], out[lo:hi]
            xp.subtract(r, xp.einsum("ij->i", r)[:, None] / n, out=xh)
            var = xp.einsum("ij,ij->i", xh, xh) / n
            rstd[lo:hi, 0] = 1.0 / xp.sqrt(var + eps)
            xh *= rstd[lo:hi]
            _affine_into(xp, o, xh, w, b)
        intraop.for_rows(block, len(rows), rows.size, xp is np)
        ctx.norm_shape, ctx.shape = norm_shape, x.shape
        ctx.save_for_backward(xhat, rstd, weight)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        n = xhat.shape[1]
        g = grad.reshape(-1, n)
        w = weight.reshape(n) if weight is not None else None
        gx = xp.empty(g.shape, dtype=g.dtype) if needs[0] else None

        def block(lo, hi):
            gb_part = gw_part = None
            gr, xh = g[lo:hi], xhat[lo:hi]
            if needs[2]:
                gb_part = xp.einsum("ij->j", gr)
            if needs[1]:
                gw_part = xp.einsum("ij,ij->j", gr, xh)
            if needs[0]:
                gy = gr * w if w is not None else gr
                out = gx[lo:hi]
                xp.multiply(xh, (xp.einsum("ij,ij->i", gy, xh) / n)[:, None], out=out)
                xp.subtract(gy, out, out=out)
                out -= xp.einsum("ij->i", gy)[:, None] / n
                out *= rstd[lo:hi]
            return gw_part, gb_part
        parts = intraop.for_rows(block, len(g), g.size, xp is np)
        gw = sum(p[0] for p in parts).reshape(ctx.norm_shape) if needs[1] else None
        gb = sum(p[1] for p in parts).reshape(ctx.norm_shape) if needs[2] else None
        return (gx.reshape(ctx.shape) if needs[0] else None), gw, gb


# per-channel values (C,) are spread over each channel's positions, (C, L), where the positions
# are fewer than this: NumPy then runs its element-wise loops along whole C*L rows rather than
# along rows of L against a broadcast scalar (1.5-2.4x faster for 7x7 maps)
SPREAD_BELOW = 256
SPREAD_MAX = 1 << 18


def _per_channel(xp, v, positions: int):
    """``v`` (C,) shaped to broadcast against (N, C, L) arrays: (C, L) copies for few
    positions (see SPREAD_BELOW), else (C, 1)."""
    if 1 < positions < SPREAD_BELOW and v.size * positions <= SPREAD_MAX:
        return xp.repeat(v, positions).reshape(v.size, positions)
    return v.reshape(v.size, 1)


def _channel_sums(xp, blocks, expr: str, *arrays):
    """Per-channel sums over (N, C, L) arrays: an einsum per block of images over the intra-op
    threads, the blocks' sums added."""
    def block(lo, hi):
        return xp.einsum(expr, *(a[lo:hi] for a in arrays))
    parts = intraop.run(block, blocks)
    return parts[0] if len(parts) == 1 else sum(parts)


class BatchNorm(Op):
    """Training-mode batch norm: y = (x − mean) / sqrt(var + eps) · weight + bias per channel of
    x (N, C, *), mean and (biased) variance over the batch and the positions; weight and bias
    (C,), each optional. ``stats_out``: None, or a list that receives the batch's mean and
    biased variance, (C,) each, for the running statistics. Blocks of images go to the
    intra-op threads."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, stats_out=None):
        xp = ctx.xp
        n_img, c = x.shape[0], x.shape[1]
        rows = x.reshape(n_img, c, -1)
        count = rows.shape[0] * rows.shape[2]
        blocks = intraop.spans(n_img, x.size) if xp is np else [(0, n_img)]
        mean = _channel_sums(xp, blocks, "ncl->c", rows) / count
        xhat = xp.empty(rows.shape, dtype=x.dtype)
        positions = rows.shape[2]
        m3 = _per_channel(xp, mean, positions)

        def center(lo, hi):
            xp.subtract(rows[lo:hi], m3, out=xhat[lo:hi])
            return xp.einsum("ncl,ncl->c", xhat[lo:hi], xhat[lo:hi])
        parts = intraop.run(center, blocks)
        var = (parts[0] if len(parts) == 1 else sum(parts)) / count
        rstd = 1.0 / xp.sqrt(var + eps)
        out = xp.empty(rows.shape, dtype=x.dtype)
        r3 = _per_channel(xp, rstd, positions)
        w3 = _per_channel(xp, weight.reshape(c), positions) if weight is not None else None
        b3 = _per_channel(xp, bias.reshape(c), positions) if bias is not None else None

        def scale(lo, hi):
            xh = xhat[lo:hi]
            xh *= r3
            _affine_into(xp, out[lo:hi], xh, w3, b3)
        intraop.run(scale, blocks)
        if stats_out is not None:
            stats_out.extend((mean, var))
        ctx.shape, ctx.blocks = x.shape, blocks
        ctx.bias_shape = bias.shape if bias is not None else None
        ctx.save_for_backward(xhat, rstd, weight)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        g = grad.reshape(xhat.shape)
        count = xhat.shape[0] * xhat.shape[2]
        # both sums enter the input's gradient; each alone only its parameter's
        gb = _channel_sums(xp, ctx.blocks, "ncl->c", g) if needs[0] or needs[2] else None
        gw = (_channel_sums(xp, ctx.blocks, "ncl,ncl->c", g, xhat) if needs[0] or needs[1]
              else None)
        gx = None
        if needs[0]:
            positions = xhat.shape[2]
            s3 = _per_channel(xp, rstd * weight.reshape(-1) if weight is not None else rstd,
                              positions)
            k_xhat = _per_channel(xp, gw / count, positions)
            k_mean = _per_channel(xp, gb / count, positions)
            gx = xp.empty(xhat.shape, dtype=g.dtype)

            def block(lo, hi):  # (g − mean(g) − x̂ · mean(g · x̂)) · weight / σ
                out = gx[lo:hi]
                xp.multiply(xhat[lo:hi], k_xhat, out=out)
                xp.subtract(g[lo:hi], out, out=out)
                out -= k_mean
                out *= s3
            intraop.run(block, ctx.blocks)
            gx = gx.reshape(ctx.shape)
        if weight is not None and needs[1]:
            gw = gw.reshape(weight.shape)
        return (gx, gw if needs[1] else None,
                gb.reshape(ctx.bias_shape) if needs[2] else None, None, None)

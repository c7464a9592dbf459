"""Layer normalisation as one node of the flow graph (Ba, Kiros & Hinton 2016).

Written as a composition of means, subtractions and products, layer norm records about ten
nodes, each a pass over the activations, and backward walks all of them. As one node it makes
four passes forward and six backward, over blocks of rows that the intra-op threads share,
with the gradient in closed form: for x̂ = (x − μ) / σ over n features and g = ∂L/∂y · w,

    ∂L/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / σ,   ∂L/∂w = Σ ∂L/∂y · x̂,   ∂L/∂b = Σ ∂L/∂y.

Sums along rows and columns, and sums of products, are ``einsum``s: NumPy's reductions along
an axis run several times slower.
"""

from __future__ import annotations

import numpy as np

from .. import intraop
from ..autograd.op import Op


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
            if w is not None:
                xp.multiply(xh, w, out=o)
                if b is not None:
                    o += b
            elif b is not None:
                xp.add(xh, b, out=o)
            else:
                o[...] = xh
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

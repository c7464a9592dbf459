"""Layer normalisation as one node of the flow graph (Ba, Kiros & Hinton 2016).

Written as a composition of means, subtractions and products, layer norm records about ten
nodes, each a pass over the activations, and backward walks all of them. As one node it makes
four passes forward and six backward, with the gradient in closed form: for x̂ = (x − μ) / σ
over n features and g = ∂L/∂y · w,

    ∂L/∂x = (g − mean(g) − x̂ · mean(g · x̂)) / σ,   ∂L/∂w = Σ ∂L/∂y · x̂,   ∂L/∂b = Σ ∂L/∂y.

Sums along a row or a column are matrix-vector products with a vector of ones, and sums of
products along a row ``einsum``s: NumPy's reductions along an axis run several times slower.
"""

from __future__ import annotations

from ..autograd.op import Op


class LayerNorm(Op):
    """y = (x − mean) / sqrt(var + eps) · weight + bias over the last ``k`` dimensions (the
    biased variance, as in PyTorch); weight and bias, each optional, have those dimensions'
    shape."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        xp = ctx.xp
        norm_shape = x.shape[x.ndim - k:]
        n = 1
        for s in norm_shape:
            n *= s
        rows = x.reshape(-1, n)
        ones = xp.ones(n, dtype=x.dtype)
        xhat = rows - (rows @ ones)[:, None] / n
        var = xp.einsum("ij,ij->i", xhat, xhat) / n
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)[:, None]
        xhat *= rstd
        if weight is not None:
            out = xhat * weight.reshape(n)
            if bias is not None:
                out += bias.reshape(n)
        elif bias is not None:
            out = xhat + bias.reshape(n)
        else:
            out = xhat.copy()
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
        gx = gw = gb = None
        if needs[2]:
            gb = (xp.ones(g.shape[0], dtype=g.dtype) @ g).reshape(ctx.norm_shape)
        if needs[1]:
            gw = xp.einsum("ij,ij->j", g, xhat).reshape(ctx.norm_shape)
        if needs[0]:
            gy = g * weight.reshape(n) if weight is not None else g
            mean_gy_xhat = xp.einsum("ij,ij->i", gy, xhat)[:, None] / n
            mean_gy = (gy @ xp.ones(n, dtype=gy.dtype))[:, None] / n
            gx = xhat * mean_gy_xhat
            xp.subtract(gy, gx, out=gx)
            gx -= mean_gy
            gx *= rstd
            gx = gx.reshape(ctx.shape)
        return gx, gw, gb

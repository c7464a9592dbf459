"""Scaled dot-product attention as one node of the flow graph (Vaswani et al. 2017; lecture:
"Multi-Head Attention").

    A = softmax(Q Kᵀ · scale + bias, over the allowed keys),   out = (A ⊙ D) V

with D an optional dropout mask already scaled by 1/(1-p). Recorded as matmuls, a product, a
softmax and a masking, attention keeps several (…, L, S) arrays and makes a pass over each
node; as one node the scores are computed and normalised in place, and backward is

    ∂V = (A ⊙ D)ᵀ ∂out,   ∂A = (∂out Vᵀ) ⊙ D,   ∂S = A ⊙ (∂A − rowsum(∂A ⊙ A)) · scale,
    ∂Q = ∂S K,   ∂K = ∂Sᵀ Q.
"""

from __future__ import annotations

from ..autograd.op import Op


def _rowdot(xp, a, b):
    """Σ_j a_..ij b_..ij as an array (…, i, 1): one einsum over rows of contiguous copies."""
    n = a.shape[-1]
    a2 = xp.ascontiguousarray(a).reshape(-1, n)
    b2 = xp.ascontiguousarray(b).reshape(-1, n)
    return xp.einsum("ij,ij->i", a2, b2).reshape(a.shape[:-1] + (1,))


class Attention(Op):
    """softmax(q kᵀ · scale + bias) v over the keys ``keep`` allows, rows in ``dead`` set to 0,
    times ``drop`` before v when given. ``keep``, ``bias``, ``dead`` and ``drop`` are arrays
    (or None) that broadcast to the scores' shape (…, L, S) without enlarging it; only q, k and
    v get gradients."""

    @staticmethod
    def forward(ctx, q, k, v, scale, keep, bias, dead, drop):
        xp = ctx.xp
        s = xp.matmul(q, xp.swapaxes(k, -1, -2))
        s *= s.dtype.type(scale)
        if bias is not None:
            s += bias
        if keep is not None:
            s = xp.where(keep, s, s.dtype.type(-xp.inf))
        s -= s.max(axis=-1, keepdims=True)
        xp.exp(s, out=s)
        s /= xp.matmul(s, xp.ones(s.shape[-1], dtype=s.dtype))[..., None]
        if dead is not None:
            s *= ~dead
        weights = s * drop if drop is not None else s
        ctx.scale = scale
        ctx.save_for_backward(q, k, v, s, drop)
        return xp.matmul(weights, v)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, attn, drop = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        gq = gk = gv = None
        if needs[2]:
            weights = attn * drop if drop is not None else attn
            gv = xp.matmul(xp.swapaxes(weights, -1, -2), grad)
        if needs[0] or needs[1]:
            ga = xp.matmul(grad, xp.swapaxes(v, -1, -2))
            if drop is not None:
                ga *= drop
            ga -= _rowdot(xp, ga, attn)
            ga *= attn
            ga *= ga.dtype.type(ctx.scale)
            if needs[0]:
                gq = xp.matmul(ga, k)
            if needs[1]:
                gk = xp.matmul(xp.swapaxes(ga, -1, -2), q)
        return gq, gk, gv

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

import numpy as np

from .. import backend, intraop
from ..autograd.op import Op


def _rowdot(xp, a, b):
    """Σ_j a_..ij b_..ij as an array (…, i, 1): one einsum over rows of contiguous copies."""
    n = a.shape[-1]
    a2 = xp.ascontiguousarray(a).reshape(-1, n)
    b2 = xp.ascontiguousarray(b).reshape(-1, n)
    return xp.einsum("ij,ij->i", a2, b2).reshape(a.shape[:-1] + (1,))


def _part(m, shape: tuple, lo: int, hi: int):
    """Rows lo:hi along the first axis of ``shape`` of an array broadcasting to ``shape``."""
    if m is None or m.ndim < len(shape) or m.shape[0] == 1:
        return m
    return m[lo:hi]


class Attention(Op):
    """softmax(q kᵀ · scale + bias) v over the keys ``keep`` allows, rows in ``dead`` set to 0,
    times ``drop`` before v when given. ``keep``, ``bias``, ``dead`` and ``drop`` are arrays
    (or None) that broadcast to the scores' shape (…, L, S) without enlarging it; only q, k and
    v get gradients. The element-wise work goes to the intra-op threads in blocks along the
    first axis."""

    @staticmethod
    def forward(ctx, q, k, v, scale, keep, bias, dead, drop):
        xp = ctx.xp
        # heads split from one projection are strided views: BLAS multiplies them about half
        # as fast as contiguous copies, which the six products of forward and backward share
        q, k, v = (xp.ascontiguousarray(a) for a in (q, k, v))
        s = xp.matmul(q, xp.swapaxes(k, -1, -2))
        shape = s.shape
        factor = s.dtype.type(scale)
        minus_inf = s.dtype.type(-xp.inf)

        def block(lo, hi):
            b = s[lo:hi]
            b *= factor
            if bias is not None:
                b += _part(bias, shape, lo, hi)
            if keep is not None:
                xp.copyto(b, minus_inf, where=~_part(keep, shape, lo, hi))
            b -= b.max(axis=-1, keepdims=True)
            xp.exp(b, out=b)
            b /= xp.einsum("...j->...", b)[..., None]
            if dead is not None:
                b *= ~_part(dead, shape, lo, hi)
        _blocks(xp, block, s)
        weights = s if drop is None else backend.binary(xp, xp.multiply, s, drop)
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
            weights = attn if drop is None else backend.binary(xp, xp.multiply, attn, drop)
            gv = xp.matmul(xp.swapaxes(weights, -1, -2), grad)
        if needs[0] or needs[1]:
            ga = xp.matmul(grad, xp.swapaxes(v, -1, -2))
            factor = ga.dtype.type(ctx.scale)
            shape = ga.shape

            def block(lo, hi):
                g, a = ga[lo:hi], _part(attn, shape, lo, hi)
                if drop is not None:
                    g *= _part(drop, shape, lo, hi)
                g -= _rowdot(xp, g, xp.broadcast_to(a, g.shape))
                g *= a
                g *= factor
            _blocks(xp, block, ga)
            if needs[0]:
                gq = xp.matmul(ga, k)
            if needs[1]:
                gk = xp.matmul(xp.swapaxes(ga, -1, -2), q)
        return gq, gk, gv


def _blocks(xp, block, a) -> None:
    """``block(lo, hi)`` over the first axis of ``a`` (over the intra-op threads on NumPy);
    an array of 2 dimensions or fewer, or one of one block only, runs at once."""
    if a.ndim <= 2:
        block(0, len(a)) if a.ndim else block(0, 1)
        return
    intraop.for_rows(block, a.shape[0], a.size, xp is np)

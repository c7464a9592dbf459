"""Scaled dot-product attention as one node of the flow graph (Vaswani et al. 2017; lecture:
"Multi-Head Attention").

    A = softmax(Q Kᵀ · scale + bias, over the allowed keys),   out = (A ⊙ D) V

with D an optional dropout mask already scaled by 1/(1-p). Recorded as matmuls, a product, a
softmax and a masking, attention keeps several (…, L, S) arrays and makes a pass over each
node; as one node the scores are computed and normalised in place, and backward is

    ∂V = (A ⊙ D)ᵀ ∂out,   ∂A = (∂out Vᵀ) ⊙ D,   ∂S = A ⊙ (∂A − rowsum(∂A ⊙ A)),
    ∂Q = ∂S K · scale,   ∂K = ∂Sᵀ (Q · scale).

The scale multiplies Q once, in the copy that makes it contiguous, rather than the scores.
On NumPy, with batch dimensions shared by Q, K and V, the work goes in tiles along the first
of them: each intra-op thread takes a block of it, with the BLAS held to one thread, and
computes products, softmax and output a chunk of about ``TILE`` scores at a time, so that a
chunk's scores stay in the core's cache between the passes over them.
"""

from __future__ import annotations

import numpy as np

from .. import backend, intraop
from ..autograd.op import Op

# numbers of scores per chunk: 1 MiB of float32, which a core's L2 cache holds
TILE = 1 << 18


def _rows(a, shape: tuple, rows):
    """Rows ``rows`` (a slice of the scores' first axis, or None: all) of an array
    broadcasting to the scores' ``shape``."""
    if a is None or rows is None or a.ndim < len(shape) or a.shape[0] == 1:
        return a
    return a[rows]


def _softmax_rows(xp, s, shape, rows, keep, bias, dead) -> None:
    """Scores ``s`` (rows ``rows`` of the whole) -> masked softmax along the last axis, in
    place."""
    if bias is not None:
        s += _rows(bias, shape, rows)
    if keep is not None:
        xp.copyto(s, s.dtype.type(-xp.inf), where=~_rows(keep, shape, rows))
    s -= s.max(axis=-1, keepdims=True)
    xp.exp(s, out=s)
    s *= 1 / xp.einsum("...j->...", s)[..., None]
    if dead is not None:
        s *= ~_rows(dead, shape, rows)


def _plan(xp, q, k, v, shape: tuple):
    """The blocks of the scores' first axis each thread takes and the chunk size within a
    block, or None where the work is done at once (a GPU array, no batch dimension, or batch
    dimensions not shared by q, k and v)."""
    lead = shape[:-2]
    if xp is not np or not lead or any(a.shape[:-2] != lead for a in (q, k, v)):
        return None
    per_row = 1
    for n in shape[1:]:
        per_row *= n
    return intraop.blas_spans(shape[0], per_row * shape[0]), max(1, TILE // per_row)


def _tiled(plan, body) -> None:
    """``body(rows)`` over chunks of each block, the blocks over the intra-op threads with the
    BLAS held to one thread while they run."""
    blocks, chunk = plan

    def block(lo, hi):
        for start in range(lo, hi, chunk):
            body(slice(start, min(start + chunk, hi)))
    intraop.run_blas_single(block, blocks)


def _rowdot(xp, a, b):
    """Σ_j a_..ij b_..ij as an array (…, i, 1): one einsum over rows of contiguous copies."""
    n = a.shape[-1]
    a2 = xp.ascontiguousarray(a).reshape(-1, n)
    b2 = xp.ascontiguousarray(b).reshape(-1, n)
    return xp.einsum("ij,ij->i", a2, b2).reshape(a.shape[:-1] + (1,))


def _blocks(xp, block, a) -> None:
    """``block(rows)`` over blocks of the first axis of ``a`` (over the intra-op threads on
    NumPy); an array of 2 dimensions or fewer runs at once, with ``rows`` None."""
    if a.ndim <= 2:
        block(None)
        return
    intraop.for_rows(lambda lo, hi: block(slice(lo, hi)), a.shape[0], a.size, xp is np)


class Attention(Op):
    """softmax(q kᵀ · scale + bias) v over the keys ``keep`` allows, rows in ``dead`` set to 0,
    times ``drop`` before v when given. ``keep``, ``bias``, ``dead`` and ``drop`` are arrays
    (or None) that broadcast to the scores' shape (…, L, S) without enlarging it; only q, k and
    v get gradients."""

    @staticmethod
    def forward(ctx, q, k, v, scale, keep, bias, dead, drop):
        xp = ctx.xp
        shape = np.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
        factor = q.dtype.type(scale)
        ctx.scale = scale
        plan = _plan(xp, q, k, v, shape)
        if plan is None:
            # heads split from one projection are strided views: BLAS multiplies them about
            # half as fast as contiguous copies, which the six products of forward and
            # backward share
            qs, kc, vc = xp.multiply(q, factor), xp.ascontiguousarray(k), xp.ascontiguousarray(v)
            s = xp.matmul(qs, xp.swapaxes(kc, -1, -2))
            _blocks(xp, lambda rows: _softmax_rows(xp, s if rows is None else s[rows], shape,
                                                   rows, keep, bias, dead), s)
            weights = s if drop is None else backend.binary(xp, xp.multiply, s, drop)
            out = xp.matmul(weights, vc)
        else:
            qs, kc, vc = (xp.empty(a.shape, a.dtype) for a in (q, k, v))
            s = xp.empty(shape, q.dtype)
            out = xp.empty(shape[:-1] + v.shape[-1:], q.dtype)

            def body(rows):
                xp.multiply(q[rows], factor, out=qs[rows])
                kc[rows], vc[rows] = k[rows], v[rows]
                b = s[rows]
                xp.matmul(qs[rows], xp.swapaxes(kc[rows], -1, -2), out=b)
                _softmax_rows(xp, b, shape, rows, keep, bias, dead)
                weights = b if drop is None else b * _rows(drop, shape, rows)
                xp.matmul(weights, vc[rows], out=out[rows])
            _tiled(plan, body)
        ctx.save_for_backward(qs, kc, vc, s, drop)
        return out

    @staticmethod
    def backward(ctx, grad):
        qs, kc, vc, attn, drop = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        factor = attn.dtype.type(ctx.scale)
        shape = attn.shape
        plan = _plan(xp, qs, kc, vc, shape)
        if plan is None:
            return _backward_whole(xp, needs, factor, grad, qs, kc, vc, attn, drop)
        gq, gk, gv = (xp.empty(a.shape, a.dtype) if need else None
                      for a, need in zip((qs, kc, vc), needs))

        def body(rows):
            a, g = attn[rows], xp.ascontiguousarray(grad[rows])
            d = None if drop is None else _rows(drop, shape, rows)
            if gv is not None:
                xp.matmul(xp.swapaxes(a if d is None else a * d, -1, -2), g, out=gv[rows])
            if gq is None and gk is None:
                return
            ga = xp.matmul(g, xp.swapaxes(vc[rows], -1, -2))
            if d is not None:
                ga *= d
            ga -= _rowdot(xp, ga, a)
            ga *= a
            if gq is not None:
                xp.matmul(ga, kc[rows], out=gq[rows])
                gq[rows] *= factor
            if gk is not None:
                xp.matmul(xp.swapaxes(ga, -1, -2), qs[rows], out=gk[rows])
        _tiled(plan, body)
        return gq, gk, gv


def _backward_whole(xp, needs, factor, grad, qs, kc, vc, attn, drop):
    """Attention's backward on whole arrays (a GPU array, no batch dimension, or batch
    dimensions broadcast between q, k and v: the engine sums the gradients' broadcast dims)."""
    gq = gk = gv = None
    if needs[2]:
        weights = attn if drop is None else backend.binary(xp, xp.multiply, attn, drop)
        gv = xp.matmul(xp.swapaxes(weights, -1, -2), grad)
    if needs[0] or needs[1]:
        ga = xp.matmul(grad, xp.swapaxes(vc, -1, -2))
        shape = ga.shape

        def block(rows):
            g, a = (ga, attn) if rows is None else (ga[rows], _rows(attn, shape, rows))
            if drop is not None:
                g *= _rows(drop, shape, rows)
            g -= _rowdot(xp, g, xp.broadcast_to(a, g.shape))
            g *= a
        _blocks(xp, block, ga)
        if needs[0]:
            gq = xp.matmul(ga, kc)
            gq *= factor
        if needs[1]:
            gk = xp.matmul(xp.swapaxes(ga, -1, -2), qs)
    return gq, gk, gv

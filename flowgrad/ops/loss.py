"""Fused loss primitives (lecture: "Log-Likelihood as Loss function"): each is one node of the
flow graph because fusing buys numerical stability or speed over the composition.

* ``CrossEntropy``: log-softmax + negative log-likelihood of class indices in one pass; the
  gradient is ``p - onehot(target)`` without ever forming log(softmax) twice.
* ``NLLLoss``: picking ``-logp[target]``; its backward writes one entry per row instead of
  scattering through a gather.
* ``BCEWithLogits``: binary cross-entropy on logits via log-sigmoid, finite at any logit.
* ``BinaryCrossEntropy``: on probabilities, logs clamped at -100 and a gradient that stays finite
  when a probability is exactly 0 or 1 (a composed ``log`` would give 0/0 there).

Class-index losses take the input as (N, C, d1, ...) or (C,), the target as (N, d1, ...) or ();
``reduction`` is 'none', 'mean' or 'sum' and 'mean' divides by the total weight of the targets
that are not ``ignore_index``, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import intraop
from ..autograd.op import Op
from ..dtypes import FLOATING


def _rows(xp, x, target):
    """Classes last and rows flat: (M, C) logits and (M,) targets, plus what undoes it."""
    if x.ndim == 1:
        return x[None, :], target.reshape(1)
    if x.ndim == 2:
        return x, target
    c = x.shape[1]
    return xp.moveaxis(x, 1, -1).reshape(-1, c), target.reshape(-1)


def _unrows(xp, g2, shape):
    """Inverse of ``_rows`` for a gradient of shape (M, C)."""
    if len(shape) == 1:
        return g2[0]
    if len(shape) == 2:
        return g2
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return xp.moveaxis(g2.reshape(moved), -1, 1)


def _target_weights(xp, t, weight, ignore_index, dtype):
    """Safe class indices (ignored -> 0) and each row's weight (0 where ignored)."""
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    if weight is None:
        wt = valid.astype(dtype)
    else:
        wt = weight[safe] * valid
    return safe, wt.astype(dtype, copy=False)


def _reduce(xp, per, reduction, total, shape, dtype):
    if reduction == "none":
        return per.reshape(shape).astype(dtype, copy=False)
    s = per.sum()
    if reduction == "sum":
        return xp.asarray(s, dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.asarray(s / total, dtype=dtype)


def _row_grad(xp, grad, reduction, total, m, dtype):
    """Upstream gradient per row (M,) (or a scalar broadcasting against the rows)."""
    if reduction == "none":
        return grad.reshape(m)
    if reduction == "sum":
        return grad.reshape(())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (grad.reshape(()) / xp.asarray(total, dtype=dtype)).astype(dtype, copy=False)


class CrossEntropy(Op):
    """Softmax cross-entropy with class-index targets, ignore_index, class weights and label
    smoothing (Szegedy et al. 2016), fused for stability; input (N, C, d1, ...) or (C,)."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, label_smoothing, reduction):
        # log p_j = s_j - log sum_k exp(s_k) with s = x - max(x): the loss needs log p only at
        # the targets, and backward needs p = exp(s) / sum exp(s), so exp(s) is made once (in
        # place) and kept; no (M, C) log-probabilities are formed.
        xp = ctx.xp
        x2, t = _rows(xp, x, target)
        m, c = x2.shape
        safe, wt = _target_weights(xp, t, weight, ignore_index, x.dtype)
        eps = label_smoothing
        e = xp.empty(x2.shape, dtype=x2.dtype)  # shifted logits, then exp of them in place
        shifted_t = xp.empty(m, dtype=x2.dtype)
        total_exp = xp.empty(m, dtype=x2.dtype)
        shifted_sum = xp.empty(m, dtype=x2.dtype) if eps > 0 else None

        def block(lo, hi):  # rows lo:hi
            b = e[lo:hi]
            xp.subtract(x2[lo:hi], x2[lo:hi].max(axis=1, keepdims=True), out=b)
            shifted_t[lo:hi] = b[xp.arange(hi - lo), safe[lo:hi]]
            if eps > 0:  # sum_j w_j s_j before e is overwritten
                shifted_sum[lo:hi] = (b.sum(axis=1) if weight is None
                                      else xp.einsum("ij,j->i", b, weight))
            xp.exp(b, out=b)
            total_exp[lo:hi] = xp.einsum("ij->i", b)
        intraop.for_rows(block, m, x2.size, xp is np)
        lse = xp.log(total_exp)
        per = -(shifted_t - lse) * wt  # (M,)
        if eps > 0:  # -sum_j w_j log p_j = -(sum_j w_j s_j - lse sum_j w_j)
            wsum = c if weight is None else weight.sum()
            smooth = -(shifted_sum - lse * wsum)
            per = (1 - eps) * per + (eps / c) * smooth * (t != ignore_index)
        total = float(wt.sum()) if reduction == "mean" else 1.0
        valid = (t != ignore_index) if eps > 0 else None
        ctx.save_for_backward(e, total_exp, safe, wt, weight, valid)
        ctx.shape, ctx.total = x.shape, total
        ctx.eps, ctx.reduction = eps, reduction
        return _reduce(xp, per, reduction, total, target.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        e, total_exp, safe, wt, weight, valid = ctx.saved
        xp = ctx.xp
        m, c = e.shape
        g = _row_grad(xp, grad, ctx.reduction, ctx.total, m, e.dtype)
        coef = g * wt  # (M,)
        eps = ctx.eps
        rows = xp.arange(m)
        if eps > 0:
            coef = coef * (1 - eps)
            gv = (g * valid) * (eps / c)  # (M,)
            wsum = c if weight is None else weight.sum()
            # coef p + gv (p wsum - w) with p = e / total_exp, in one pass over e
            gx = e * ((coef + gv * wsum) / total_exp)[:, None]
            gx -= gv[:, None] if weight is None else gv[:, None] * weight
        else:
            scale = (coef / total_exp)[:, None]
            gx = xp.empty(e.shape, dtype=e.dtype)
            intraop.for_rows(lambda lo, hi: xp.multiply(e[lo:hi], scale[lo:hi], out=gx[lo:hi]),
                             m, e.size, xp is np)
        gx[rows, safe] -= coef
        return _unrows(xp, gx.astype(e.dtype, copy=False), ctx.shape), None, None, None, \
            None, None


class NLLLoss(Op):
    """Negative log-likelihood of class indices given log-probabilities, with ignore_index and
    class weights; input (N, C, d1, ...) or (C,)."""

    dtype_rule = FLOATING
    op_name = "nll_loss"

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        xp = ctx.xp
        x2, t = _rows(xp, x, target)
        m = x2.shape[0]
        safe, wt = _target_weights(xp, t, weight, ignore_index, x.dtype)
        per = -x2[xp.arange(m), safe] * wt
        total = float(wt.sum()) if reduction == "mean" else 1.0
        ctx.save_for_backward(safe, wt)
        ctx.shape, ctx.dtype, ctx.total = x.shape, x.dtype, total
        ctx.reduction = reduction
        return _reduce(xp, per, reduction, total, target.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        safe, wt = ctx.saved
        m = safe.shape[0]
        c = ctx.shape[1] if len(ctx.shape) > 1 else ctx.shape[0]
        g = _row_grad(xp, grad, ctx.reduction, ctx.total, m, ctx.dtype)
        gx = xp.zeros((m, c), dtype=ctx.dtype)
        gx[xp.arange(m), safe] = -(g * wt)
        return _unrows(xp, gx, ctx.shape), None, None, None, None


def _elementwise_reduce(xp, loss, reduction, dtype):
    if reduction == "none":
        return loss.astype(dtype, copy=False)
    if reduction == "sum":
        return xp.asarray(loss.sum(), dtype=dtype)
    with np.errstate(invalid="ignore"):
        return xp.asarray(loss.mean() if loss.size else np.nan, dtype=dtype)


def _elementwise_grad(grad, reduction, n):
    if reduction == "mean":
        return grad * (1.0 / n) if n else grad * np.nan
    return grad


class BCEWithLogits(Op):
    """Binary cross-entropy on logits, -[lw y log s(x) + (1-y) log(1-s(x))] with
    lw = 1 + (pos_weight - 1) y, computed as (1-y) x - lw log s(x) with a stable log-sigmoid;
    every operand broadcasts against the input (pos_weight along the last dim)."""

    dtype_rule = FLOATING
    op_name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction):
        xp = ctx.xp
        log_sig = -xp.logaddexp(0, -x)  # log sigmoid(x), finite for any x
        if x.dtype != y.dtype:  # PyTorch: log-sigmoid in the input's dtype, the rest in target's
            x, log_sig = x.astype(y.dtype), log_sig.astype(y.dtype)
        if pos_weight is not None:
            lw = 1 + (pos_weight - 1) * y
            loss = (1 - y) * x - lw * log_sig
        else:
            lw = None
            loss = (1 - y) * x - log_sig
        raw = loss
        if weight is not None:
            loss = loss * weight
        # the weights too, so that in-place changes to them are caught like any saved input's
        ctx.save_for_backward(x, y, weight, pos_weight, log_sig, lw, raw)
        ctx.n, ctx.reduction = loss.size, reduction
        return _elementwise_reduce(xp, loss, reduction, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, y, w, pw, log_sig, lw, raw = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        g = _elementwise_grad(grad, ctx.reduction, ctx.n)
        gw_out = g if w is None else g * w
        gx = gy = gwt = gpw = None
        if needs[0]:
            e = xp.exp(-xp.abs(x))
            sig = xp.where(x >= 0, 1, e) / (1 + e)  # sigmoid(x), exact in both tails
            # (1 - y) - lw (1 - sigmoid) = lw sigmoid - pos_weight y, without cancellation
            gx = gw_out * (sig - y if pw is None else lw * sig - pw * y)
        if needs[1]:
            dy = -x if pw is None else -x - (pw - 1) * log_sig
            gy = gw_out * dy
        if needs[2]:
            gwt = g * raw
        if needs[3]:
            gpw = gw_out * (-y * log_sig)
        return gx, gy, gwt, gpw, None


class BinaryCrossEntropy(Op):
    """Binary cross-entropy on probabilities, -w [y log x + (1-y) log(1-x)] with both logs
    clamped at -100 (PyTorch's rule), so x = 0 or 1 gives a finite loss and gradient."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, y, weight, reduction):
        xp = ctx.xp
        with np.errstate(divide="ignore"):
            lx = xp.maximum(xp.log(x), -100)
            l1x = xp.maximum(xp.log1p(-x), -100)
        raw = -(y * lx + (1 - y) * l1x)
        loss = raw if weight is None else raw * weight
        ctx.save_for_backward(x, y, weight, lx, l1x, raw)
        ctx.n, ctx.reduction = loss.size, reduction
        return _elementwise_reduce(xp, loss, reduction, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, y, weight, lx, l1x, raw = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        g = _elementwise_grad(grad, ctx.reduction, ctx.n)
        gw_out = g if weight is None else g * weight
        gx = gy = gwt = None
        if needs[0]:
            gx = gw_out * (x - y) / xp.maximum(x * (1 - x), 1e-12)
        if needs[1]:
            gy = gw_out * (l1x - lx)
        if needs[2]:
            gwt = g * raw
        return gx, gy, gwt, None


class MSELoss(Op):
    """Mean (or summed, or elementwise) squared error (x - y)^2 in one node: the negative
    log-likelihood of a unit-variance Gaussian up to constants (lecture: "Gaussian output")."""

    dtype_rule = FLOATING
    op_name = "mse_loss"

    @staticmethod
    def forward(ctx, x, y, reduction):
        d = x - y
        ctx.save_for_backward(d)
        ctx.reduction = reduction
        sq = d * d
        if reduction == "none":
            return sq
        total = ctx.xp.add.reduce(sq, axis=None)
        if reduction == "sum":
            return total
        return total * (1.0 / d.size) if d.size else total * np.nan

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved
        scale = 2.0 / d.size if ctx.reduction == "mean" and d.size else 2.0
        gx = d * (grad * scale)
        gy = -gx if ctx.needs_input_grad[1] else None
        return (gx if ctx.needs_input_grad[0] else None), gy, None

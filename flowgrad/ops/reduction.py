"""Reductions over any set of dims, and the normalisers built on them (softmax, log-softmax,
log-sum-exp) computed stably."""

from __future__ import annotations

import numpy as np

from .. import intraop
from ..autograd.op import Op
from ..dtypes import FLOAT, FLOATING


def _expand_back(grad, shape, dims, keepdim):
    """Reshape a reduced gradient so that it broadcasts against the input of ``shape``."""
    if not keepdim and dims is not None:
        kept = list(grad.shape)
        for d in sorted(dims):
            kept.insert(d, 1)
        grad = grad.reshape(kept)
    elif dims is None and not keepdim:
        grad = grad.reshape((1,) * len(shape))
    return grad


def _spread(xp, grad, shape, dims, keepdim, scale=None):
    """The gradient of a sum/mean over ``dims``: ``grad`` broadcast back to ``shape``."""
    if dims is None and grad.size == 1:  # full reduction: one value everywhere (the hot case)
        value = grad.reshape(()) if scale is None else grad.reshape(()) * scale
        out = xp.empty(shape, dtype=grad.dtype)
        out.fill(value)
        return out
    g = _expand_back(grad, shape, dims, keepdim)
    if scale is not None:
        g = (g * scale).astype(grad.dtype, copy=False)
    return xp.broadcast_to(g, shape)


class Sum(Op):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        if dims is None and not keepdim and x.dtype.kind == "f":
            return ctx.xp.add.reduce(x, axis=None)
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _spread(ctx.xp, grad, ctx.shape, ctx.dims, ctx.keepdim)


class Mean(Op):
    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        kept = 1
        for d in (range(x.ndim) if dims is None else dims):
            kept *= x.shape[d]
        ctx.n = kept
        total = ctx.xp.add.reduce(x, axis=dims, keepdims=keepdim)
        return total * (1.0 / kept) if kept else total * float("nan")

    @staticmethod
    def backward(ctx, grad):
        return _spread(ctx.xp, grad, ctx.shape, ctx.dims, ctx.keepdim,
                       1.0 / ctx.n if ctx.n else float("nan"))


class Var(Op):
    """Variance over dims with a correction, as PyTorch's var: sum((x - mean)^2) / max(0, n -
    correction), inf or NaN where n <= correction; the gradient 2 (x - mean) / (n - correction)
    (PyTorch's var_backward, unclamped, so its signs and infinities are PyTorch's too)."""

    dtype_rule = FLOATING
    op_name = "var"

    @staticmethod
    def forward(ctx, x, dims, keepdim, correction):
        xp = ctx.xp
        n = 1
        for d in (range(x.ndim) if dims is None else dims):
            n *= x.shape[d]
        with np.errstate(divide="ignore", invalid="ignore"):
            centred = x - x.mean(axis=dims, keepdims=True) if x.size else x
            ss = xp.add.reduce(centred * centred, axis=dims, keepdims=keepdim)
            out = ss / x.dtype.type(max(0, n - correction))
        ctx.save_for_backward(centred)
        ctx.dims, ctx.keepdim, ctx.k = dims, keepdim, n - correction
        return out

    @staticmethod
    def backward(ctx, grad):
        (centred,) = ctx.saved
        g = _expand_back(grad, centred.shape, ctx.dims, ctx.keepdim)
        with np.errstate(invalid="ignore"):
            if ctx.dims is None and ctx.k <= 0:  # PyTorch's full reduction with no dof left:
                # inf, times the gradient, NaN at entries equal to the mean
                return g * ctx.xp.where(centred == 0, np.nan, np.inf).astype(grad.dtype)
            factor = 2.0 / ctx.k if ctx.k else float("inf")
            return g * centred * grad.dtype.type(factor)


class AMax(Op):
    """Max over dims; the gradient is shared evenly between tied maxima (PyTorch's amax); a
    NaN maximum gives NaN gradients to its slice, as in PyTorch (no entry equals NaN)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, minimum=False, evenly=False):
        out = x.min(axis=dims, keepdims=True) if minimum else x.max(axis=dims, keepdims=True)
        ctx.save_for_backward(x, out)
        ctx.dims, ctx.keepdim, ctx.evenly = dims, keepdim, evenly
        if not keepdim:
            return out.reshape(_reduced_shape(x.shape, dims))
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved
        hit = (x == out)
        if ctx.evenly:  # max()/min() of all: a NaN result shares among the NaNs (PyTorch's
            hit |= ctx.xp.isnan(x) & ctx.xp.isnan(out)  # evenly_distribute_backward)
        count = hit.sum(axis=ctx.dims, keepdims=True)
        g = _expand_back(grad, x.shape, ctx.dims, ctx.keepdim)
        return hit * (g / count).astype(grad.dtype, copy=False)


def _reduced_shape(shape, dims):
    if dims is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in dims)


class Prod(Op):
    """Product over one dim (or all); the gradient uses exclusive cumulative products, so it is
    right where inputs are zero."""

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        acc = x.dtype if x.dtype.kind == "f" else ctx.xp.int64  # PyTorch: integers in int64
        if dim is None:
            return x.prod(dtype=acc)
        return x.prod(axis=dim, keepdims=keepdim, dtype=acc)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = ctx.xp
        dim = ctx.dim
        if x.size == 0:
            return xp.zeros(x.shape, dtype=grad.dtype)
        if dim is None:
            flat = x.reshape(-1)
            return (grad * _prod_others(xp, flat, 0)).reshape(x.shape)
        g = grad if ctx.keepdim else xp.expand_dims(grad, dim)
        return g * _prod_others(xp, x, dim)


def _prod_others(xp, x, dim):
    """For each position along ``dim``, the product of all other entries along ``dim``."""
    x = xp.moveaxis(x, dim, -1)
    ones = xp.ones(x.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([x[..., 1:], ones], axis=-1), -1),
                               axis=-1), -1)
    return xp.moveaxis(left * right, -1, dim)


class Cumsum(Op):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        # integers (and bools) accumulate in int64, as in PyTorch
        return ctx.xp.cumsum(x, axis=dim, dtype=x.dtype if x.dtype.kind == "f" else ctx.xp.int64)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        return xp.flip(xp.cumsum(xp.flip(grad, ctx.dim), axis=ctx.dim), ctx.dim)


class LogSumExp(Op):
    dtype_rule = FLOAT
    op_name = "logsumexp"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx.xp
        ctx.dims, ctx.keepdim = dims, keepdim
        if x.size == 0:  # log of an empty sum: -inf (max has no identity to shift by)
            out = xp.log(xp.exp(x).sum(axis=dims, keepdims=True))
            ctx.save_for_backward(x, out)
            return out if keepdim else out.reshape(_reduced_shape(x.shape, dims))
        m = x.max(axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(x - m).sum(axis=dims, keepdims=True)) + m
        ctx.save_for_backward(x, out)
        ctx.dims, ctx.keepdim = dims, keepdim
        return out if keepdim else out.reshape(_reduced_shape(x.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved
        g = _expand_back(grad, x.shape, ctx.dims, ctx.keepdim)
        return g * ctx.xp.exp(x - out)


def _last_rows(xp, x, dim) -> bool:
    """Whether a softmax over ``dim`` goes to the intra-op threads in blocks of its leading
    rows: the last dimension of a large NumPy array of 2 dimensions or more, with threads."""
    return (xp is np and x.ndim >= 2 and dim in (-1, x.ndim - 1)
            and x.size >= intraop.MIN_ELEMENTS and intraop.get_num_threads() > 1)


def _normalised(ctx, x, dim, whole, rows):
    """The forward of Softmax and LogSoftmax: ``whole(xp, x, dim)``, or ``rows(xp, x_block,
    out_block)`` over blocks of leading rows for the last dimension; saved for backward."""
    xp = ctx.xp
    ctx.dim = dim
    if x.size == 0:  # nothing to normalise (max over an empty dim has no identity)
        ctx.save_for_backward(x)
        return x.copy()
    if _last_rows(xp, x, dim):
        y = xp.empty(x.shape, dtype=x.dtype)
        intraop.for_rows(lambda lo, hi: rows(xp, x[lo:hi], y[lo:hi]), len(x), x.size)
    else:
        y = whole(xp, x, dim)
    ctx.save_for_backward(y)
    return y


def _normalised_grad(ctx, grad, whole, rows):
    """The backward of Softmax and LogSoftmax, as ``_normalised`` splits its forward."""
    (y,) = ctx.saved
    xp = ctx.xp
    if not _last_rows(xp, y, ctx.dim) or grad.shape != y.shape:
        return whole(xp, y, grad, ctx.dim)
    gx = xp.empty(y.shape, dtype=np.result_type(y, grad))
    intraop.for_rows(lambda lo, hi: rows(xp, y[lo:hi], grad[lo:hi], gx[lo:hi]), len(y), y.size)
    return gx


def _softmax(xp, x, dim):
    e = xp.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _softmax_rows(xp, x, out):
    xp.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    xp.exp(out, out=out)
    out /= xp.einsum("...j->...", out)[..., None]


def _softmax_grad(xp, y, grad, dim):  # noqa: ARG001 - one signature for both
    return y * (grad - (grad * y).sum(axis=dim, keepdims=True))


def _softmax_grad_rows(xp, y, grad, out):
    xp.subtract(grad, xp.einsum("...j,...j->...", grad, y)[..., None], out=out)
    out *= y


def _log_softmax(xp, x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


def _log_softmax_rows(xp, x, out):
    xp.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    out -= xp.log(xp.einsum("...j->...", xp.exp(out)))[..., None]


def _log_softmax_grad(xp, y, grad, dim):
    return grad - xp.exp(y) * grad.sum(axis=dim, keepdims=True)


def _log_softmax_grad_rows(xp, y, grad, out):
    xp.exp(y, out=out)
    out *= xp.einsum("...j->...", grad)[..., None]
    xp.subtract(grad, out, out=out)


class Softmax(Op):
    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, dim):
        return _normalised(ctx, x, dim, _softmax, _softmax_rows)

    @staticmethod
    def backward(ctx, grad):
        return _normalised_grad(ctx, grad, _softmax_grad, _softmax_grad_rows)


class LogSoftmax(Op):
    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, dim):
        return _normalised(ctx, x, dim, _log_softmax, _log_softmax_rows)

    @staticmethod
    def backward(ctx, grad):
        return _normalised_grad(ctx, grad, _log_softmax_grad, _log_softmax_grad_rows)


class Norm2(Op):
    """Euclidean norm over dims; its subgradient at 0 is 0 (as in PyTorch)."""

    dtype_rule = FLOATING
    op_name = "norm"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx.xp
        out = xp.sqrt((x * x).sum(axis=dims, keepdims=True))
        ctx.save_for_backward(x, out)
        ctx.dims, ctx.keepdim = dims, keepdim
        return out if keepdim else out.reshape(_reduced_shape(x.shape, dims))

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved
        g = _expand_back(grad, x.shape, ctx.dims, ctx.keepdim)
        safe = ctx.xp.where(out == 0, 1, out)
        return (g * x / safe) * (out != 0)

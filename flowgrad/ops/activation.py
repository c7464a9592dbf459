"""Non-linearities (lecture: "Non-Linearities"): each derivative from the saved output where it
is a function of it."""

from __future__ import annotations

import math

from .. import backend
from ..autograd.op import Op
from ..dtypes import FLOAT, FLOATING, NUMBER


class Relu(Op):
    dtype_rule = NUMBER

    @staticmethod
    def forward(ctx, x):
        y = backend.relu(ctx.xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        # y >= 0 or NaN: y != 0 passes the gradient where y > 0 and at NaN, as PyTorch's
        # threshold_backward (which zeroes it only where y <= 0)
        return backend.select(ctx.xp, y != 0, grad)


class LeakyRelu(Op):
    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, slope):
        xp = ctx.xp
        ctx.save_for_backward(x)
        ctx.slope = slope
        if 0 < slope <= 1:  # max(x, slope x): two passes instead of where's four (same at inf/NaN)
            return backend.flat_blocks(xp, (x,), 1, _leaky, slope)[0]
        return xp.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp, slope = ctx.xp, ctx.slope
        if 0 < slope < 1 and x.dtype == grad.dtype:
            return backend.flat_blocks(xp, (x, grad), 1, _leaky_grad, slope)[0]
        return xp.where(x > 0, grad, grad * slope)


def _leaky(xp, x, slope):
    y = x * slope
    return (xp.maximum(x, y, out=y),)


def _leaky_grad(xp, x, grad, slope):
    """grad times the derivative, exactly 1 or slope: max(1[x > 0], slope)."""
    d = (x > 0).astype(grad.dtype)
    return (grad * xp.maximum(d, grad.dtype.type(slope), out=d),)


class Elu(Op):
    """ELU (Clevert et al. 2016), scaled as SELU when ``scale`` != 1 (Klambauer et al. 2017)."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, alpha, scale):
        xp = ctx.xp
        neg = alpha * xp.expm1(xp.minimum(x, 0))
        y = scale * xp.where(x > 0, x, neg)
        ctx.save_for_backward(x, neg)
        ctx.alpha, ctx.scale = alpha, scale
        return y

    @staticmethod
    def backward(ctx, grad):
        x, neg = ctx.saved
        return grad * ctx.scale * ctx.xp.where(x > 0, 1, neg + ctx.alpha).astype(grad.dtype)


def sigmoid(xp, x):
    """1 / (1 + exp(-x)) without overflow, exact in both tails (exp of -|x| only)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1, e) / (1 + e)


class Sigmoid(Op):
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        y = sigmoid(ctx.xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * y * (1 - y)


class Tanh(Op):
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * (1 - y * y)


class Softplus(Op):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (PyTorch's definition)."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = ctx.xp
        bx = x * beta
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        soft = (xp.logaddexp(bx, 0) / beta).astype(x.dtype, copy=False)
        return xp.where(bx > threshold, x, soft)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        bx = x * ctx.beta
        s = sigmoid(ctx.xp, bx)
        return ctx.xp.where(bx > ctx.threshold, grad, grad * s)


class Silu(Op):
    """x * sigmoid(x) (Hendrycks & Gimpel 2016; Ramachandran et al. 2017)."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x):
        s = sigmoid(ctx.xp, x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved
        return grad * s * (1 + x * (1 - s))


class Gelu(Op):
    """GELU (Hendrycks & Gimpel 2016): x Phi(x), exact or with the tanh approximation."""

    dtype_rule = FLOATING

    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.xp
        ctx.approximate = approximate
        out, saved = backend.flat_blocks(xp, (x,), 2, Gelu._forward, approximate)
        ctx.save_for_backward(x, saved)
        return out

    @staticmethod
    def _forward(xp, x, approximate):
        """(gelu(x), what backward needs: tanh(...) or Phi(x)) for one block."""
        if approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x * x * x))
            return 0.5 * x * (1 + t), t
        cdf = 0.5 * (1 + backend.erf(xp, x * (1 / math.sqrt(2))).astype(x.dtype, copy=False))
        return x * cdf, cdf  # gelu(+inf) = inf (PyTorch's float32 AVX-512 kernel gives NaN)

    @staticmethod
    def backward(ctx, grad):
        x, t_or_cdf = ctx.saved
        return backend.flat_blocks(ctx.xp, (grad, x, t_or_cdf), 1, Gelu._backward,
                                   ctx.approximate)[0]

    @staticmethod
    def _backward(xp, grad, x, t_or_cdf, approximate):
        if approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = t_or_cdf
            dt = (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
            return (grad * (0.5 * (1 + t) + 0.5 * x * dt),)
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return (grad * (t_or_cdf + x * pdf),)

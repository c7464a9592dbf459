"""Elementwise arithmetic and maths. Operands broadcast by NumPy/PyTorch rules; backward returns
gradients of the broadcast shape and the engine sums them down (autograd/broadcast.py)."""

from __future__ import annotations

from .. import backend
from ..autograd.op import Op


class Add(Op):
    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Op):
    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Op):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        needs = ctx.needs_input_grad
        return (grad * y if needs[0] else None), (grad * x if needs[1] else None)


class Div(Op):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        needs = ctx.needs_input_grad
        gx = grad / y if needs[0] else None
        gy = -grad * x / (y * y) if needs[1] else None
        return gx, gy


class Remainder(Op):
    """x % y with the sign of y (Python's and PyTorch's ``remainder``)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.remainder(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        gy = -grad * ctx.xp.floor(x / y) if ctx.needs_input_grad[1] else None
        return grad, gy


class FloorDivide(Op):
    """x // y: piecewise constant, so no gradient flows (as in PyTorch)."""

    differentiable = False

    @staticmethod
    def forward(ctx, x, y):
        return ctx.xp.floor_divide(x, y)


class Neg(Op):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Op):
    """x ** y for tensor or scalar base and exponent."""

    @staticmethod
    def forward(ctx, x, y):
        out = x ** y
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        gx = gy = None
        if needs[0]:
            if isinstance(y, (int, float)):
                gx = grad * y * x ** (y - 1) if y != 0 else grad * 0
            else:
                gx = grad * y * x ** (y - 1)
                gx = xp.where(y == 0, 0, gx).astype(grad.dtype, copy=False)
        if needs[1]:
            if isinstance(x, (int, float)):
                gy = grad * out * _log_scalar(x)
            else:
                with_log = grad * out * xp.log(xp.where(x == 0, 1, x))
                gy = xp.where((x == 0) & (y >= 0), 0, with_log).astype(grad.dtype, copy=False)
        return gx, gy


def _log_scalar(x: float) -> float:
    import math

    return math.log(x) if x > 0 else float("nan")


class Exp(Op):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * y


class Expm1(Op):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * (y + 1)


class Log(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / x


class Log1p(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / (x + 1)


class Sqrt(Op):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad / (2 * y)


class Rsqrt(Op):
    @staticmethod
    def forward(ctx, x):
        y = 1 / ctx.xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * -0.5 * y * y * y


class Reciprocal(Op):
    @staticmethod
    def forward(ctx, x):
        y = 1 / x
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return -grad * y * y


class Sin(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * ctx.xp.cos(x)


class Cos(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return -grad * ctx.xp.sin(x)


class Abs(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * ctx.xp.sign(x)


class Sign(Op):
    """sign(x); its gradient is zero everywhere it exists (PyTorch returns zeros too)."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.sign(x)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.zeros_like(grad)


class Erf(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.erf(ctx.xp, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * (1.1283791670955126 * ctx.xp.exp(-x * x))


class Clamp(Op):
    """clamp(x, min, max) with scalar bounds; gradient 1 inside [min, max], 0 outside."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return ctx.xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        mask = True
        if ctx.lo is not None:
            mask = x >= ctx.lo
        if ctx.hi is not None:
            mask = mask & (x <= ctx.hi)
        return grad * mask


class Maximum(Op):
    """Elementwise maximum; at ties the gradient is split evenly (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return _split_at_ties(ctx, grad, x > y, x == y)


class Minimum(Op):
    """Elementwise minimum; at ties the gradient is split evenly (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return _split_at_ties(ctx, grad, x < y, x == y)


def _split_at_ties(ctx, grad, first_wins, tie):
    xp = ctx.xp
    share = xp.where(tie, 0.5, first_wins.astype(grad.dtype)).astype(grad.dtype, copy=False)
    needs = ctx.needs_input_grad
    gx = grad * share if needs[0] else None
    gy = grad * (1 - share) if needs[1] else None
    return gx, gy


class Where(Op):
    """where(condition, x, y): x where condition holds, else y."""

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.cond = cond
        return ctx.xp.where(cond, x, y)

    @staticmethod
    def backward(ctx, grad):
        xp, c = ctx.xp, ctx.cond
        needs = ctx.needs_input_grad
        zero = grad.dtype.type(0)
        gx = xp.where(c, grad, zero) if needs[1] else None
        gy = xp.where(c, zero, grad) if needs[2] else None
        return None, gx, gy


class Compare(Op):
    """Comparisons and logical ops; bool output, no gradient."""

    differentiable = False
    _ops = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
            "gt": "greater", "ge": "greater_equal", "and": "logical_and",
            "or": "logical_or", "xor": "logical_xor"}

    @staticmethod
    def forward(ctx, x, y, op):
        return getattr(ctx.xp, Compare._ops[op])(x, y)


class LogicalNot(Op):
    differentiable = False

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.logical_not(x)


class Cast(Op):
    """Change dtype; the gradient is cast back to the input's dtype by the engine."""

    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Clone(Op):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class ToDevice(Op):
    """Move to another device ('cpu', 'cuda[:N]'); the gradient moves back."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return backend.to_device(grad, ctx.source)

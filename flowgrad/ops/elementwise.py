"""Elementwise arithmetic and maths. Operands broadcast by NumPy/PyTorch rules; backward returns
gradients of the broadcast shape and the engine sums them down (autograd/broadcast.py)."""

from __future__ import annotations

from .. import backend
from ..autograd.op import Op
from ..dtypes import FLOAT, NUMBER


class Add(Op):
    @staticmethod
    def forward(ctx, x, y):
        return backend.binary(ctx.xp, ctx.xp.add, x, y)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Op):
    @staticmethod
    def forward(ctx, x, y):
        return backend.binary(ctx.xp, ctx.xp.subtract, x, y)

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Op):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return backend.binary(ctx.xp, ctx.xp.multiply, x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        needs = ctx.needs_input_grad
        xp = ctx.xp
        return (backend.binary(xp, xp.multiply, grad, y) if needs[0] else None), \
            (backend.binary(xp, xp.multiply, grad, x) if needs[1] else None)


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
        if x.dtype.kind == "b":
            from ..errors import DTypeError

            raise DTypeError("neg: negation, the - operator, is not defined for bool tensors (as "
                             "in PyTorch); to invert a mask use ~ or .logical_not()")
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Op):
    """x ** y for tensor or scalar base and exponent."""

    @staticmethod
    def forward(ctx, x, y):
        if _integral(x) and _integral(y):
            out = _int_pow(ctx.xp, x, y)
        else:
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


def _integral(v) -> bool:
    """An integer or bool array, or a Python int/bool (the operands of an integer power)."""
    kind = getattr(getattr(v, "dtype", None), "kind", None)
    return kind in ("i", "u", "b") if kind else isinstance(v, int)


def _int_pow(xp, x, y):
    """Integer ** integer as PyTorch computes it: a negative Python-number exponent raises, a
    negative exponent in a tensor gives 1 for base 1, +-1 for base -1 and 0 otherwise (NumPy
    raises for both); bool ** bool has no kernel."""
    from ..errors import DTypeError

    x_bool = x.dtype.kind == "b" if hasattr(x, "dtype") else isinstance(x, bool)
    if x_bool and hasattr(y, "dtype") and y.dtype.kind == "b":
        raise DTypeError("pow: not defined for a bool base with a bool exponent; convert the base "
                         "with .long() or .float()")
    if x_bool and isinstance(y, bool):  # a bool tensor ** True/False stays bool, as in PyTorch
        return xp.logical_or(x, not y)
    if not hasattr(y, "dtype"):
        if y < 0:
            raise DTypeError(f"pow: integers to negative integer powers are not allowed (exponent "
                             f"{y}); convert the base with .float() for a fractional result")
        return x ** y
    neg = y < 0
    if not neg.any():
        return x ** y
    out = x ** xp.where(neg, 0, y).astype(y.dtype, copy=False)
    minus_one = xp.where(y % 2 == 1, -1, 1) if out.dtype.kind == "i" else 0
    special = xp.where(x == 1, 1, xp.where(x == -1, minus_one, 0))
    return xp.where(neg, special, out).astype(out.dtype, copy=False)


def _log_scalar(x: float) -> float:
    import math

    return math.log(x) if x > 0 else float("nan")


class Exp(Op):
    dtype_rule = FLOAT

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
    dtype_rule = FLOAT

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
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / x


class Log1p(Op):
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / (x + 1)


class Sqrt(Op):
    dtype_rule = FLOAT

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
    dtype_rule = FLOAT

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
    dtype_rule = FLOAT

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
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * ctx.xp.cos(x)


class Cos(Op):
    dtype_rule = FLOAT

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return -grad * ctx.xp.sin(x)


class Abs(Op):
    dtype_rule = NUMBER

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
    dtype_rule = FLOAT

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


class ClampTensor(Op):
    """clamp(x, min, max) with tensor bounds (either may be None): min(max(x, lo), hi), NaN in
    any operand giving NaN; PyTorch's gradient routing (clamp_backward_min_max): x gets it
    where lo <= x <= hi, lo where x < lo < hi, hi where x > hi or hi < lo."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = ctx.xp
        ctx.save_for_backward(x, lo, hi)
        out = x if lo is None else xp.maximum(x, lo)
        return out if hi is None else xp.minimum(out, hi)

    @staticmethod
    def backward(ctx, grad):
        x, lo, hi = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        zero = grad.dtype.type(0)
        gx = glo = ghi = None
        if needs[0]:
            inside = True
            if lo is not None:
                inside = x >= lo
            if hi is not None:
                inside = inside & (x <= hi)
            gx = xp.where(inside, grad, zero)
        if lo is not None and needs[1]:
            below = x < lo if hi is None else (x < lo) & (lo < hi)
            glo = xp.where(below, grad, zero)
        if hi is not None and needs[2]:
            above = x > hi if lo is None else (x > hi) | (hi < lo)
            ghi = xp.where(above, grad, zero)
        return gx, glo, ghi


class Maximum(Op):
    """Elementwise maximum; at ties the gradient is split evenly (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return _split_at_ties(ctx, grad, x < y, x > y, x == y)


class Minimum(Op):
    """Elementwise minimum; at ties the gradient is split evenly (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.xp.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return _split_at_ties(ctx, grad, x > y, x < y, x == y)


def _split_at_ties(ctx, grad, x_loses, y_loses, tie):
    """PyTorch's rule: half to each at ties, nothing to the loser, and the whole gradient to
    both where either is NaN (NaN compares false, so neither loses)."""
    xp = ctx.xp
    needs = ctx.needs_input_grad
    g = xp.where(tie, grad * 0.5, grad)
    zero = grad.dtype.type(0)
    gx = xp.where(x_loses, zero, g) if needs[0] else None
    gy = xp.where(y_loses, zero, g) if needs[1] else None
    return gx, gy


class Lerp(Op):
    """start + weight (end - start) with PyTorch's two formulas (the second, end - (end - start)
    (1 - weight), where |weight| >= 0.5, so weight 1 gives end exactly); ``weight`` a tensor or
    a Python number."""

    @staticmethod
    def forward(ctx, start, end, weight):
        xp = ctx.xp
        dt = start.dtype
        scalar = isinstance(weight, (int, float))
        # the weight in start's dtype, as PyTorch's kernel takes it (1 - w in float32 too)
        weight = dt.type(weight) if scalar else weight.astype(dt, copy=False)
        diff = end - start
        ctx.save_for_backward(diff, weight)
        low = start + weight * diff
        high = end - diff * (dt.type(1) - weight)
        if scalar:
            return low if abs(weight) < 0.5 else high
        return xp.where(xp.abs(weight) < 0.5, low, high)

    @staticmethod
    def backward(ctx, grad):
        diff, weight = ctx.saved
        needs = ctx.needs_input_grad
        dt = grad.dtype
        gs = (grad * (dt.type(1) - weight)).astype(dt, copy=False) if needs[0] else None
        ge = (grad * weight).astype(dt, copy=False) if needs[1] else None
        gw = grad * diff if needs[2] else None
        return gs, ge, gw


class Where(Op):
    """where(condition, x, y): x where condition holds, else y."""

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, x, y)

    @staticmethod
    def backward(ctx, grad):
        xp, (c,) = ctx.xp, ctx.saved
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

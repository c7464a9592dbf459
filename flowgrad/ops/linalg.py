"""Matrix products: matmul (1-D, 2-D, batched with broadcast batch dims), the fused affine map
of a linear layer, and einsum."""

from __future__ import annotations

import string

from .. import backend
from ..autograd.op import Op
from ..dtypes import SAME
from ..errors import ShapeError


def check_matmul(x_shape, y_shape, op="matmul"):
    if len(x_shape) < 1 or len(y_shape) < 1:
        raise ShapeError(f"{op}: both operands need at least 1 dimension, "
                         f"got {tuple(x_shape)} and {tuple(y_shape)}")
    k1 = x_shape[-1]
    k2 = y_shape[-2] if len(y_shape) > 1 else y_shape[0]
    if k1 != k2:
        raise ShapeError(f"{op}: cannot multiply {tuple(x_shape)} by {tuple(y_shape)}: "
                         f"inner dimensions {k1} and {k2} differ")


class MatMul(Op):
    dtype_rule = SAME
    op_name = "matmul"
    operand_names = ("input", "other")

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        try:
            return x @ y
        except ValueError:
            check_matmul(x.shape, y.shape)
            raise ShapeError(f"matmul: batch dimensions of {x.shape} and {y.shape} "
                             "cannot be broadcast") from None

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        needs = ctx.needs_input_grad
        xd, yd = x.ndim, y.ndim
        if xd == 1 and yd == 1:
            return (grad * y if needs[0] else None), (grad * x if needs[1] else None)
        X = x[None, :] if xd == 1 else x
        Y = y[:, None] if yd == 1 else y
        G = grad
        if xd == 1:
            G = G[..., None, :]
        if yd == 1:
            G = G[..., None]
        gx = gy = None
        if needs[0]:
            gx = G @ Y.swapaxes(-1, -2)
            if xd == 1:
                gx = gx[..., 0, :]
        if needs[1]:
            gy = X.swapaxes(-1, -2) @ G
            if yd == 1:
                gy = gy[..., 0]
        return gx, gy


class Linear(Op):
    """y = x W^T + b with W of shape (out, in) (PyTorch's layout), fused into one node."""

    dtype_rule = SAME
    operand_names = ("input", "weight", "bias")

    @staticmethod
    def forward(ctx, x, w, b):
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(f"linear: input has {x.shape[-1]} features in its last dimension "
                             f"(shape {tuple(x.shape)}) but the weight {tuple(w.shape)} expects "
                             f"{w.shape[1]}")
        ctx.save_for_backward(x, w)
        if x.ndim > 2:  # one GEMM over all leading dims (a batched matmul would loop over them)
            out = x.reshape(-1, x.shape[-1]) @ w.T
        else:
            out = x @ w.T
        if b is not None:
            if out.ndim == 2 and b.ndim == 1 and out.flags.c_contiguous:
                backend.add_rows_(ctx.xp, out, b)
            else:
                out += b
        return out.reshape(*x.shape[:-1], w.shape[0]) if x.ndim > 2 else out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved
        needs = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        gx = None
        if needs[0]:
            gx = g2 @ w if grad.ndim > 2 else grad @ w
            if grad.ndim > 2:
                gx = gx.reshape(*grad.shape[:-1], w.shape[1])
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if needs[1] else None
        gb = backend.column_sums(ctx.xp, g2) if needs[2] else None
        return gx, gw, gb


class Bilinear(Op):
    """y_k = x1^T A_k x2 + b_k with A of shape (out, in1, in2) (PyTorch's layout)."""

    dtype_rule = SAME
    operand_names = ("input1", "input2", "weight", "bias")

    @staticmethod
    def forward(ctx, x1, x2, w, b):
        xp = ctx.xp
        ctx.save_for_backward(x1, x2, w)
        out = xp.einsum("...i,kij,...j->...k", x1, w, x2, optimize=True)
        if b is not None:
            out = out + b
        return out

    @staticmethod
    def backward(ctx, grad):
        x1, x2, w = ctx.saved
        xp = ctx.xp
        needs = ctx.needs_input_grad
        g1 = xp.einsum("...k,kij,...j->...i", grad, w, x2, optimize=True) if needs[0] else None
        g2 = xp.einsum("...k,kij,...i->...j", grad, w, x1, optimize=True) if needs[1] else None
        gw = gb = None
        if needs[2]:
            g2d = grad.reshape(-1, grad.shape[-1])
            gw = xp.einsum("bk,bi,bj->kij", g2d, x1.reshape(-1, x1.shape[-1]),
                           x2.reshape(-1, x2.shape[-1]), optimize=True)
        if needs[3]:
            gb = grad.reshape(-1, grad.shape[-1]).sum(axis=0)
        return g1, g2, gw, gb


def parse_einsum(equation: str, shapes) -> tuple[list[str], str]:
    """Explicit subscripts of an einsum equation: ellipses become letters, and a missing
    output becomes the letters that appear once, in alphabetical order."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ShapeError(f"einsum: equation {equation!r} names {len(ins)} operands, "
                         f"got {len(shapes)}")
    used = set(eq) - {".", ",", "-", ">"}
    spare = [c for c in string.ascii_letters if c not in used]
    ell_len = max((len(s) - (len(t) - 3) for t, s in zip(ins, shapes) if "..." in t), default=0)
    ell = "".join(spare[:ell_len])
    out_ins = []
    for t, s in zip(ins, shapes):
        if "..." in t:
            n = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_len - n:])
        if len(t) != len(s):
            raise ShapeError(f"einsum: subscripts {t!r} name {len(t)} dimensions but the operand "
                             f"has shape {tuple(s)}")
        out_ins.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        letters = "".join(out_ins)
        once = (c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        out = ell + "".join(sorted(once))
    return out_ins, out


class Einsum(Op):
    """Einstein summation; each operand's gradient is another einsum of the output's gradient
    with the other operands."""

    dtype_rule = SAME
    operand_names = ("equation",) + ("operand",) * 99

    @staticmethod
    def forward(ctx, equation, *xs):
        ins, out = parse_einsum(equation, [x.shape for x in xs])
        for t in ins:
            if len(set(t)) != len(t):
                raise ShapeError(f"einsum: repeated subscripts within one operand ({t!r}, "
                                 "a diagonal) are not supported")
        ctx.ins, ctx.out = ins, out
        ctx.save_for_backward(*xs)
        return ctx.xp.einsum(",".join(ins) + "->" + out, *xs, optimize=len(xs) > 2)

    @staticmethod
    def backward(ctx, grad):
        xs = ctx.saved
        xp = ctx.xp
        grads = [None]
        for i, (t, x) in enumerate(zip(ctx.ins, xs)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [(ctx.ins[j], xs[j]) for j in range(len(xs)) if j != i]
            avail = set(ctx.out).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in t if c in avail)
            eq = ",".join([ctx.out] + [s for s, _ in others]) + "->" + kept
            g = xp.einsum(eq, grad, *[o for _, o in others], optimize=len(others) > 1)
            if kept != t:  # letters summed only inside this operand: broadcast back
                g = g.reshape([x.shape[k] if c in avail else 1 for k, c in enumerate(t)])
                g = xp.broadcast_to(g, x.shape)
            grads.append(g)
        return tuple(grads)

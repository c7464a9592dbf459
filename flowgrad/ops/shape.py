"""Shape ops: views and rearrangements whose backward is the inverse rearrangement."""

from __future__ import annotations

from .. import backend
from ..autograd.op import Op


class Reshape(Op):
    """reshape/view/flatten/unflatten/squeeze/unsqueeze: same data, new shape."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return backend.reshape(ctx.xp, x, shape)

    @staticmethod
    def backward(ctx, grad):
        return backend.reshape(ctx.xp, grad, ctx.shape)


class Permute(Op):
    """permute/transpose/t/T/mT."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.transpose(inverse)


class Expand(Op):
    """expand/expand_as/broadcast_to: a broadcast view; the engine's sum_to is its backward."""

    @staticmethod
    def forward(ctx, x, shape):
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Repeat(Op):
    """Tile the tensor ``reps`` times along each dim (PyTorch's ``repeat``)."""

    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape, ctx.reps = x.shape, reps
        return ctx.xp.tile(x, reps)

    @staticmethod
    def backward(ctx, grad):
        shape = (1,) * (len(ctx.reps) - len(ctx.shape)) + tuple(ctx.shape)
        split = []
        for r, s in zip(ctx.reps, shape):
            split += [r, s]
        g = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g.reshape(ctx.shape)


class Cat(Op):
    """Concatenate along ``dim`` (fg.cat); each input gets its slice of the gradient."""

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        # PyTorch's legacy rule: 1-D empty inputs, shape (0,), beside inputs of another rank
        # are skipped (their gradient is empty)
        mixed = any(x.ndim != xs[0].ndim for x in xs)
        ctx.skip = [mixed and x.shape == (0,) for x in xs]
        kept = [x for x, s in zip(xs, ctx.skip) if not s]
        ctx.sizes = [x.shape[dim] for x in kept]
        return ctx.xp.concatenate(kept, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        parts = iter(xp.split(grad, _cumsum(ctx.sizes), axis=ctx.dim))
        return (None, *(xp.zeros((0,), dtype=grad.dtype) if s else next(parts)
                        for s in ctx.skip))


def _cumsum(sizes):
    out, total = [], 0
    for s in sizes[:-1]:
        total += s
        out.append(total)
    return out


class Stack(Op):
    """Stack along a new ``dim`` (fg.stack)."""

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        return ctx.xp.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        return (None, *(xp.take(grad, i, axis=ctx.dim) for i in range(grad.shape[ctx.dim])))


class Flip(Op):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.xp.flip(x, dims)

    @staticmethod
    def backward(ctx, grad):
        return ctx.xp.flip(grad, ctx.dims)


class Roll(Op):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return ctx.xp.roll(x, shifts, dims)

    @staticmethod
    def backward(ctx, grad):
        shifts = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return ctx.xp.roll(grad, shifts, ctx.dims)


class Triangle(Op):
    """tril/triu: keep the lower/upper triangle of the last two dims."""

    @staticmethod
    def forward(ctx, x, diagonal, upper):
        xp = ctx.xp
        ctx.diagonal, ctx.upper = diagonal, upper
        return xp.triu(x, diagonal) if upper else xp.tril(x, diagonal)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        return xp.triu(grad, ctx.diagonal) if ctx.upper else xp.tril(grad, ctx.diagonal)


class Pad(Op):
    """Constant padding; ``widths`` is NumPy's ((before, after), ...) per dim (negative crops)."""

    @staticmethod
    def forward(ctx, x, widths, value):
        xp = ctx.xp
        ctx.shape = x.shape
        crop = tuple(slice(max(-b, 0), s - max(-a, 0)) for (b, a), s in zip(widths, x.shape))
        x = x[crop]
        pos = tuple((max(b, 0), max(a, 0)) for b, a in widths)
        ctx.crop, ctx.pos = crop, pos
        return xp.pad(x, pos, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        inner = tuple(slice(b, grad.shape[i] - a) for i, (b, a) in enumerate(ctx.pos))
        g = grad[inner]
        if any(c != slice(0, s) for c, s in zip(ctx.crop, ctx.shape)):
            full = ctx.xp.zeros(ctx.shape, dtype=grad.dtype)
            full[ctx.crop] = g
            return full
        return g

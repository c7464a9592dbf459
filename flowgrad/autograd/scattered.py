"""The gradient of an array read in pieces, kept as its pieces until it is needed.

``q, k, v = x.unbind(0)`` or ``x.chunk(4, -1)`` reads disjoint slices of ``x``; each slice's
backward would make a zero array of ``x``'s shape holding its gradient in its slice, and the
engine would then add those arrays up (the multiple-paths chain rule). Kept as (index,
gradient) pairs instead, the sum is one array, each piece written into its slice once."""

from __future__ import annotations

from .. import backend
from ..backend import get_array_module


class ScatteredSum:
    """Σ_i zeros(shape) with ``grads[i]`` added at the basic index ``indices[i]``."""

    __slots__ = ("shape", "dtype", "indices", "grads", "layout")

    def __init__(self, shape: tuple, index, grad, layout: tuple | None = None) -> None:
        self.shape, self.dtype = tuple(shape), grad.dtype
        self.indices, self.grads = [index], [grad]
        self.layout = layout  # the input's axes from the slowest to the fastest in memory

    def add(self, other):
        """This sum plus another ScatteredSum (kept as pieces) or a dense array (the result is
        dense: a copy of it with the pieces added)."""
        if type(other) is ScatteredSum:
            self.indices += other.indices
            self.grads += other.grads
            return self
        return self.materialize(base=other)

    def materialize(self, base=None):
        """The dense array: zeros (or a copy of ``base``) with each piece added in its slice;
        pieces that tile the array (``unbind``'s, ``chunk``'s) are written into an empty one."""
        xp = get_array_module(self.grads[0])
        if base is None and _tile(self.shape, self.indices):
            out = self._allocate(xp.empty)
            for index, grad in zip(self.indices, self.grads):
                piece = out[index]
                if piece.shape == grad.shape:  # a large piece in blocks over the threads
                    backend.copy_into(xp, piece, grad)
                else:
                    out[index] = grad
            return out
        if base is None:
            out = self._allocate(xp.zeros)
        else:
            out = base.astype(self.dtype, copy=True) if base.dtype != self.dtype else base.copy()
        for index, grad in zip(self.indices, self.grads):
            out[index] += grad
        return out

    def _allocate(self, make):
        """A new array of the input's shape laid out in memory as the input was (a permuted
        view's gradient is then a permuted view too, and the permutation's backward gives a
        contiguous array, which a reshape takes without a copy)."""
        if self.layout is None:
            return make(self.shape, dtype=self.dtype)
        base = make(tuple(self.shape[a] for a in self.layout), dtype=self.dtype)
        inverse = [0] * len(self.layout)
        for position, axis in enumerate(self.layout):
            inverse[axis] = position
        return base.transpose(inverse)


def memory_layout(x) -> tuple | None:
    """The axes of ``x`` from the slowest to the fastest in memory when ``x`` is a
    permutation of a C-contiguous array that is not C-contiguous itself, else None."""
    if x.ndim < 2 or x.flags.c_contiguous:
        return None
    order = tuple(sorted(range(x.ndim), key=lambda a: -x.strides[a]))
    return order if x.transpose(order).flags.c_contiguous else None


def _tile(shape: tuple, indices: list) -> bool:
    """Whether the basic ``indices`` cut an array of ``shape`` into disjoint pieces that cover
    it: each selects an int or a unit-step slice along one and the same axis, all of every
    other axis, and their ranges along that axis meet end to end."""
    axis, spans = None, []
    for index in indices:
        index = index if isinstance(index, tuple) else (index,)
        if len(index) > len(shape):
            return False
        cut = [(k, i) for k, i in enumerate(index) if i != slice(None)]
        if len(cut) != 1 or (axis is not None and cut[0][0] != axis):
            return False
        axis, i = cut[0]
        n = shape[axis]
        if isinstance(i, slice):
            if i.step not in (None, 1):
                return False
            lo, hi, _ = i.indices(n)
        elif isinstance(i, int) and not isinstance(i, bool) and -n <= i < n:
            lo = i % n
            hi = lo + 1
        else:
            return False
        spans.append((lo, hi))
    spans.sort()
    end = 0
    for lo, hi in spans:
        if lo != end or hi <= lo:
            return False
        end = hi
    return axis is not None and end == shape[axis]

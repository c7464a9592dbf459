"""Weight gradients kept as sums of products until they are complete.

A weight shared by many steps of a recurrent loop (a decoder cell called once per output, a
block cell called once per time step) receives, at each step, dW_t = a_tᵀ b_t with a_t (n, M)
the step's pre-activation gradients and b_t (n, K) its inputs. With a few rows per step (one
example per update: n = 1) each dW_t is a dense (M, K) outer product: writing it and adding it
into the running sum costs far more than the arithmetic. The lecture's rule for shared
parameters ("Back-Prop in General Flow Graph": the gradient sums over every path) holds just as
well with the terms kept as factors: Σ_t a_tᵀ b_t = [a_1; …; a_T]ᵀ [b_1; …; b_T], one matrix
product, computed once when the engine has received the weight's last term.

``OuterSum`` is that deferred sum. Only the engine sees it: an op's backward may return one for
a weight (``outer_grad``), the engine adds it to what other paths sent, and hands the weight,
its hooks and ``.grad`` a dense array (``materialize``).
"""

from __future__ import annotations

from ..backend import get_array_module

__all__ = ["OuterSum", "outer_grad", "materialize"]


class OuterSum:
    """dense + Σ_i swapaxes(left_i) @ right_i over arrays left_i (..., n_i, M) and right_i
    (..., n_i, K) that share their leading dimensions; ``shape`` is (..., M, K)."""

    __slots__ = ("shape", "dtype", "lefts", "rights", "dense", "rows")

    # the factors kept may hold at most this many times the numbers of the product; beyond, they
    # are multiplied into the dense part (a long loop's memory stays bounded)
    MAX_FACTOR_RATIO = 8

    def __init__(self, left, right) -> None:
        self.shape = tuple(left.shape[:-2]) + (left.shape[-1], right.shape[-1])
        self.dtype = left.dtype
        self.lefts, self.rights, self.dense = [left], [right], None
        self.rows = left.shape[-2]

    def add(self, other) -> OuterSum:
        """Add another OuterSum or a dense array (of this shape) into this sum, in place."""
        if type(other) is OuterSum:
            self.lefts += other.lefts
            self.rights += other.rights
            self.rows += other.rows
            other = other.dense
        if other is not None:
            self.dense = other if self.dense is None else self.dense + other
        m, k = self.shape[-2:]
        if self.rows * (m + k) > self.MAX_FACTOR_RATIO * m * k:
            self.dense = self.materialize()
            self.lefts, self.rights, self.rows = [], [], 0
        return self

    def materialize(self):
        """The dense array: one matrix product over the stacked factors, plus the dense part."""
        if not self.lefts:
            return self.dense
        xp = get_array_module(self.lefts[0])
        if len(self.lefts) == 1:
            left, right = self.lefts[0], self.rights[0]
        else:
            left = xp.concatenate(self.lefts, axis=-2)
            right = xp.concatenate(self.rights, axis=-2)
        out = xp.matmul(xp.swapaxes(left, -1, -2), right)
        if self.dense is not None:
            out += self.dense
        return out


def outer_grad(left, right):
    """swapaxes(left) @ right for a weight's gradient: deferred (an ``OuterSum``) when the
    factors hold fewer numbers than the product, so that the engine sums many such terms in one
    product; the dense array otherwise."""
    n, m, k = left.shape[-2], left.shape[-1], right.shape[-1]
    if n * (m + k) < m * k:
        return OuterSum(left, right)
    xp = get_array_module(left)
    return xp.matmul(xp.swapaxes(left, -1, -2), right)


def materialize(g):
    """``g`` as an array (an OuterSum is computed; anything else is returned as is)."""
    return g.materialize() if type(g) is OuterSum else g

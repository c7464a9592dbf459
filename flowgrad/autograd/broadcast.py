"""Broadcasting, in one place: shape checks for the forward pass and ``sum_to`` for backward.

The engine calls ``sum_to`` on every edge of the flow graph, so an op's backward may return a
gradient of the broadcast shape and never reduces it itself.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def broadcast_shape(op: str, *shapes: tuple) -> tuple:
    """The common shape of ``shapes`` under NumPy/PyTorch broadcasting, or a ShapeError."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        pass
    n = max(len(s) for s in shapes)
    for d in range(1, n + 1):
        sizes = {s[-d] for s in shapes if len(s) >= d} - {1}
        if len(sizes) > 1:
            given = " and ".join(str(tuple(s)) for s in shapes)
            detail = " vs ".join(str(s[-d]) if len(s) >= d else "-" for s in shapes)
            raise ShapeError(f"{op}: shapes {given} cannot be broadcast "
                             f"(dimension {-d}: {detail})")
    raise ShapeError(f"{op}: shapes {shapes} cannot be broadcast")


def sum_to(grad, shape: tuple, op: str = "op"):
    """Sum ``grad`` down to ``shape``, undoing the broadcast that made it (inverse of expand)."""
    gshape = grad.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    if lead < 0 or any(s != 1 and s != g for s, g in zip(shape, gshape[lead:])):
        raise ShapeError(f"{op}.backward: gradient of shape {tuple(gshape)} does not reduce "
                         f"to the input's shape {tuple(shape)}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)

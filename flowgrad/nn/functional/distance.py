"""Similarities and distances between vectors: cosine similarity, pairwise p-norm distance."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...tensor import Tensor
from ._util import _shape


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim``; the inputs broadcast."""
    x1, x2 = _broadcast("cosine_similarity", x1, x2)
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    x1, x2 = _broadcast("pairwise_distance", x1, x2)
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def _broadcast(op: str, a: Tensor, b: Tensor) -> tuple:
    if a.shape == b.shape:
        return a, b
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{op}: shapes {_shape(a)} and {_shape(b)} cannot be broadcast") from None
    return a.expand(shape), b.expand(shape)

"""Small helpers shared by the functional modules."""

from __future__ import annotations

from ...tensor import Tensor, as_tensor


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _shape(x) -> tuple:
    return tuple(x.shape)

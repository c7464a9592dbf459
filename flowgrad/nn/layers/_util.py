"""Helpers shared by the layer files: factory arguments and the tuple-ising of sizes."""

from __future__ import annotations

from ... import creation
from ..parameter import Parameter


def empty_param(*shape, device=None, dtype=None) -> Parameter:
    """An uninitialised Parameter of ``shape`` (the layer's reset_parameters fills it)."""
    return Parameter(creation.empty(shape, dtype=dtype, device=device))


def ntuple(value, n: int) -> tuple:
    """(v,) * n for a number, tuple(value) for an iterable (PyTorch's _pair/_single)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


def shape_str(x) -> str:
    return str(tuple(x.shape))

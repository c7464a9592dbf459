"""Helpers shared by the layer files: factory arguments and the tuple-ising of sizes."""

from __future__ import annotations

import math

from ... import creation
from .. import init
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


def reset_fan_in_uniform(weight, bias) -> None:
    """PyTorch's default for Linear and Conv: weight kaiming_uniform_(a=sqrt(5)), that is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias from the same range."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)

"""dtypes: PyTorch's names bound to NumPy dtype objects, and PyTorch's promotion rules."""

from __future__ import annotations

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_state = {"default": float32}


def get_default_dtype() -> np.dtype:
    """The dtype of floating tensors made from Python numbers (float32, as in PyTorch)."""
    return _state["default"]


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype (float32 or float64)."""
    dtype = to_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype}")
    _state["default"] = dtype


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype argument (flowgrad/NumPy dtype, Python type or name) to an np.dtype."""
    if dtype is None or dtype is float:
        return _state["default"]
    if isinstance(dtype, np.dtype):
        return dtype
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    return np.dtype(dtype)


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def promote(a: np.dtype, b: np.dtype, a_dim: int, b_dim: int) -> np.dtype:
    """Result dtype of a binary op on two tensors, by PyTorch's rules.

    Integer with floating gives the floating dtype (int64 + float32 -> float32); within one
    category a 0-d tensor does not raise a higher-dimensional tensor's precision
    (float32 tensor * float64 0-d tensor -> float32).
    """
    if a == b:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa != fb:
        return a if fa else b
    ba, bb = a.kind == "b", b.kind == "b"
    if ba != bb:
        return b if ba else a
    if (a_dim == 0) != (b_dim == 0):
        return b if a_dim == 0 else a
    return np.promote_types(a, b)

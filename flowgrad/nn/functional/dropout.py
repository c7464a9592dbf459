"""Dropout (Srivastava et al. 2014) and its per-channel variants."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...errors import DTypeError, ShapeError
from ...tensor import Tensor
from ._util import _shape


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _drop(input: Tensor, p: float, mask_shape: tuple) -> Tensor:
    """input * mask / (1 - p), the mask drawn from flowgrad's stream (inverted dropout)."""
    xp = input.xp
    if p != 1.0 and input.dtype.kind != "f":  # PyTorch: the 1/(1-p) scale can't be cast back
        raise DTypeError(f"dropout: expected a floating-point input while training with 0 < p < 1,"
                         f" got {input.dtype} (the kept values are scaled by 1/(1-p)); convert it "
                         "with .float()")
    return input * Tensor._wrap(_dropout_mask(xp, p, mask_shape, input.dtype), None, False)


def _dropout_mask(xp, p: float, shape: tuple, dtype):
    """An array of ``shape``: 0 with probability p, else 1/(1-p), from flowgrad's stream."""
    if p == 1.0:
        return xp.zeros(shape, dtype=dtype)
    keep = backend.rng(xp).random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Zero each element with probability p and scale the rest by 1/(1-p) while training
    (Srivastava et al. 2014); the identity otherwise. Seeded by fg.manual_seed."""
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    return _drop(input, p, input.shape)


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, batched: bool) -> Tensor:
    _check_p(p, op)
    if not training or p == 0.0:
        return input
    shape = input.shape
    lead = 2 if batched else 1
    return _drop(input, p, tuple(shape[:lead]) + (1,) * (len(shape) - lead))


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Drop whole channels of (N, C, L) or (C, L) inputs (Tompson et al. 2015)."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape "
                         f"{_shape(input)}")
    return _feature_dropout("dropout1d", input, p, training, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Drop whole channels of (N, C, H, W) inputs (Tompson et al. 2015); a 3-D input is read as
    (N, C, L), as PyTorch does."""
    if input.ndim < 2:
        raise ShapeError(f"dropout2d: expected an (N, C, H, W) input, got shape {_shape(input)}")
    return _feature_dropout("dropout2d", input, p, training, True)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Drop whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""
    if input.ndim < 2:
        raise ShapeError(f"dropout3d: expected an (N, C, D, H, W) input, got shape "
                         f"{_shape(input)}")
    return _feature_dropout("dropout3d", input, p, training, input.ndim != 4)

"""Linear maps and lookups: linear, bilinear, embedding, one_hot."""

from __future__ import annotations

import numpy as np

from ...autograd.grad_mode import no_grad
from ...errors import DTypeError, ShapeError
from ...ops import indexing as I
from ...ops import linalg as L
from ...tensor import Tensor
from ._util import _shape, _tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W^T + b with W of shape (out_features, in_features).

    Args: input (*, in), weight (out, in), bias (out,). Returns (*, out). A 1-D weight (in,)
    gives x @ w of shape (*) (PyTorch's rule), with a bias only where PyTorch takes one: a
    0-d bias (or one of 2+ dims that fits the output) for an input that is not 2-D.
    """
    if input.ndim == 0 or weight.ndim == 0:
        raise ShapeError(f"linear: both arguments need at least 1 dimension, got input "
                         f"{_shape(input)} and weight {_shape(weight)}")
    if weight.ndim == 1:
        out = input.matmul(weight)
        if bias is None:
            return out
        if input.ndim == 2 or bias.ndim == 1 or \
                np.broadcast_shapes(_shape(out), _shape(bias)) != _shape(out):
            raise ShapeError(f"linear: a 1-D weight {_shape(weight)} takes no bias of shape "
                             f"{_shape(bias)} for an input of shape {_shape(input)} (PyTorch "
                             "refuses it too); use input @ weight + bias")
        return out + bias
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features) or 1-D "
                         f"(in_features,), got shape {_shape(weight)}")
    return L.Linear.apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k.

    Args: input1 (*, in1), input2 (*, in2), weight (out, in1, in2), bias (out,).
    Returns (*, out).
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] \
            or input2.shape[-1] != weight.shape[2]:
        raise ShapeError(f"bilinear: inputs {_shape(input1)} and {_shape(input2)} do not fit "
                         f"weight {_shape(weight)}: expected (out, {input1.shape[-1]}, "
                         f"{input2.shape[-1]})")
    return L.Bilinear.apply(input1, input2, weight, bias)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Rows of ``weight`` picked by integer indices (lecture: "Neural Language Model" — the
    shared word-feature matrix C).

    Args: input (*) integer indices; weight (num_embeddings, embedding_dim). Returns (*, dim).
    ``max_norm`` renormalises the looked-up rows of ``weight`` in place, as PyTorch does;
    ``sparse`` is accepted, and the gradient is dense.
    """
    input = _tensor(input)
    if input.dtype.kind not in "iu":
        raise DTypeError(f"embedding: input must be an integer tensor of indices, got "
                         f"{input.dtype}; convert with .long()")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {_shape(weight)}")
    num = weight.shape[0]
    idx = input._data
    if idx.size and (int(idx.max()) >= num or int(idx.min()) < 0):
        bad = int(idx.max()) if int(idx.max()) >= num else int(idx.min())
        raise IndexError(f"embedding: index {bad} is out of range for {num} embeddings "
                         f"(expected 0 to {num - 1})")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                             f"{num} embeddings")
        padding_idx = padding_idx + num if padding_idx < 0 else padding_idx
    if max_norm is not None:
        _embedding_renorm(weight, idx, max_norm, norm_type)
    out = I.Embedding.apply(idx, weight, padding_idx)
    if scale_grad_by_freq and out.requires_grad:
        xp = input.xp
        _, inverse, counts = xp.unique(idx.reshape(-1), return_inverse=True, return_counts=True)
        scale = (1.0 / counts[inverse.reshape(-1)]).reshape(idx.shape + (1,))
        scale = scale.astype(weight.dtype)
        out.register_hook(lambda g: g * Tensor._wrap(scale, None, False))
    return out


def _embedding_renorm(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    xp = weight.xp
    rows = xp.unique(idx.reshape(-1))
    w = weight._data[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight.dtype)
    with no_grad():
        weight[rows] = w * scale[:, None]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding: shape (*,) becomes (*, num_classes) (-1: max + 1)."""
    tensor = _tensor(tensor)
    if tensor.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: expected an integer tensor of class indices, got "
                         f"{tensor.dtype}; convert with .long()")
    xp = tensor.xp
    data = tensor._data
    if data.size and int(data.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(data.min())}")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    elif data.size and int(data.max()) >= num_classes:
        raise ValueError(f"one_hot: class value {int(data.max())} is out of range for "
                         f"num_classes={num_classes}")
    out = (data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out, None, False)

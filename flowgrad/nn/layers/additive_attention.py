"""Attention of a single query over a sequence, for recurrent encoder-decoders.

``AdditiveAttention``: Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning
to Align and Translate" (ICLR 2015; arXiv 2014), eq. 6 and appendix A.1.2:
e_j = v_a^T tanh(W_a s + U_a h_j), alpha = softmax(e), context = sum_j alpha_j h_j.
``DotProductAttention``: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural
Machine Translation" (EMNLP 2015), section 3.1: score "dot" = s^T h_j, "general" = s^T W_a h_j.

Both take a query (B, Dq), keys (B, S, Dk), values (B, S, Dv) (the keys when omitted) and a
mask (B, S), and return (context (B, Dv), weights (B, S)). ``mask`` is True at the positions to
keep; ``key_padding_mask`` (PyTorch's convention) is True at the positions to ignore. A row
with nothing to attend to gets zero weights and a zero context.
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...tensor import Tensor
from ..module import Module
from .linear import Linear

__all__ = ["AdditiveAttention", "DotProductAttention"]


def _keep_mask(mask, key_padding_mask, shape: tuple, name: str):
    """The (B, S) bool NumPy/CuPy array of positions to keep, or None for all."""
    if mask is not None and key_padding_mask is not None:
        raise ValueError(f"{name}: pass mask (True = keep) or key_padding_mask (True = ignore), "
                         f"not both")
    given = mask if mask is not None else key_padding_mask
    if given is None:
        return None
    arr = given._data if isinstance(given, Tensor) else np.asarray(given)
    if tuple(arr.shape) != shape:
        raise ShapeError(f"{name}: mask of shape {tuple(arr.shape)} does not match the keys' "
                         f"(batch, source length) = {shape}")
    if arr.dtype != bool:
        raise TypeError(f"{name}: the mask must be bool, got {arr.dtype}")
    return arr if mask is not None else ~arr


def _attend(scores: Tensor, values: Tensor, keep) -> tuple[Tensor, Tensor]:
    """Masked softmax over the last dimension of scores (B, S), then the weighted values."""
    dead = None
    if keep is not None:
        xp = scores.xp
        keep = xp.asarray(keep)
        dead = ~keep.any(axis=-1, keepdims=True)
        if dead.any():
            keep = keep | dead
        else:
            dead = None
        scores = scores.masked_fill(Tensor._wrap(~keep, None, False), float("-inf"))
    weights = scores.softmax(-1)
    if dead is not None:
        weights = weights.masked_fill(Tensor._wrap(dead, None, False), 0.0)
    context = (weights.unsqueeze(1) @ values).squeeze(1)
    return context, weights


def _check(name: str, query: Tensor, keys: Tensor, values: Tensor, dq: int, dk: int) -> None:
    if query.ndim != 2 or query.shape[1] != dq:
        raise ShapeError(f"{name}: expected a query of shape (batch, {dq}), got "
                         f"{tuple(query.shape)}")
    if keys.ndim != 3 or keys.shape[0] != query.shape[0] or keys.shape[2] != dk:
        raise ShapeError(f"{name}: expected keys of shape ({query.shape[0]}, source length, "
                         f"{dk}), got {tuple(keys.shape)}")
    if values.ndim != 3 or tuple(values.shape[:2]) != tuple(keys.shape[:2]):
        raise ShapeError(f"{name}: expected values of shape {tuple(keys.shape[:2])} + (Dv,), "
                         f"got {tuple(values.shape)}")


class AdditiveAttention(Module):
    """Bahdanau attention: score_j = v^T tanh(W q + U k_j) (Bahdanau et al. 2014, eq. 6).

    Parameters: ``query_proj`` (W_a, hidden x query), ``key_proj`` (U_a, hidden x key, with a
    bias when ``bias``; the paper has none), ``v`` (v_a, 1 x hidden).
    ``project_keys(keys)`` computes U k_j once for a whole output sequence (the paper's note
    that U_a h_j "can be pre-computed"); pass it back as ``projected_keys``.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int, bias: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.query_dim, self.key_dim, self.hidden_dim = query_dim, key_dim, hidden_dim
        self.query_proj = Linear(query_dim, hidden_dim, bias=False, device=device, dtype=dtype)
        self.key_proj = Linear(key_dim, hidden_dim, bias=bias, device=device, dtype=dtype)
        self.v = Linear(hidden_dim, 1, bias=False, device=device, dtype=dtype)

    def project_keys(self, keys: Tensor) -> Tensor:
        """U k_j for every position: (B, S, Dk) -> (B, S, hidden)."""
        return self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask=None,
                key_padding_mask=None, projected_keys: Tensor | None = None):
        values = keys if values is None else values
        _check("AdditiveAttention", query, keys, values, self.query_dim, self.key_dim)
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        if tuple(pk.shape) != tuple(keys.shape[:2]) + (self.hidden_dim,):
            raise ShapeError(f"AdditiveAttention: projected_keys of shape {tuple(pk.shape)}, "
                             f"expected {tuple(keys.shape[:2]) + (self.hidden_dim,)}")
        keep = _keep_mask(mask, key_padding_mask, tuple(keys.shape[:2]), "AdditiveAttention")
        scores = self.v((pk + self.query_proj(query).unsqueeze(1)).tanh()).squeeze(-1)
        return _attend(scores, values, keep)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, hidden_dim={self.hidden_dim}"


class DotProductAttention(Module):
    """Luong attention (Luong et al. 2015, section 3.1): score_j = q^T k_j (``"dot"``, which
    needs query_dim == key_dim) or q^T W_a k_j (``"general"``, ``weight`` of shape
    (query_dim, key_dim), no bias)."""

    def __init__(self, query_dim: int, key_dim: int | None = None, score: str = "dot",
                 device=None, dtype=None) -> None:
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        if score not in ("dot", "general"):
            raise ValueError(f"DotProductAttention: score must be 'dot' or 'general', got "
                             f"{score!r}")
        if score == "dot" and key_dim != query_dim:
            raise ShapeError(f"DotProductAttention: the 'dot' score needs query_dim == key_dim, "
                             f"got {query_dim} and {key_dim}; use score='general'")
        self.query_dim, self.key_dim, self.score = query_dim, key_dim, score
        self.proj = (Linear(key_dim, query_dim, bias=False, device=device, dtype=dtype)
                     if score == "general" else None)

    def project_keys(self, keys: Tensor) -> Tensor:
        """W_a k_j for every position ("general"), the keys themselves ("dot")."""
        return keys if self.proj is None else self.proj(keys)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask=None,
                key_padding_mask=None, projected_keys: Tensor | None = None):
        values = keys if values is None else values
        _check("DotProductAttention", query, keys, values, self.query_dim, self.key_dim)
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        keep = _keep_mask(mask, key_padding_mask, tuple(keys.shape[:2]), "DotProductAttention")
        scores = (pk @ query.unsqueeze(-1)).squeeze(-1)
        return _attend(scores, values, keep)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, score={self.score!r}"

"""Scaled dot-product attention (Vaswani et al. 2017) with PyTorch's arguments."""

from __future__ import annotations

import math

from ...errors import ShapeError
from ...tensor import Tensor, where
from ._util import _shape, _tensor
from .dropout import _check_p, dropout


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V in batched matmuls (Vaswani et al. 2017; lecture:
    "Multi-Head Attention").

    Args: query (..., L, E), key (..., S, E), value (..., S, Ev); attn_mask broadcasting to
    (..., L, S): bool = True where attending is allowed, float = added to the scores.
    Rows with nothing to attend to give zeros, as in PyTorch. Returns (..., L, Ev).
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention: query, key and value need at least "
                         f"2 dimensions, got {_shape(query)}, {_shape(key)}, {_shape(value)}")
    lq, e = query.shape[-2:]
    s = key.shape[-2]
    if key.shape[-1] != e or value.shape[-2] != s:
        raise ShapeError(f"scaled_dot_product_attention: query {_shape(query)}, key "
                         f"{_shape(key)} and value {_shape(value)} do not fit: expected key "
                         f"(..., S, {e}) and value (..., S, Ev) with the same S")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal=True, "
                         "not both")
    _check_p(dropout_p, "scaled_dot_product_attention")
    if enable_gqa and key.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ShapeError(f"scaled_dot_product_attention: {hq} query heads are not a "
                             f"multiple of {hk} key/value heads")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    xp = query.xp
    scores = (query @ key.transpose(-2, -1)) * (1.0 / math.sqrt(e) if scale is None else scale)
    keep = dead = None
    if is_causal:
        keep = xp.tril(xp.ones((lq, s), dtype=bool))
    elif attn_mask is not None:
        attn_mask = _tensor(attn_mask)
        if attn_mask.dtype.kind == "b":
            keep = attn_mask._data
        else:
            bias = attn_mask.to(scores.dtype)
            dead = xp.isneginf(bias._data).all(axis=-1, keepdims=True)
            if dead.any():
                bias = where(Tensor._wrap(dead, None, False), 0.0, bias)
            else:
                dead = None
            scores = scores + bias  # (..., L, S)
    if keep is not None:
        dead = ~keep.any(axis=-1, keepdims=True)  # rows that may attend nowhere
        if dead.any():
            keep = keep | dead
        else:
            dead = None
        scores = scores.masked_fill(Tensor._wrap(~keep, None, False), float("-inf"))
    attn = scores.softmax(-1)  # (..., L, S)
    if dead is not None:
        attn = attn.masked_fill(Tensor._wrap(dead, None, False), 0.0)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True)
    return attn @ value


def _repeat_heads(x: Tensor, g: int) -> Tensor:
    """(..., H, S, E) -> (..., H*g, S, E), each head repeated g times in place (GQA)."""
    shape = _shape(x)
    lead, (h, s, e) = shape[:-3], shape[-3:]
    return x.unsqueeze(-3).expand(lead + (h, g, s, e)).reshape(lead + (h * g, s, e))

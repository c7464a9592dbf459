"""Scaled dot-product attention and multi-head attention (Vaswani et al. 2017) with
PyTorch's arguments."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...errors import DTypeError, ShapeError
from ...ops import attention as A
from ...tensor import Tensor, where
from ...tensor_functions import cat
from ._util import _shape, _tensor
from .dropout import _check_p, _dropout_mask, dropout
from .linear import linear
from .padding import pad


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
    factor = 1.0 / math.sqrt(e) if scale is None else scale
    keep = dead = bias = None
    if is_causal:
        keep = xp.tril(xp.ones((lq, s), dtype=bool))
    elif attn_mask is not None:
        attn_mask = _tensor(attn_mask)
        if attn_mask.dtype.kind == "b":
            keep = attn_mask._data
        else:
            bias = attn_mask.to(query.dtype) if query.dtype.kind == "f" else attn_mask
            dead = xp.isneginf(bias._data).all(axis=-1, keepdims=True)
            if dead.any():
                bias = where(Tensor._wrap(dead, None, False), 0.0, bias)
            else:
                dead = None
    if keep is not None:
        dead = ~keep.any(axis=-1, keepdims=True)  # rows that may attend nowhere
        if dead.any():
            keep = keep | dead
        else:
            dead = None
    shape = _scores_shape(query, key, lq, s)
    if _fusable(query, key, value, shape, keep, bias, dead):
        drop = _dropout_mask(xp, dropout_p, shape, query.dtype) if dropout_p > 0.0 else None
        return A.Attention.apply(query, key, value, factor, keep,
                                 None if bias is None else bias._data, dead, drop)
    scores = (query @ key.transpose(-2, -1)) * factor
    if bias is not None:
        scores = scores + bias  # (..., L, S)
    if keep is not None:
        scores = scores.masked_fill(Tensor._wrap(~keep, None, False), float("-inf"))
    attn = scores.softmax(-1)  # (..., L, S)
    if dead is not None:
        attn = attn.masked_fill(Tensor._wrap(dead, None, False), 0.0)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True)
    return attn @ value


def _scores_shape(query: Tensor, key: Tensor, lq: int, s: int) -> tuple | None:
    """The shape of Q Kᵀ, or None where the batch dimensions do not broadcast."""
    try:
        return np.broadcast_shapes(_shape(query)[:-2], _shape(key)[:-2]) + (lq, s)
    except ValueError:
        return None


def _fusable(query, key, value, shape, keep, bias, dead) -> bool:
    """Whether the one-node attention (flowgrad.ops.attention) computes this call: q, k and v
    of one floating dtype, 2 dimensions or more, masks that do not enlarge the scores' shape,
    and a float mask that needs no gradient (the recorded composition gives it one)."""
    if shape is None or query.dtype.kind != "f" or query.ndim < 2 or \
            key.dtype != query.dtype or value.dtype != query.dtype or value.ndim < 2:
        return False
    if bias is not None and (bias.requires_grad or bias.dtype != query.dtype):
        return False
    try:
        return all(np.broadcast_shapes(shape, m.shape) == shape
                   for m in (keep, bias, dead) if m is not None)
    except ValueError:
        return False


def _repeat_heads(x: Tensor, g: int) -> Tensor:
    """(..., H, S, E) -> (..., H*g, S, E), each head repeated g times in place (GQA)."""
    shape = _shape(x)
    lead, (h, s, e) = shape[:-3], shape[-3:]
    return x.unsqueeze(-3).expand(lead + (h, g, s, e)).reshape(lead + (h * g, s, e))


class MultiheadAttentionShapeError(ShapeError, AssertionError):
    """Bad sizes given to multi-head attention: a ShapeError, and the AssertionError PyTorch
    raises for most of these checks, so code written against either catches it."""


class MultiheadAttentionArgumentError(ValueError, AssertionError):
    """Arguments that do not go together (bias_k without bias_v, a missing projection weight):
    a ValueError, and the AssertionError PyTorch raises."""


class MultiheadAttentionDTypeError(DTypeError, AssertionError):
    """A mask of a dtype other than bool or floating point (PyTorch: an AssertionError)."""


def canonical_mask(mask, mask_name: str, other, other_name: str, target_dtype,
                   check_other: bool = True) -> Tensor | None:
    """A bool mask (True = do not attend) as a float mask of -inf/0 in ``target_dtype``; a float
    mask unchanged (PyTorch's ``_canonical_mask``, its warning on mixed mask dtypes included)."""
    if mask is None:
        return None
    mask = _tensor(mask)
    kind = mask.dtype.kind
    if kind not in "bf":
        raise MultiheadAttentionDTypeError(f"only bool and floating types of {mask_name} are "
                                           f"supported, got {mask.dtype}")
    if check_other and other is not None and _tensor(other).dtype != mask.dtype:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. "
                      "Use same type for both instead.", stacklevel=3)
    if kind == "b":
        xp = mask.xp
        data = xp.zeros(mask.shape, dtype=target_dtype)
        data[mask._data] = -xp.inf
        return Tensor._wrap(data, None, False)
    return mask


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor,
                                 embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None,
                                 bias_k: Tensor | None, bias_v: Tensor | None,
                                 add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                                 training: bool = True, key_padding_mask: Tensor | None = None,
                                 need_weights: bool = True, attn_mask: Tensor | None = None,
                                 use_separate_proj_weight: bool = False,
                                 q_proj_weight: Tensor | None = None,
                                 k_proj_weight: Tensor | None = None,
                                 v_proj_weight: Tensor | None = None,
                                 static_k: Tensor | None = None, static_v: Tensor | None = None,
                                 average_attn_weights: bool = True,
                                 is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention (Vaswani et al. 2017, §3.2.2; lecture: "Multi-Head Attention")
    with PyTorch's arguments and rules; inputs are sequence-first: query (L, N, E), key
    (S, N, Ek), value (S, N, Ev), or unbatched (L, E), (S, Ek), (S, Ev).

    One GEMM projects the queries, keys and values (two for cross-attention), one reshape
    splits the heads into (N, H, L, E/H), batched matmuls and one softmax attend, and one GEMM
    projects the output. Masks: ``attn_mask`` (L, S) or (N*H, L, S), ``key_padding_mask``
    (N, S); bool True = do not attend (the opposite of scaled_dot_product_attention's bool
    mask, as in PyTorch), float = added to the scores; both are merged by adding.
    ``is_causal`` is a hint that ``attn_mask`` is causal. Returns (L, N, E) and, with
    ``need_weights``, the attention weights (N, L, S) averaged over heads or (N, H, L, S).

    Rows with every key masked give NaN when ``need_weights`` (the softmax of -inf alone, as
    in PyTorch) and zeros before the output projection otherwise (as PyTorch's
    scaled_dot_product_attention does).
    """
    return _multi_head_attention(
        query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k,
        bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training,
        key_padding_mask, need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
        k_proj_weight, v_proj_weight, static_k, static_v, average_attn_weights, is_causal,
        batch_first=False)


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """PyTorch's ``_mha_shape_check``: True for batched (3-D) inputs, False for unbatched."""
    nq, nk, nv = query.ndim, key.ndim, value.ndim
    if nq not in (2, 3):
        raise MultiheadAttentionShapeError(
            f"multi_head_attention: query should be unbatched 2D or batched 3D tensor but "
            f"received {nq}-D query tensor of shape {_shape(query)}")
    kind = "batched (3-D)" if nq == 3 else "unbatched (2-D)"
    if nk != nq or nv != nq:
        raise MultiheadAttentionShapeError(
            f"multi_head_attention: for {kind} `query`, expected `key` and `value` to be {nq}-D "
            f"but found {nk}-D and {nv}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != nq - 1:
        raise MultiheadAttentionShapeError(
            f"multi_head_attention: for {kind} `query`, expected `key_padding_mask` to be `None` "
            f"or {nq - 1}-D but found {key_padding_mask.ndim}-D tensor of shape "
            f"{_shape(key_padding_mask)} instead")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise MultiheadAttentionShapeError(
                f"multi_head_attention: for {kind} `query`, expected `attn_mask` to be `None`, "
                f"2-D or 3-D but found {attn_mask.ndim}-D tensor of shape {_shape(attn_mask)}")
        expected = (num_heads, query.shape[0], key.shape[0])
        if nq == 2 and attn_mask.ndim == 3 and _shape(attn_mask) != expected:
            raise MultiheadAttentionShapeError(
                f"multi_head_attention: expected `attn_mask` shape to be {expected} "
                f"(num_heads, L, S) but got {_shape(attn_mask)}")
    return nq == 3


def _to_heads(x: Tensor, parts: int, num_heads: int, batch_first: bool) -> Tensor:
    """(L, N, parts*E) or (N, L, parts*E) -> (parts, N, H, L, E/H): one reshape, one view."""
    a, b, width = _shape(x)
    x = x.reshape(a, b, parts, num_heads, width // (parts * num_heads))
    return x.permute(2, 0, 3, 1, 4) if batch_first else x.permute(2, 1, 3, 0, 4)


def _multi_head_attention(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                          in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                          out_proj_weight, out_proj_bias, training, key_padding_mask,
                          need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
                          k_proj_weight, v_proj_weight, static_k, static_v,
                          average_attn_weights, is_causal, batch_first):
    """multi_head_attention_forward with the batch in dim 0 when ``batch_first`` (the layout of
    nn.MultiheadAttention(batch_first=True), handled without transposing the inputs)."""
    key_padding_mask = None if key_padding_mask is None else _tensor(key_padding_mask)
    attn_mask = None if attn_mask is None else _tensor(attn_mask)
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        batch_first = False
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    n_dim, l_dim = (0, 1) if batch_first else (1, 0)
    tgt_len, bsz, embed_dim = query.shape[l_dim], query.shape[n_dim], query.shape[2]
    src_len = key.shape[l_dim]
    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", attn_mask,
                                      "attn_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("multi_head_attention: need attn_mask if specifying the is_causal "
                           "hint. You may use the Transformer module method "
                           "`generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint alone: scaled_dot_product_attention(is_causal=True)
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, False)
        if key_padding_mask is not None:
            is_causal = False  # the merged mask is no longer causal
    if embed_dim != embed_dim_to_check:
        raise MultiheadAttentionShapeError(
            f"multi_head_attention: was expecting embedding dimension of {embed_dim_to_check}, "
            f"but got {embed_dim} (query of shape {_shape(query)})")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise MultiheadAttentionShapeError(f"multi_head_attention: embed_dim {embed_dim} not "
                                           f"divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if _shape(key)[:2] != _shape(value)[:2]:
            raise MultiheadAttentionShapeError(
                f"multi_head_attention: key's sequence and batch dims {_shape(key)[:2]} do not "
                f"match value's {_shape(value)[:2]}")
    elif _shape(key) != _shape(value):
        raise MultiheadAttentionShapeError(f"multi_head_attention: key shape {_shape(key)} "
                                           f"does not match value shape {_shape(value)}")
    q, k, v = _in_projection(query, key, value, num_heads, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight, batch_first)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if _shape(attn_mask) != (tgt_len, src_len):
                raise ShapeError(f"multi_head_attention: the shape of the 2D attn_mask is "
                                 f"{_shape(attn_mask)}, but should be {(tgt_len, src_len)} "
                                 "(L, S).")
            attn_mask = attn_mask.reshape(1, 1, tgt_len, src_len)
        else:
            expected = (bsz * num_heads, tgt_len, src_len)
            if _shape(attn_mask) != expected:
                raise ShapeError(f"multi_head_attention: the shape of the 3D attn_mask is "
                                 f"{_shape(attn_mask)}, but should be {expected} (N*H, L, S).")
            attn_mask = attn_mask.reshape(bsz, num_heads, tgt_len, src_len)
    extra = 0  # key/value positions appended by add_bias_kv and add_zero_attn
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise MultiheadAttentionArgumentError(
                "multi_head_attention: bias cannot be added to static key or value.")
        k = cat([k, bias_k.reshape(1, num_heads, 1, head_dim).expand(bsz, -1, -1, -1)], 2)
        v = cat([v, bias_v.reshape(1, num_heads, 1, head_dim).expand(bsz, -1, -1, -1)], 2)
        extra += 1
    elif bias_k is not None or bias_v is not None:
        raise MultiheadAttentionArgumentError(
            f"multi_head_attention: bias_k is {'set' if bias_k is not None else 'None'} but "
            f"bias_v is {'set' if bias_v is not None else 'None'}; give both or neither")
    k = _static(static_k, "static_k", k, bsz, num_heads, head_dim)
    v = _static(static_v, "static_v", v, bsz, num_heads, head_dim)
    if add_zero_attn:
        zeros = Tensor._wrap(q.xp.zeros((bsz, num_heads, 1, head_dim), dtype=q.dtype), None,
                             False)
        k, v = cat([k, zeros], 2), cat([v, zeros], 2)
        extra += 1
    if extra:
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, extra))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask,
                                                                     (0, extra))
    src_len = k.shape[2]
    if key_padding_mask is not None:
        if _shape(key_padding_mask) != (bsz, src_len):
            raise MultiheadAttentionShapeError(
                f"multi_head_attention: expected key_padding_mask of shape {(bsz, src_len)} "
                f"(N, S), but got {_shape(key_padding_mask)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    weights = None
    if need_weights:
        scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)
        if attn_mask is not None:
            scores = scores + attn_mask
        with np.errstate(invalid="ignore"):  # a fully masked row is NaN, silently as PyTorch
            weights = scores.softmax(-1)  # (N, H, L, S)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p)  # returned after dropout, as in PyTorch
        attended = weights @ v
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
    else:
        attended = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    # (N, H, L, Dh) -> (L, N, E) or (N, L, E): one copy, then one GEMM
    attended = attended.permute(0, 2, 1, 3) if batch_first else attended.permute(2, 0, 1, 3)
    out = linear(attended.reshape(*_shape(attended)[:2], embed_dim), out_proj_weight,
                 out_proj_bias)
    return (out if batched else out.squeeze(1)), weights


def _in_projection(query, key, value, num_heads, w, b, separate, w_q, w_k, w_v, batch_first):
    """q, k, v of shape (N, H, L or S, E/H): one GEMM for self-attention, two when key is value,
    three otherwise (PyTorch's ``_in_projection_packed`` / ``_in_projection``)."""
    embed_dim = query.shape[-1]
    if separate:
        for name, weight in (("q_proj_weight", w_q), ("k_proj_weight", w_k),
                             ("v_proj_weight", w_v)):
            if weight is None:
                raise MultiheadAttentionArgumentError(
                    f"multi_head_attention: use_separate_proj_weight is True but {name} is None")
        b_q, b_k, b_v = (None,) * 3 if b is None else b.chunk(3)
        expect = ((w_q, (embed_dim, embed_dim), "query"),
                  (w_k, (embed_dim, key.shape[-1]), "key"),
                  (w_v, (embed_dim, value.shape[-1]), "value"))
        for weight, shape, name in expect:
            if _shape(weight) != shape:
                raise MultiheadAttentionShapeError(
                    f"multi_head_attention: expecting {name} weights shape of {shape}, but got "
                    f"{_shape(weight)}")
        return (_to_heads(linear(query, w_q, b_q), 1, num_heads, batch_first)[0],
                _to_heads(linear(key, w_k, b_k), 1, num_heads, batch_first)[0],
                _to_heads(linear(value, w_v, b_v), 1, num_heads, batch_first)[0])
    if w is None:
        raise MultiheadAttentionArgumentError(
            "multi_head_attention: use_separate_proj_weight is False but in_proj_weight is None")
    if query is key and key is value:  # self-attention: one GEMM
        return _to_heads(linear(query, w, b), 3, num_heads, batch_first).unbind(0)
    if key is value:  # encoder-decoder attention: two GEMMs
        w_q, w_kv = w.split([embed_dim, 2 * embed_dim])
        b_q, b_kv = (None, None) if b is None else b.split([embed_dim, 2 * embed_dim])
        k, v = _to_heads(linear(key, w_kv, b_kv), 2, num_heads, batch_first).unbind(0)
        return _to_heads(linear(query, w_q, b_q), 1, num_heads, batch_first)[0], k, v
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None,) * 3 if b is None else b.chunk(3)
    return tuple(_to_heads(linear(x, wx, bx), 1, num_heads, batch_first)[0]
                 for x, wx, bx in ((query, w_q, b_q), (key, w_k, b_k), (value, w_v, b_v)))


def _static(static, name, x, bsz, num_heads, head_dim):
    """A precomputed key or value (N*H, S, E/H) in place of the projected one."""
    if static is None:
        return x
    if static.shape[0] != bsz * num_heads or static.shape[2] != head_dim:
        raise MultiheadAttentionShapeError(
            f"multi_head_attention: expecting {name} of shape ({bsz * num_heads}, S, {head_dim}) "
            f"(N*H, S, E/H), but got {_shape(static)}")
    return static.reshape(bsz, num_heads, static.shape[1], head_dim)

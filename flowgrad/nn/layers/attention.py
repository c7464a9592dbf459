"""Multi-head attention with PyTorch's constructor arguments, parameter names, layouts, default
initialisation and forward signature (Vaswani et al. 2017, §3.2.2; lecture: "Multi-Head
Attention")."""

from __future__ import annotations

from ..functional.attention import MultiheadAttentionShapeError, _multi_head_attention
from ..init import constant_, xavier_normal_, xavier_uniform_
from ..module import Module
from ._util import empty_param
from .linear import Linear

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O, head_i = Attention(Q W_i^Q,
    K W_i^K, V W_i^V), all heads computed at once by batched matmuls.

    Args:
        embed_dim, num_heads: model width E and number of heads H (E divisible by H).
        dropout: dropout on the attention weights while training.
        bias: biases on the input and output projections.
        add_bias_kv: learn one more key and value (``bias_k``, ``bias_v``, (1, 1, E)).
        add_zero_attn: append a key and value of zeros.
        kdim, vdim: key and value widths (default E); when they differ from E the projections
            are ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight``
            (E, vdim) instead of the packed ``in_proj_weight`` (3E, E).
        batch_first: inputs and output are (N, L, E) instead of (L, N, E).
    Projections start xavier_uniform_, biases zero, bias_k/bias_v xavier_normal_ (PyTorch's
    defaults); ``out_proj`` is a Linear(E, E).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights or None), with masks and
    shapes as ``F.multi_head_attention_forward``; unbatched (L, E) inputs too.

    Rows whose every key is masked give NaN with ``need_weights=True`` and the output
    projection's bias with ``need_weights=False``, as PyTorch's general path does. PyTorch's
    inference fast path (eval mode, no grad, batch_first self-attention) gives NaN in both
    cases; flowgrad has the one path and so does not.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than "
                             f"0, got embed_dim={embed_dim} and num_heads={num_heads} instead")
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise MultiheadAttentionShapeError(
                f"MultiheadAttention: embed_dim must be divisible by num_heads, got "
                f"embed_dim={embed_dim} and num_heads={num_heads}")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty_param(3 * embed_dim, embed_dim, **factory)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = empty_param(embed_dim, embed_dim, **factory)
            self.k_proj_weight = empty_param(embed_dim, self.kdim, **factory)
            self.v_proj_weight = empty_param(embed_dim, self.vdim, **factory)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = empty_param(3 * embed_dim, **factory)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = empty_param(1, 1, embed_dim, **factory)
            self.bias_v = empty_param(1, 1, embed_dim, **factory)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            xavier_uniform_(self.in_proj_weight)
        else:
            xavier_uniform_(self.q_proj_weight)
            xavier_uniform_(self.k_proj_weight)
            xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            constant_(self.in_proj_bias, 0.0)
            constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        separate = not self._qkv_same_embed_dim
        return _multi_head_attention(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, self.training, key_padding_mask,
            need_weights, attn_mask, separate, self.q_proj_weight, self.k_proj_weight,
            self.v_proj_weight, None, None, average_attn_weights, is_causal,
            batch_first=self.batch_first)

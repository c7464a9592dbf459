"""The attentions of Recurrent Independent Mechanisms (Goyal et al. 2019, arXiv 1909.10893,
sections 2.1-2.3), as in the official code (anirudh9119/RIMs, ``event_based/blocks_core.py``,
``attention.py``, ``sparse_grad_attn.py``, ``GroupLinearLayer.py``):

- ``topk_mask``: the hard top-k selection of active modules.
- ``InputAttention``: each module's query (a per-module projection of its state) attends over two
  slots, [null, input]. The null slot is a vector of zeros, and the official key and value
  projections have no bias, so the null key and value are zero: the null score is 0 and the
  input's score is s = q·k(x)/sqrt(d_k), hence the attention [σ(−s), σ(s)]. The modules with the
  LEAST attention on the null slot become active.
- ``CommunicationAttention``: multi-head attention among the modules (per-module query, key and
  value projections), output ``gate * tanh(W o + b)`` added to the states as a residual.
- ``blocked_grad``: identity forward whose backward multiplies the gradient by the mask
  (the official ``blocked_grad``), which is how inactive modules are kept out of the gradient
  through the communication step.

Initialisation differs from the official code (N(0, 0.01²) for the per-module projections): every
projection here starts U(−1/sqrt(fan_in), 1/sqrt(fan_in)) like ``nn.Linear``, so that the top-k
selection depends on the input from the first step.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, creation
from ..autograd.op import Op
from ..errors import ShapeError
from ..nn import functional as F
from ..nn import init
from ..nn.layers.linear import Linear
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor, where
from ..tensor_functions import stack

__all__ = ["topk_mask", "blocked_grad", "group_linear", "InputAttention",
           "CommunicationAttention"]


def topk_mask(scores, k: int) -> Tensor:
    """Bool (B, K) mask, exactly k True per row, at the k largest scores (ties broken toward
    the lower index). ``scores``: a Tensor or array (B, K); no gradient flows through it."""
    data = scores._data if isinstance(scores, Tensor) else scores
    if data.ndim != 2:
        raise ShapeError(f"topk_mask: scores of shape {tuple(data.shape)}, expected (batch, "
                         "num_units)")
    num = data.shape[1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k <= num:
        raise ValueError(f"topk_mask: k={k!r} must be an int in [0, {num}] (num_units={num})")
    xp = backend.get_array_module(data)
    # a stable sort of the negated scores puts equal scores in index order
    order = xp.argsort(-data, axis=1, kind="stable")[:, :k]
    mask = xp.zeros(data.shape, dtype=bool)
    mask[xp.arange(data.shape[0])[:, None], order] = True
    return Tensor._wrap(mask, None, False)


class BlockedGrad(Op):
    """forward(x, mask) = x; backward multiplies the incoming gradient by mask (broadcast)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask.astype(grad.dtype), None


def blocked_grad(x: Tensor, mask) -> Tensor:
    """x unchanged; its gradient is multiplied by ``mask`` (bool or float, broadcastable to x):
    the official code's ``blocked_grad`` (``sparse_grad_attn.py``)."""
    return BlockedGrad.apply(x, mask._data if isinstance(mask, Tensor) else mask)


def group_linear(x: Tensor, weight: Tensor) -> Tensor:
    """One linear map per module: x (B, K, in), weight (K, in, out) -> (B, K, out), as one
    batched product over the module axis (the official ``GroupLinearLayer``)."""
    return (x.transpose(0, 1) @ weight).transpose(0, 1)


def _group_param(num_units: int, fan_in: int, width: int) -> Parameter:
    w = Parameter(creation.empty((num_units, fan_in, width)))
    bound = 1.0 / math.sqrt(fan_in)
    init.uniform_(w, -bound, bound)
    return w


def _positive_int(owner: str, **values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {v!r}")


def _check_state(owner: str, h, num_units: int, unit_size: int) -> None:
    if h.ndim != 3 or h.shape[1] != num_units or h.shape[2] != unit_size:
        raise ShapeError(f"{owner}: state of shape {tuple(h.shape)}, expected (batch, "
                         f"num_units={num_units}, unit_size={unit_size})")


class InputAttention(Module):
    """Each module attends over [null, input] (RIMs, section 2.2).

    Args:
        input_size: size of x; num_units, unit_size: K modules of U units.
        key_size: d_k per head; value_size: total size of the values (split among heads).
        num_heads: heads (the official code uses 1); dropout: on the attended values.
    Parameters: ``query_weight`` (K, U, heads·d_k), one query projection per module; ``key``
    and ``value``: ``Linear`` (no bias) of the input, shared by the modules.

    forward(x (B, input_size), h (B, K, U)) -> (values (B, K, value_size), attn (B, K, 2)):
    values are the attention-weighted slot values (the null value is zero, so values =
    attn[..., 1] * value(x) per head); attn is the softmax over [null, input] averaged over the
    heads, attn[..., 0] the weight on the null slot.
    """

    def __init__(self, input_size: int, num_units: int, unit_size: int, key_size: int = 64,
                 value_size: int = 400, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        _positive_int("InputAttention", input_size=input_size, num_units=num_units,
                      unit_size=unit_size, key_size=key_size, value_size=value_size,
                      num_heads=num_heads)
        if value_size % num_heads:
            raise ValueError(f"InputAttention: value_size={value_size} must be divisible by "
                             f"num_heads={num_heads}")
        self.input_size, self.num_units, self.unit_size = input_size, num_units, unit_size
        self.key_size, self.value_size, self.num_heads = key_size, value_size, num_heads
        self.dropout = float(dropout)
        self.query_weight = _group_param(num_units, unit_size, num_heads * key_size)
        self.key = Linear(input_size, num_heads * key_size, bias=False)
        self.value = Linear(input_size, value_size, bias=False)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, num_units={self.num_units}, unit_size="
                f"{self.unit_size}, key_size={self.key_size}, value_size={self.value_size}, "
                f"num_heads={self.num_heads}")

    def forward(self, x, h):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"InputAttention: input of shape {tuple(x.shape)}, expected "
                             f"(batch, input_size={self.input_size})")
        _check_state("InputAttention", h, self.num_units, self.unit_size)
        b, k, nh, dk = x.shape[0], self.num_units, self.num_heads, self.key_size
        q = group_linear(h, self.query_weight).reshape(b, k, nh, dk)
        key = self.key(x).reshape(b, 1, nh, dk)
        score = (q * key).sum(-1) * (1.0 / math.sqrt(dk))              # (B, K, heads)
        attn_in = score.sigmoid()                                      # softmax([0, s])[1]
        value = self.value(x).reshape(b, 1, nh, self.value_size // nh)
        values = (attn_in.unsqueeze(-1) * value).reshape(b, k, self.value_size)
        if self.dropout and self.training:
            values = F.dropout(values, self.dropout, True)
        attn_in = attn_in.mean(-1) if nh > 1 else attn_in.squeeze(-1)
        null = (-score).sigmoid()
        null = null.mean(-1) if nh > 1 else null.squeeze(-1)
        return values, stack([null, attn_in], dim=-1)


class CommunicationAttention(Module):
    """Multi-head attention among the modules, added as a residual (RIMs, section 2.3).

    Args:
        num_units, unit_size: K modules of U units; key_size, value_size: d_k, d_v per head;
        num_heads: heads (the official ``blocks_core.py`` uses 4 heads with d_k = d_v = 16);
        dropout: on the output projection.
    Parameters: ``qkv_weight`` (K, U, heads·(2 d_k + d_v)), per-module query, key and value
    projections side by side; ``output``: ``Linear(heads·d_v, 2U)``, the candidate and the
    gate, shared by the modules.

    forward(h (B, K, U), mask (B, K) bool or None) -> h + gate ⊙ tanh(candidate), with
    [candidate | gate] = output(attention), gate through a sigmoid. Every module reads every
    module (itself included). With a mask: the inactive modules' rows are returned unchanged,
    and no gradient flows into their states through the attention (the official
    ``blocked_grad`` rule; they are still read as keys and values).
    """

    def __init__(self, num_units: int, unit_size: int, key_size: int = 32, value_size: int = 32,
                 num_heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        _positive_int("CommunicationAttention", num_units=num_units, unit_size=unit_size,
                      key_size=key_size, value_size=value_size, num_heads=num_heads)
        self.num_units, self.unit_size = num_units, unit_size
        self.key_size, self.value_size, self.num_heads = key_size, value_size, num_heads
        self.dropout = float(dropout)
        self.qkv_weight = _group_param(num_units, unit_size,
                                       num_heads * (2 * key_size + value_size))
        self.output = Linear(num_heads * value_size, 2 * unit_size)

    def extra_repr(self) -> str:
        return (f"num_units={self.num_units}, unit_size={self.unit_size}, key_size="
                f"{self.key_size}, value_size={self.value_size}, num_heads={self.num_heads}")

    def forward(self, h, mask=None):
        _check_state("CommunicationAttention", h, self.num_units, self.unit_size)
        b, k, u = h.shape
        if mask is not None:
            if tuple(mask.shape) != (b, k):
                raise ShapeError(f"CommunicationAttention: mask of shape {tuple(mask.shape)}, "
                                 f"expected (batch, num_units) = {(b, k)}")
            mask3 = (mask._data if isinstance(mask, Tensor) else mask)[:, :, None]
            h_in = blocked_grad(h, mask3)
        else:
            h_in = h
        out = self.attend(h_in)
        if mask is None:
            return h_in + out
        return where(Tensor._wrap(mask3, None, False), h_in + out, h)

    def attend(self, h):
        """The attention term gate ⊙ tanh(candidate) (B, K, U), without the residual."""
        b, k, u = h.shape
        nh, dk, dv = self.num_heads, self.key_size, self.value_size
        qkv = group_linear(h, self.qkv_weight).reshape(b, k, nh, 2 * dk + dv).transpose(1, 2)
        q, key, v = qkv[..., :dk], qkv[..., dk:2 * dk], qkv[..., 2 * dk:]
        scores = (q @ key.transpose(-2, -1)) * (1.0 / math.sqrt(dk))  # (B, heads, K, K)
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, k, nh * dv)
        cand_gate = self.output(o)
        cand, gate = cand_gate[..., :u], cand_gate[..., u:]
        if self.dropout and self.training:
            cand = F.dropout(cand, self.dropout, True)
        return gate.sigmoid() * cand.tanh()

"""A shared global workspace (Goyal, Didolkar, Lamb, Badola, Ke, Rahaman, Binas, Blundell,
Mozer, Bengio 2021, "Coordination Among Neural Modules Through a Shared Global Workspace",
arXiv 2103.01197; lecture: the System-2 slide "Modules + Global Workspace").

Specialists (RIM modules, or a transformer's positions) communicate only through a small memory
of ``num_slots`` slots, in two phases, as in the official code (anirudh9119/shared_workspace,
``Triangle/transformer_utilities/relational_memory_volatile.py``):

1. Write, by competition: each memory slot attends (multi-head) over the specialists; with
   ``topk`` only the k specialists with the largest attention weight may write into a slot
   (the other weights are zeroed, not renormalised: the official hard shared workspace, TR+HSW);
   ``topk=None`` lets every specialist write (the soft workspace, TR+SSW). The attended content
   updates the memory as in a relational memory core: m' = LN(m + attended),
   m'' = LN(m' + relu(W m')), then a gated update m_new = σ(i) ⊙ tanh(m'') + σ(f + 1) ⊙ m with
   the gates computed from the specialists' mean state and tanh(m).
2. Read (broadcast): every specialist attends (multi-head) over the updated slots and adds the
   projected result to its state (residual).

With a mask (B, K) of active specialists (RIMs), inactive ones can neither write nor read: their
rows come back unchanged. Simplifications against the official code: one attention block and
one MLP layer per write; the gates use the mean of the specialists' states (the official code
projects the inputs directly).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, creation
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..nn import init
from ..nn.layers.linear import Linear
from ..nn.layers.normalization import LayerNorm
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor, where
from .attention import topk_mask

__all__ = ["SharedWorkspace"]


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, H*d) -> (B, H, N, d)."""
    b, n, w = x.shape
    return x.reshape(b, n, num_heads, w // num_heads).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """(B, H, N, d) -> (B, N, H*d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class SharedWorkspace(Module):
    """Memory slots written by competition among specialists and broadcast back to all of them.

    Args:
        unit_size: size of each specialist's state (a RIM module, a transformer position).
        num_slots: memory slots; slot_size: size of a slot (default unit_size).
        num_heads: heads of the write and read attentions (must divide slot_size).
        topk: specialists allowed to write into each slot (None: all, the soft workspace).

    forward(h (B, K, unit_size), memory=None, mask=None) -> (h_new (B, K, unit_size),
    memory (B, num_slots, slot_size)); memory=None starts from the learned ``memory_init``
    (initialised to the identity, padded with zeros, as the official relational memory);
    mask (B, K) bool marks the specialists that may write and read (None: all).
    After forward: ``last_write`` (B, heads, slots, K) NumPy array of the write weights (zero for
    the specialists that lost the competition).
    """

    def __init__(self, unit_size: int, num_slots: int = 8, slot_size: int | None = None,
                 num_heads: int = 4, topk: int | None = None) -> None:
        super().__init__()
        slot_size = unit_size if slot_size is None else slot_size
        for name, v in (("unit_size", unit_size), ("num_slots", num_slots),
                        ("slot_size", slot_size), ("num_heads", num_heads)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SharedWorkspace: {name} must be a positive int, got {v!r}")
        if slot_size % num_heads:
            raise ValueError(f"SharedWorkspace: slot_size={slot_size} is not divisible by "
                             f"num_heads={num_heads}")
        if topk is not None and (not isinstance(topk, (int, np.integer)) or topk < 1):
            raise ValueError(f"SharedWorkspace: topk={topk!r} must be a positive int or None")
        self.unit_size, self.num_slots, self.slot_size = unit_size, num_slots, slot_size
        self.num_heads, self.topk = num_heads, topk
        s, u = slot_size, unit_size
        self.memory_init = Parameter(creation.zeros((num_slots, s)))
        self.write_query = Linear(s, s, bias=False)
        self.write_key_value = Linear(u, 2 * s, bias=False)
        self.norm1 = LayerNorm(s)
        self.mlp = Linear(s, s)
        self.norm2 = LayerNorm(s)
        self.gate_input = Linear(u, 2 * s)
        self.gate_memory = Linear(s, 2 * s, bias=False)
        self.read_query = Linear(u, s, bias=False)
        self.read_key_value = Linear(s, 2 * s, bias=False)
        self.read_out = Linear(s, u)
        self.last_write = None
        self.reset_memory()

    def reset_memory(self) -> None:
        """memory_init = identity (num_slots, slot_size), padded or truncated."""
        init.zeros_(self.memory_init)
        with no_grad():
            self.memory_init[:, :min(self.num_slots, self.slot_size)] += creation.eye(
                self.num_slots, min(self.num_slots, self.slot_size))

    def extra_repr(self) -> str:
        return (f"unit_size={self.unit_size}, num_slots={self.num_slots}, slot_size="
                f"{self.slot_size}, num_heads={self.num_heads}, topk={self.topk}")

    def forward(self, h, memory=None, mask=None):
        if h.ndim != 3 or h.shape[2] != self.unit_size:
            raise ShapeError(f"SharedWorkspace: input of shape {tuple(h.shape)}, expected "
                             f"(batch, specialists, unit_size={self.unit_size})")
        b, k, _ = h.shape
        if self.topk is not None and self.topk > k:
            raise ValueError(f"SharedWorkspace: topk={self.topk} is larger than the number of "
                             f"specialists {k}")
        expected = (b, self.num_slots, self.slot_size)
        if memory is None:
            memory = self.memory_init.unsqueeze(0).expand(*expected)
        elif tuple(memory.shape) != expected:
            raise ShapeError(f"SharedWorkspace: memory of shape {tuple(memory.shape)}, "
                             f"expected (batch, num_slots, slot_size) = {expected}")
        mask_data = None
        if mask is not None:
            mask_data = mask._data if isinstance(mask, Tensor) else mask
            if tuple(mask_data.shape) != (b, k):
                raise ShapeError(f"SharedWorkspace: mask of shape {tuple(mask_data.shape)}, "
                                 f"expected (batch, specialists) = {(b, k)}")
        memory = self._write(h, memory, mask_data)
        return self._read(h, memory, mask_data), memory

    def _write(self, h, memory, mask):
        nh, s = self.num_heads, self.slot_size
        d = s // nh
        q = _heads(self.write_query(memory), nh)                      # (B, H, S, d)
        kv = self.write_key_value(h)
        key, value = _heads(kv[..., :s], nh), _heads(kv[..., s:], nh)  # (B, H, K, d)
        scores = (q @ key.transpose(-2, -1)) * (1.0 / math.sqrt(d))   # (B, H, S, K)
        if mask is not None:
            scores = scores.masked_fill(Tensor._wrap(~mask[:, None, None, :], None, False),
                                        float("-inf"))
        weights = scores.softmax(-1)
        if self.topk is not None:
            xp = backend.get_array_module(weights._data)
            flat = weights._data.reshape(-1, weights.shape[-1])
            if mask is not None:  # an inactive specialist never wins
                flat = xp.where(xp.broadcast_to(mask[:, None, None, :], weights.shape)
                                .reshape(flat.shape), flat, -1.0)
            keep = topk_mask(flat, min(self.topk, weights.shape[-1]))._data
            weights = weights * Tensor._wrap(keep.reshape(weights.shape).astype(weights.dtype),
                                             None, False)
        self.last_write = backend.to_numpy(weights._data).copy()
        attended = _merge(weights @ value)                             # (B, S, s)
        m1 = self.norm1(memory + attended)
        m2 = self.norm2(m1 + self.mlp(m1).relu())
        if mask is None:
            mean = h.mean(1, keepdim=True)
        else:
            m = Tensor._wrap(mask[:, :, None].astype(h._data.dtype), None, False)
            mean = (h * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)
        gates = self.gate_input(mean) + self.gate_memory(memory.tanh())
        gi, gf = gates[..., :s], gates[..., s:]
        return gi.sigmoid() * m2.tanh() + (gf + 1.0).sigmoid() * memory

    def _read(self, h, memory, mask):
        nh, s = self.num_heads, self.slot_size
        d = s // nh
        q = _heads(self.read_query(h), nh)                            # (B, H, K, d)
        kv = self.read_key_value(memory)
        key, value = _heads(kv[..., :s], nh), _heads(kv[..., s:], nh)  # (B, H, S, d)
        attn = ((q @ key.transpose(-2, -1)) * (1.0 / math.sqrt(d))).softmax(-1)
        out = h + self.read_out(_merge(attn @ value))
        if mask is None:
            return out
        return where(Tensor._wrap(mask[:, :, None], None, False), out, h)

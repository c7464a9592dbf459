"""The relational memory core, RMC (Santoro, Faulkner, Raposo, Rae, Chrzanowski, Weber, Wierstra,
Vinyals, Pascanu, Lillicrap 2018, "Relational recurrent neural networks", arXiv 1806.01822),
as DeepMind's Sonnet defines it (``sonnet/python/modules/relational_memory.py``,
``RelationalMemory``). It is the RMC baseline of the shared-workspace paper's FourRoom table
(Goyal et al. 2021, arXiv 2103.01197; lecture: the System-2 slide "Modules + Global Workspace").

One step, for memory M (B, slots, mem_size) with mem_size = num_heads x head_size and input x:

1. x is projected to one row, x' = W x (B, 1, mem_size), and appended to the memory:
   [M; x'] (B, slots + 1, mem_size).
2. ``num_blocks`` times: multi-head self-attention over the rows (queries, keys and values from
   one linear map followed by a layer norm, queries scaled by key_size^-1/2), then
   R = LN(R + attended) and R = LN(R + MLP(R)); the MLP (``attention_mlp_layers`` linear maps of
   width mem_size with ReLU between them) is shared by the blocks, each block has its own
   attention map and layer norms.
3. The input row is dropped, and an LSTM-like gate mixes the old memory in:
   M' = σ(i) ⊙ tanh(R) + σ(f) ⊙ M, where [i, f] = U x' + V tanh(M) + [input_bias, forget_bias]
   per slot (``gate_style="unit"``: a gate per unit; ``"memory"``: one per slot; ``None``: no
   gating, M' = R).

The output is M' flattened, (B, slots x mem_size). The initial memory is the identity matrix,
padded with zeros or truncated to mem_size columns, so every slot starts different.

    >>> rmc = RelationalMemory(input_size=16, mem_slots=4, head_size=8, num_heads=2)
    >>> memory = rmc.initial_state(batch=3)                  # (3, 4, 16)
    >>> output, memory = rmc(fg.randn(3, 16), memory)        # output (3, 64)
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..nn.containers import ModuleList, Sequential
from ..nn.layers.activation import ReLU
from ..nn.layers.linear import Linear
from ..nn.layers.normalization import LayerNorm
from ..nn.module import Module
from ..tensor import Tensor, tensor
from ..tensor_functions import cat

__all__ = ["RelationalMemory"]

GATE_STYLES = ("unit", "memory", None)


class RelationalMemory(Module):
    """A recurrent core whose state is a set of memory slots that interact by self-attention.

    Args:
        input_size: size of the input vector at each step.
        mem_slots: number of memory slots.
        head_size: size of one attention head's values; mem_size = num_heads x head_size.
        num_heads: attention heads (default 1).
        num_blocks: attention + MLP blocks per step (default 1).
        forget_bias, input_bias: added to the gates' pre-activations (defaults 1 and 0).
        gate_style: "unit" (default), "memory" or None, as above.
        attention_mlp_layers: linear maps in the post-attention MLP (default 2).
        key_size: size of queries and keys (default head_size).

    ``forward(x (B, input_size), memory (B, slots, mem_size)) -> (output (B, slots *
    mem_size), next memory)``.
    """

    def __init__(self, input_size: int, mem_slots: int, head_size: int, num_heads: int = 1,
                 num_blocks: int = 1, forget_bias: float = 1.0, input_bias: float = 0.0,
                 gate_style: str | None = "unit", attention_mlp_layers: int = 2,
                 key_size: int | None = None) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("mem_slots", mem_slots),
                            ("head_size", head_size), ("num_heads", num_heads),
                            ("num_blocks", num_blocks),
                            ("attention_mlp_layers", attention_mlp_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"RelationalMemory: {name} must be an integer >= 1, got "
                                 f"{value!r}")
        if gate_style not in GATE_STYLES:
            raise ValueError(f"RelationalMemory: gate_style must be one of {GATE_STYLES}, got "
                             f"{gate_style!r}")
        if key_size is not None and (int(key_size) != key_size or key_size < 1):
            raise ValueError(f"RelationalMemory: key_size must be an integer >= 1 or None, got "
                             f"{key_size!r}")
        self.input_size, self.mem_slots = int(input_size), int(mem_slots)
        self.head_size, self.num_heads = int(head_size), int(num_heads)
        self.key_size = int(key_size or head_size)
        self.mem_size = self.head_size * self.num_heads
        self.num_blocks, self.gate_style = int(num_blocks), gate_style
        self.forget_bias, self.input_bias = float(forget_bias), float(input_bias)
        m = self.mem_size
        qkv = (2 * self.key_size + self.head_size) * self.num_heads
        self.input_projection = Linear(self.input_size, m)
        self.qkv = ModuleList([Linear(m, qkv) for _ in range(self.num_blocks)])
        self.qkv_norm = ModuleList([LayerNorm(qkv) for _ in range(self.num_blocks)])
        self.attention_norm = ModuleList([LayerNorm(m) for _ in range(self.num_blocks)])
        self.mlp_norm = ModuleList([LayerNorm(m) for _ in range(self.num_blocks)])
        layers = []
        for i in range(int(attention_mlp_layers)):
            layers += [Linear(m, m)] + ([ReLU()] if i < attention_mlp_layers - 1 else [])
        self.mlp = Sequential(*layers)
        if gate_style is not None:
            gates = 2 * (m if gate_style == "unit" else 1)
            self.gate_input = Linear(m, gates)
            self.gate_memory = Linear(m, gates)

    @property
    def output_size(self) -> int:
        return self.mem_slots * self.mem_size

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, mem_slots={self.mem_slots}, "
                f"head_size={self.head_size}, num_heads={self.num_heads}, "
                f"num_blocks={self.num_blocks}, gate_style={self.gate_style!r}")

    def initial_state(self, batch: int) -> Tensor:
        """(batch, slots, mem_size): the identity matrix, zero-padded or truncated to mem_size
        columns (Sonnet's ``initial_state``)."""
        eye = np.eye(self.mem_slots, max(self.mem_slots, self.mem_size), dtype=np.float32)
        state = np.broadcast_to(eye[:, :self.mem_size], (int(batch), self.mem_slots,
                                                          self.mem_size))
        p = next(self.parameters())
        return tensor(np.ascontiguousarray(state), dtype=p.dtype, device=p.device)

    def attend(self, memory: Tensor, block: int) -> Tensor:
        """Multi-head self-attention over the rows of ``memory`` (B, N, mem_size) with block
        ``block``'s query/key/value map: (B, N, num_heads x head_size)."""
        b, n, _ = memory.shape
        h, k, v = self.num_heads, self.key_size, self.head_size
        qkv = self.qkv_norm[block](self.qkv[block](memory))
        qkv = qkv.reshape(b, n, h, 2 * k + v).transpose(1, 2)  # (B, H, N, 2k + v)
        q, key, value = qkv[..., :k] * k ** -0.5, qkv[..., k:2 * k], qkv[..., 2 * k:]
        weights = (q @ key.transpose(-2, -1)).softmax(-1)  # (B, H, N, N)
        return (weights @ value).transpose(1, 2).reshape(b, n, h * v)

    def forward(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x, memory)
        projected = self.input_projection(x).unsqueeze(1)  # (B, 1, mem_size)
        rows = cat([memory, projected], dim=1)
        for block in range(self.num_blocks):
            rows = self.attention_norm[block](rows + self.attend(rows, block))
            rows = self.mlp_norm[block](rows + self.mlp(rows))
        rows = rows[:, :-1]  # the memory's rows, the input's dropped
        if self.gate_style is not None:
            gates = self.gate_memory(memory.tanh()) + self.gate_input(projected)
            input_gate, forget_gate = gates.chunk(2, dim=-1)
            rows = ((input_gate + self.input_bias).sigmoid() * rows.tanh()
                    + (forget_gate + self.forget_bias).sigmoid() * memory)
        return rows.reshape(rows.shape[0], -1), rows

    def _check(self, x: Tensor, memory: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"RelationalMemory: input of shape {tuple(x.shape)}, expected "
                             f"(batch, {self.input_size})")
        expected = (x.shape[0], self.mem_slots, self.mem_size)
        if tuple(memory.shape) != expected:
            raise ShapeError(f"RelationalMemory: memory of shape {tuple(memory.shape)}, "
                             f"expected {expected} (batch, mem_slots, num_heads x head_size)")

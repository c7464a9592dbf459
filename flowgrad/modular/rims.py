"""Recurrent Independent Mechanisms (Goyal, Lamb, Hoffmann, Sodhani, Levine, Bengio, Schölkopf
2019, arXiv 1909.10893; lecture: the System-2 slides), following the official ``BlocksCore``
(anirudh9119/RIMs, ``event_based/blocks_core.py``).

One step of ``RIMCell``:

1. Input attention (``InputAttention``): every module attends over [null, x]; the k_A modules
   with the LEAST attention on the null slot become active (hard top-k; the official code
   deactivates the k_T − k_A modules with the largest null weight; ties go to the lower index).
2. Every module advances its LSTM/GRU on its attended input (``BlockLSTMCell``/``BlockGRUCell``,
   block-diagonal parameters, one batched product over the modules).
3. Communication (``CommunicationAttention``): multi-head attention among the modules' new
   states, added as a residual to the active modules.
4. Optionally a ``SharedWorkspace``: active modules compete to write into memory slots and every
   active module reads the broadcast (Goyal et al. 2021, arXiv 2103.01197).
5. Inactive modules keep (h, c) exactly: h = where(active, h_new, h_old).

Gradient rule for inactive modules (the official code's): the mask is constant (no gradient),
the carried state h_old of an inactive module passes its gradient through unchanged (so
gradients still flow back in time through inactive steps, as the paper says), and no gradient
reaches an inactive module's update h_new: neither through the blend nor through the
communication, where its new state is still read as a key and value but the official
``blocked_grad`` zeroes the gradient flowing back into it.

Switches for the paper's ablations: ``input_attention=False`` feeds x to every module and keeps
them all active; ``communication=False`` skips step 3; ``k_active=num_units`` keeps every module
active while still weighting the input by attention.
"""

from __future__ import annotations

import numpy as np

from .. import backend, creation
from ..errors import ShapeError
from ..nn.module import Module
from ..tensor import Tensor, where
from ..tensor_functions import stack
from .attention import CommunicationAttention, InputAttention, topk_mask
from .blocks import BlockGRUCell, BlockLSTMCell

__all__ = ["RIMCell", "RIM", "check_modules"]


def check_modules(owner: str, hidden_size: int, num_units: int, k_active: int) -> None:
    """Raise a ValueError naming the values when hidden_size, num_units and k_active do not
    describe k_active of num_units equal modules."""
    for name, v in (("hidden_size", hidden_size), ("num_units", num_units),
                    ("k_active", k_active)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{owner}: {name} must be an int, got {type(v).__name__}")
    if num_units < 1:
        raise ValueError(f"{owner}: num_units={num_units} must be at least 1")
    if k_active < 1:
        raise ValueError(f"{owner}: k_active={k_active} must be at least 1 (the number of "
                         "active modules per step)")
    if k_active > num_units:
        raise ValueError(f"{owner}: k_active={k_active} is larger than num_units={num_units}; "
                         f"at most num_units modules can be active")
    if hidden_size < 1 or hidden_size % num_units:
        raise ValueError(f"{owner}: hidden_size={hidden_size} is not divisible by num_units="
                         f"{num_units} (each module holds hidden_size / num_units units)")


class RIMCell(Module):
    """One step of Recurrent Independent Mechanisms.

    Args:
        input_size: size of x; hidden_size: total state size, split into num_units modules of
            hidden_size // num_units units; k_active: modules active per step (k_A).
        cell: "lstm" or "gru".
        input_key_size, input_value_size, input_heads: the input attention (official: 64,
            4 * unit size, 1); comm_key_size, comm_value_size, comm_heads: the communication.
        input_attention, communication: switch the mechanisms off for ablations.
        workspace: a ``SharedWorkspace`` over the modules (applied after the communication, or
            instead of it with communication=False); its memory is carried in the state.
        dropout: on the attended input values and on the communication output.

    forward(x (B, input_size), state=None) -> (h (B, hidden_size), state), state = (h, c) for
    the LSTM, h for the GRU, each (B, hidden_size); with a workspace the memory (B, slots,
    slot_size) is appended: (h, c, memory) or (h, memory). None starts from zeros (and the
    workspace's learned memory).
    After forward: ``last_mask`` (B, K) bool NumPy array of the active modules, ``last_attn``
    (B, K, 2) NumPy array of the input attention over [null, input] (None without input
    attention).
    """

    def __init__(self, input_size: int, hidden_size: int, num_units: int, k_active: int,
                 cell: str = "lstm", input_key_size: int = 64, input_value_size: int = 400,
                 input_heads: int = 1, comm_key_size: int = 32, comm_value_size: int = 32,
                 comm_heads: int = 4, input_attention: bool = True, communication: bool = True,
                 workspace=None, dropout: float = 0.0) -> None:
        super().__init__()
        check_modules("RIMCell", hidden_size, num_units, k_active)
        if not isinstance(input_size, (int, np.integer)) or input_size < 1:
            raise ValueError(f"RIMCell: input_size={input_size!r} must be a positive int")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"RIMCell: cell={cell!r}, expected 'lstm' or 'gru'")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_units, self.k_active = num_units, k_active
        self.unit_size = hidden_size // num_units
        self.cell_type = cell
        self.use_input_attention = bool(input_attention)
        self.use_communication = bool(communication)
        u = self.unit_size
        if self.use_input_attention:
            self.input_attention = InputAttention(input_size, num_units, u, input_key_size,
                                                  input_value_size, input_heads, dropout)
            per_unit = input_value_size
        else:
            self.input_attention = None
            per_unit = input_size
        block = BlockLSTMCell if cell == "lstm" else BlockGRUCell
        self.cell = block(per_unit, u, num_units)
        self.communication = (CommunicationAttention(num_units, u, comm_key_size,
                                                     comm_value_size, comm_heads, dropout)
                              if self.use_communication else None)
        if workspace is not None and getattr(workspace, "unit_size", u) != u:
            raise ValueError(f"RIMCell: the workspace's unit_size={workspace.unit_size} differs "
                             f"from the module size hidden_size / num_units = {u}")
        self.workspace = workspace
        self.last_mask = None
        self.last_attn = None

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, "
                f"k_active={self.k_active}, cell={self.cell_type!r}")

    def _split_state(self, x, state):
        b = x.shape[0]
        lstm = self.cell_type == "lstm"
        memory = None
        if state is None:
            z = creation.zeros((b, self.hidden_size), dtype=x.dtype, device=x.device)
            return z, (z if lstm else None), None
        if isinstance(state, Tensor):
            state = (state,)
        state = tuple(state)
        n = 2 if lstm else 1
        if len(state) == n + 1 and self.workspace is not None:
            memory = state[n]
        elif len(state) != n:
            raise ShapeError(f"RIMCell: state has {len(state)} parts, expected "
                             f"{'(h, c)' if lstm else 'h'}"
                             f"{' (+ workspace memory)' if self.workspace is not None else ''}")
        for s in state[:n]:
            if tuple(s.shape) != (b, self.hidden_size):
                raise ShapeError(f"RIMCell: state of shape {tuple(s.shape)}, expected (batch, "
                                 f"hidden_size) = {(b, self.hidden_size)}")
        return state[0], (state[1] if lstm else None), memory

    def forward(self, x, state=None):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"RIMCell: input of shape {tuple(x.shape)}; its last size "
                             f"{x.shape[-1] if x.ndim else None} differs from input_size="
                             f"{self.input_size} (expected (batch, {self.input_size}))")
        h, c, memory = self._split_state(x, state)
        b, k, u = x.shape[0], self.num_units, self.unit_size
        h3 = h.reshape(b, k, u)
        c3 = None if c is None else c.reshape(b, k, u)
        if self.input_attention is not None:
            inputs, attn = self.input_attention(x, h3)
            self.last_attn = backend.to_numpy(attn._data).copy()
            mask = None if self.k_active == k else topk_mask(-attn._data[..., 0], self.k_active)
        else:
            inputs = x.unsqueeze(1).expand(b, k, self.input_size)
            self.last_attn = None
            mask = None
        if c3 is None:
            h_new = self.cell(inputs, h3)
            c_new = None
        else:
            h_new, c_new = self.cell(inputs, (h3, c3))
        if self.communication is not None:
            h_new = self.communication(h_new, mask)
        if self.workspace is not None:
            h_new, memory = self.workspace(h_new, memory, mask)
        if mask is not None:
            m = mask.unsqueeze(-1)
            h_new = where(m, h_new, h3)
            if c_new is not None:
                c_new = where(m, c_new, c3)
            self.last_mask = backend.to_numpy(mask._data).copy()
        else:
            self.last_mask = np.ones((b, k), dtype=bool)
        h_out = h_new.reshape(b, self.hidden_size)
        new_state = (h_out,) if c_new is None else (h_out, c_new.reshape(b, self.hidden_size))
        if self.workspace is not None:
            new_state = new_state + (memory,)
        return h_out, (new_state[0] if len(new_state) == 1 else new_state)


class RIM(Module):
    """RIMCell over a sequence, with nn.LSTM's layout.

    forward(x (T, B, input_size), or (B, T, input_size) with batch_first, state=None) ->
    (output (T, B, hidden_size) (batch-first if batch_first), final state as RIMCell's).
    After forward: ``masks`` (T, B, K) bool NumPy array of the active modules per step,
    ``attns`` (T, B, K, 2) NumPy array of the input attention (None without it).
    """

    def __init__(self, input_size: int, hidden_size: int, num_units: int, k_active: int,
                 batch_first: bool = False, **cell_kwargs) -> None:
        super().__init__()
        self.batch_first = bool(batch_first)
        self.cell = RIMCell(input_size, hidden_size, num_units, k_active, **cell_kwargs)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_units, self.k_active = num_units, k_active
        self.masks = None
        self.attns = None

    def forward(self, x, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(batch, time, input_size)" if self.batch_first else \
                "(time, batch, input_size)"
            raise ShapeError(f"RIM: input of shape {tuple(x.shape)}, expected {layout} with "
                             f"input_size={self.input_size}")
        steps = x.unbind(1) if self.batch_first else x.unbind(0)
        outputs, masks, attns = [], [], []
        for xt in steps:
            h, state = self.cell(xt, state)
            outputs.append(h)
            masks.append(self.cell.last_mask)
            attns.append(self.cell.last_attn)
        self.masks = np.stack(masks) if masks else None
        self.attns = None if not attns or attns[0] is None else np.stack(attns)
        out = stack(outputs, dim=1 if self.batch_first else 0)
        return out, state

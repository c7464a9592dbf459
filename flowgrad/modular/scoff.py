"""SCOFF: object files and schemata (Goyal, Lamb, Gampa, Beaudoin, Levine, Blundell, Bengio and
Mozer, "Object Files and Schemata: Factorizing Declarative and Procedural Knowledge in Dynamical
Systems", arXiv 2006.16225; the lecture's System-2 slide "Schemas and Slots").

``num_object_files`` object files (OFs) each keep their own state (declarative knowledge);
``num_schemata`` schemata are recurrent cells (GRU or LSTM) whose parameters are shared by every
OF (procedural knowledge). One step of :class:`SCOFFCell`, following the paper's Algorithm 1:

1. Input attention (as in RIMs): each OF's state queries the slots [null, x]; the ``k_active``
   OFs that attend least to the null slot are active (:func:`~flowgrad.modular.attention.
   topk_mask`), the others keep their state bit-identical to the previous step.
2. Every schema proposes a candidate update of every OF, ``h~_{k,j} = schema_j(a_k, h_k)``; all
   schemata run as one block-diagonal cell (:class:`~flowgrad.modular.blocks.BlockGRUCell` /
   ``BlockLSTMCell``, one block per schema) over the OFs, so there is no Python loop over OFs
   or schemata.
3. Schema selection (:class:`SchemaAttention`): the OF's previous state is the query, each
   candidate update a key; the logits go through a Gumbel-softmax (:func:`gumbel_softmax`) and,
   with ``hard=True``, a straight-through one-hot: each active OF takes exactly ONE schema's
   update (the forward value is that candidate, bit for bit) while the gradient of the relaxed
   softmax reaches the selection logits. In eval mode the noise is off (argmax of the logits).
4. Communication among OFs (as in RIMs): multi-head attention added as a residual to the active
   OFs (:class:`~flowgrad.modular.attention.CommunicationAttention`). As in RIMs' official
   ``BlocksCore`` (and flowgrad's RIMCell), every OF's selected update is computed, the
   communication reads all of them (the official ``blocked_grad`` keeps gradient out of the
   inactive ones), and the inactive OFs are then put back to their previous state.

The paper has no official code, and its full text could not be read for this implementation
(only its abstract and third-party summaries of Algorithm 1's four steps: soft competition of
the OFs for the input, each OF picking its most relevant schema by attention with a
Gumbel-softmax / argmax, communication added as a residual). Unverified, chosen here: the
top-k activation and the [null, x] input attention are RIMs' (``k_active=num_object_files``
keeps every OF active); the selection query is a bias-free linear map of the OF's PREVIOUS
state and each key a bias-free linear map of a candidate ``h`` (for the LSTM the selected ``c``
follows the same choice), with a ``1/sqrt(key_size)`` scale; the inactive OFs' updates are
computed, read by the communication and discarded, as in RIMs; the gradient rule for inactive
OFs is RIMCell's (their carried state passes its gradient back in time, their discarded update
gets none); the Gumbel noise is drawn per OF and per step from flowgrad's seeded stream; eval
mode uses no noise (hard: argmax; soft: the softmax of the logits / tau).
With ``num_schemata=1`` the cell is a RIM whose modules share one set of parameters.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..errors import ShapeError
from ..nn import functional as F
from ..nn.layers.linear import Linear
from ..nn.module import Module
from ..tensor import Tensor, as_tensor, where
from ..tensor_functions import stack
from .attention import CommunicationAttention, InputAttention, topk_mask
from .blocks import BlockGRUCell, BlockLSTMCell

__all__ = ["gumbel_softmax", "sample_gumbel", "SchemaAttention", "SCOFFCell", "SCOFF"]

CELLS = {"gru": BlockGRUCell, "lstm": BlockLSTMCell}


def sample_gumbel(shape: tuple, like: Tensor) -> Tensor:
    """Standard Gumbel noise ``-log(-log(u))``, u ~ U(0, 1), of ``like``'s dtype and device,
    drawn from flowgrad's seeded stream (see fg.manual_seed)."""
    xp = like.xp
    u = backend.rng(xp).random(tuple(shape))
    u = xp.clip(u, np.finfo(np.float64).tiny, 1.0)
    return as_tensor(-xp.log(-xp.log(u)).astype(like.dtype), device=like.device)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   noise: Tensor | None = None) -> Tensor:
    """Gumbel-softmax sample (Jang, Gu and Poole 2017; Maddison, Mnih and Teh 2017) with the
    semantics of ``torch.nn.functional.gumbel_softmax``: ``softmax((logits + g) / tau)``.

    With ``hard=True`` the result is the straight-through estimator: its value is EXACTLY the
    one-hot of the argmax (written ``y_hard + (y_soft - y_soft.detach())``, whose second term is
    exactly zero; PyTorch's ``y_hard - y_soft.detach() + y_soft`` can be off by one ulp), its
    gradient that of ``y_soft``. ``noise``: given Gumbel noise ``g`` (zeros: no noise, a plain
    (hard) softmax); None draws it. Ties in the argmax go to the lower index.
    """
    if not tau > 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    if noise is None:
        noise = sample_gumbel(logits.shape, logits)
    elif tuple(noise.shape) != tuple(logits.shape):
        raise ShapeError(f"gumbel_softmax: noise shape {tuple(noise.shape)} differs from logits "
                         f"shape {tuple(logits.shape)}")
    y_soft = F.softmax((logits + noise) / tau, dim=dim)
    if not hard:
        return y_soft
    xp = logits.xp
    axis = dim % logits.ndim
    index = xp.expand_dims(xp.argmax(y_soft._data, axis=axis), axis)
    positions = xp.arange(logits.shape[axis]).reshape(
        [-1 if d == axis else 1 for d in range(logits.ndim)])
    y_hard = as_tensor((positions == index).astype(logits.dtype), device=logits.device)
    return y_hard + (y_soft - y_soft.detach())


class SchemaAttention(Module):
    """Schema-selection logits (SCOFF, Algorithm 1 step 3): the query is a linear map of an
    OF's previous state, each key a linear map of the candidate state one schema proposes;
    logits ``q . k / sqrt(key_size)``, one per (OF, schema). Both maps are bias-free."""

    def __init__(self, unit_size: int, key_size: int = 32) -> None:
        super().__init__()
        self.unit_size = unit_size
        self.key_size = key_size
        self.query = Linear(unit_size, key_size, bias=False)
        self.key = Linear(unit_size, key_size, bias=False)

    def forward(self, h: Tensor, candidates: Tensor) -> Tensor:
        """h (B, n_f, unit), candidates (B, n_f, n_s, unit) -> logits (B, n_f, n_s)."""
        q = self.query(h).unsqueeze(-1)          # (B, n_f, d, 1)
        k = self.key(candidates)                  # (B, n_f, n_s, d)
        return (k @ q).squeeze(-1) * (1.0 / math.sqrt(self.key_size))

    def extra_repr(self) -> str:
        return f"unit_size={self.unit_size}, key_size={self.key_size}"


def _check_sizes(hidden_size: int, num_object_files: int, num_schemata: int,
                 k_active: int) -> None:
    for name, value in (("hidden_size", hidden_size), ("num_object_files", num_object_files),
                        ("num_schemata", num_schemata), ("k_active", k_active)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"SCOFFCell: {name} must be an int, got {type(value).__name__}")
    if num_object_files < 1:
        raise ValueError(f"SCOFFCell: num_object_files must be >= 1, got {num_object_files}")
    if num_schemata < 1:
        raise ValueError(f"SCOFFCell: num_schemata must be >= 1 (each object file picks one "
                         f"schema per step), got num_schemata={num_schemata}")
    if not 1 <= k_active <= num_object_files:
        raise ValueError(f"SCOFFCell: k_active must be in [1, num_object_files="
                         f"{num_object_files}], got k_active={k_active}")
    if hidden_size < 1 or hidden_size % num_object_files:
        raise ValueError(f"SCOFFCell: hidden_size={hidden_size} is not divisible by "
                         f"num_object_files={num_object_files} (each object file holds "
                         "hidden_size / num_object_files units)")


class SCOFFCell(Module):
    """One SCOFF step (see the module docstring) with RIMCell's interface.

    Args: input_size; hidden_size the total state, split into ``num_object_files`` equal object
    files; ``num_schemata`` shared cells (``cell`` 'gru' or 'lstm'); ``k_active`` OFs updated
    per step; ``hard`` straight-through one-hot selection (False: the relaxed Gumbel-softmax
    mixture of the candidates while training, the noise-free softmax in eval); ``tau`` the
    Gumbel-softmax temperature; ``schema_key_size`` the selection attention's width; the
    attention sizes as in RIMCell (input attention over [null, x]: ``input_key_size``,
    ``input_value_size``, ``input_heads``; communication: ``comm_key_size``,
    ``comm_value_size``, ``comm_heads``); ``input_attention=False`` feeds x to every OF and
    makes all of them active; ``communication=False`` drops step 4.

    forward(x (B, input_size), state=None) -> (h (B, hidden_size), state) with state ``h`` (gru)
    or ``(h, c)`` (lstm), each (B, hidden_size). After a forward: ``last_mask`` (B, n_f) bool
    numpy (active OFs), ``last_schema`` (B, n_f) int64 numpy (the schema each active OF used,
    -1 for inactive OFs), ``last_attn`` (B, n_f, 2) numpy input attention (None without it),
    ``last_selection`` the (B, n_f, n_s) selection weights (a Tensor in the graph).
    """

    def __init__(self, input_size: int, hidden_size: int, num_object_files: int,
                 num_schemata: int, k_active: int, cell: str = "gru", hard: bool = True,
                 tau: float = 1.0, schema_key_size: int = 32, input_key_size: int = 64,
                 input_value_size: int = 400, input_heads: int = 1, comm_key_size: int = 32,
                 comm_value_size: int = 32, comm_heads: int = 4, input_attention: bool = True,
                 communication: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        _check_sizes(hidden_size, num_object_files, num_schemata, k_active)
        if cell not in CELLS:
            raise ValueError(f"SCOFFCell: cell must be one of {sorted(CELLS)}, got {cell!r}")
        if not tau > 0:
            raise ValueError(f"SCOFFCell: tau must be positive, got {tau}")
        if not input_attention and k_active != num_object_files:
            raise ValueError(f"SCOFFCell: without input attention every object file is "
                             f"active, so k_active must equal num_object_files="
                             f"{num_object_files}, got k_active={k_active}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_object_files = num_object_files
        self.num_schemata = num_schemata
        self.k_active = k_active
        self.unit_size = hidden_size // num_object_files
        self.cell = cell
        self.hard = hard
        self.tau = float(tau)
        self.use_input_attention = input_attention
        self.use_communication = communication
        if input_attention:
            self.input_attention = InputAttention(input_size, num_object_files, self.unit_size,
                                                  key_size=input_key_size,
                                                  value_size=input_value_size,
                                                  num_heads=input_heads, dropout=dropout)
            schema_input = input_value_size
        else:
            self.input_attention = None
            schema_input = input_size
        # one block per schema: the blocks' parameters are the schemata, shared by every OF
        self.schema_cell = CELLS[cell](schema_input, self.unit_size, num_schemata)
        self.schema_attention = SchemaAttention(self.unit_size, schema_key_size)
        if communication:
            self.communication = CommunicationAttention(num_object_files, self.unit_size,
                                                        key_size=comm_key_size,
                                                        value_size=comm_value_size,
                                                        num_heads=comm_heads, dropout=dropout)
        else:
            self.communication = None
        self.last_mask = None
        self.last_schema = None
        self.last_attn = None
        self.last_selection = None

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_object_files="
                f"{self.num_object_files}, num_schemata={self.num_schemata}, k_active="
                f"{self.k_active}, cell={self.cell!r}, hard={self.hard}, tau={self.tau}")

    # --- pieces of a step ------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"SCOFFCell: expected x of shape (batch, input_size="
                             f"{self.input_size}), got {tuple(x.shape)}")

    def _initial_state(self, x: Tensor):
        zeros = x.new_zeros((x.shape[0], self.hidden_size))
        return (zeros, zeros) if self.cell == "lstm" else zeros

    def _split_state(self, state, batch: int):
        if self.cell == "lstm" and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise ShapeError("SCOFFCell: an LSTM state is a pair (h, c)")
        parts = state if self.cell == "lstm" else (state,)
        shaped = []
        for s in parts:
            if tuple(s.shape) != (batch, self.hidden_size):
                raise ShapeError(f"SCOFFCell: expected a state of shape (batch={batch}, "
                                 f"hidden_size={self.hidden_size}), got {tuple(s.shape)}")
            shaped.append(s.reshape(batch, self.num_object_files, self.unit_size))
        return shaped

    def _candidates(self, inputs: Tensor, states: list) -> list:
        """Every schema applied to every OF: (B, n_f, n_s, unit) per state tensor."""
        b, n_f, n_s = inputs.shape[0], self.num_object_files, self.num_schemata

        def tile(t: Tensor) -> Tensor:
            return t.unsqueeze(2).expand(b, n_f, n_s, t.shape[-1]).reshape(b * n_f, n_s,
                                                                            t.shape[-1])

        tiled = [tile(s) for s in states]
        out = self.schema_cell(tile(inputs), tiled[0] if self.cell == "gru" else tuple(tiled))
        out = (out,) if self.cell == "gru" else out
        return [o.reshape(b, n_f, n_s, self.unit_size) for o in out]

    def select(self, logits: Tensor) -> Tensor:
        """Selection weights (B, n_f, n_s) from the logits: straight-through one-hot (hard) or
        relaxed Gumbel-softmax while training; without noise in eval mode."""
        noise = None if self.training else logits.new_zeros(tuple(logits.shape))
        return gumbel_softmax(logits, self.tau, hard=self.hard, noise=noise)

    # --- the step ----------------------------------------------------------------------------

    def forward(self, x: Tensor, state=None):
        self._check_input(x)
        batch = x.shape[0]
        if state is None:
            state = self._initial_state(x)
        prev = self._split_state(state, batch)
        h_prev = prev[0]
        if self.input_attention is not None:
            inputs, attn = self.input_attention(x, h_prev)
            mask = topk_mask(-attn[..., 0], self.k_active)  # least attention to the null slot
        else:
            inputs = x.unsqueeze(1).expand(batch, self.num_object_files, self.input_size)
            attn = None
            mask = as_tensor(x.xp.ones((batch, self.num_object_files), dtype=bool),
                             device=x.device)
        candidates = self._candidates(inputs, prev)
        weights = self.select(self.schema_attention(h_prev, candidates[0]))
        chosen = [(weights.unsqueeze(-1) * c).sum(2) for c in candidates]
        if self.communication is not None:  # RIMs' order: communicate, then keep the inactive
            chosen[0] = self.communication(chosen[0], mask)
        keep = mask.unsqueeze(-1)
        new = [where(keep, c, p) for c, p in zip(chosen, prev)]
        mask_np = backend.to_numpy(mask._data).astype(bool)
        schema = backend.to_numpy(weights._data.argmax(-1)).astype(np.int64)
        self.last_mask = mask_np
        self.last_schema = np.where(mask_np, schema, -1)
        self.last_attn = None if attn is None else backend.to_numpy(attn._data).copy()
        self.last_selection = weights
        flat = [t.reshape(batch, self.hidden_size) for t in new]
        return flat[0], (tuple(flat) if self.cell == "lstm" else flat[0])


class SCOFF(Module):
    """SCOFF over a sequence, the protocol of RIM / nn.LSTM: forward(x (T, B, I), or (B, T, I)
    with batch_first, state=None) -> (output (T, B, hidden_size) (batch-first likewise), state).

    After a forward: ``masks`` (T, B, n_f) bool numpy, ``schemata`` (T, B, n_f) int64 numpy (-1
    for inactive OFs), ``attns`` (T, B, n_f, 2) numpy input attention (None without it)."""

    def __init__(self, input_size: int, hidden_size: int, num_object_files: int,
                 num_schemata: int, k_active: int, batch_first: bool = False,
                 **cell_kwargs) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.cell = SCOFFCell(input_size, hidden_size, num_object_files, num_schemata, k_active,
                              **cell_kwargs)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.masks = None
        self.schemata = None
        self.attns = None

    def forward(self, x: Tensor, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ShapeError(f"SCOFF: expected x of shape {layout} with input_size="
                             f"{self.input_size}, got {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        outputs, masks, schemata, attns = [], [], [], []
        for t in range(x.shape[0]):
            h, state = self.cell(x[t], state)
            outputs.append(h)
            masks.append(self.cell.last_mask)
            schemata.append(self.cell.last_schema)
            if self.cell.last_attn is not None:
                attns.append(self.cell.last_attn)
        output = stack(outputs, dim=1 if self.batch_first else 0)
        self.masks = np.stack(masks)
        self.schemata = np.stack(schemata)
        self.attns = np.stack(attns) if attns else None
        return output, state

"""Memory-extended networks (lecture: "Memory-Extended Networks"): the Neural Turing Machine of
Graves, Wayne & Danihelka, "Neural Turing Machines" (2014, arXiv 1410.5401), and an LSTM
baseline for the same bit-vector tasks.

The NTM couples an LSTM controller with an N x M memory matrix through heads that read and
write with soft, differentiable weightings over the N slots (section 3). Every head computes
its weighting by the addressing pipeline of section 3.3 (Figure 2):

1. content addressing (3.3.1, eqs. 5-6): w^c = softmax(beta * K(k, M_i)), K the cosine
   similarity between the head's key k and each memory row, beta > 0 the key strength;
2. interpolation (3.3.2, eq. 7): w^g = g w^c + (1 - g) w_{t-1}, gate g in (0, 1);
3. convolutional shift (eq. 8): w~(i) = sum_j w^g(i - j) s(j), circular, s a softmax over the
   shifts -r..r;
4. sharpening (eq. 9): w(i) = w~(i)^gamma / sum_j w~(j)^gamma, gamma >= 1, computed as
   softmax(gamma * log(w~ + eps)).

Reading (3.1, eq. 2): r = sum_i w(i) M(i). Writing (3.2, eqs. 3-4): M(i) <- M(i) (1 - w(i) e)
+ w(i) a, erase vector e in (0, 1)^M, add vector a. Every step is made of flowgrad ops, so
back-propagation runs through the controller, the heads and the memory over the whole
sequence. Memory starts at the constant 1e-6 and each head's first weighting on slot 0
(Collier & Beel, "Implementing Neural Turing Machines", ICANN 2018, found constant memory
initialisation to learn fastest); the first read vector is learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import nn
from ..errors import ShapeError
from ..nn import functional as F
from ..tensor import Tensor
from ..tensor_functions import cat, stack

__all__ = ["NTMConfig", "NTM", "NTMState", "LSTMBaseline", "content_weights", "shift_weights",
           "sharpen", "address", "masked_bce", "bit_errors", "parameter_count"]

EPS = 1e-8
SHARPEN_EPS = 1e-12


# --- addressing (section 3.3), on (B, H, N) weightings for H heads at once --------------------

def content_weights(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Content addressing (eqs. 5-6): softmax over slots of beta * cosine(key, M(i)).

    memory (B, N, M), key (B, H, M), beta (B, H, 1) -> (B, H, N)."""
    dots = key.matmul(memory.transpose(1, 2))  # (B, H, N)
    key_norm = (key * key).sum(-1, keepdim=True).sqrt()  # (B, H, 1)
    mem_norm = (memory * memory).sum(-1).sqrt().unsqueeze(1)  # (B, 1, N)
    similarity = dots / (key_norm * mem_norm + EPS)
    return F.softmax(beta * similarity, dim=-1)


def _shift_index(slots: int, shift_range: int) -> np.ndarray:
    """index[i, k] = (i - (k - r)) mod N: the slot that shift k - r moves onto slot i."""
    shifts = np.arange(-shift_range, shift_range + 1)
    return (np.arange(slots)[:, None] - shifts[None, :]) % slots


def shift_weights(weights: Tensor, shift: Tensor) -> Tensor:
    """Circular convolution (eq. 8): w~(i) = sum_j w(i - j) s(j) over shifts j = -r..r.

    weights (B, H, N), shift (B, H, 2r+1) -> (B, H, N)."""
    slots, width = weights.shape[-1], shift.shape[-1]
    if width % 2 != 1 or width > slots:
        raise ShapeError(f"shift_weights: shift distribution of width {width} over {slots} "
                         "slots; expected an odd width 2r+1 <= N")
    index = _shift_index(slots, width // 2)
    gathered = weights[..., index]  # (B, H, N, S)
    return gathered.matmul(shift.unsqueeze(-1)).squeeze(-1)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening (eq. 9): w^gamma / sum w^gamma, as softmax(gamma * log(w + eps)).

    weights (B, H, N), gamma (B, H, 1) >= 1 -> (B, H, N)."""
    return F.softmax(gamma * (weights + SHARPEN_EPS).log(), dim=-1)


def address(memory: Tensor, previous: Tensor, key: Tensor, beta: Tensor, gate: Tensor,
            shift: Tensor, gamma: Tensor) -> Tensor:
    """The addressing pipeline of section 3.3 (Figure 2) for H heads at once.

    memory (B, N, M); previous weightings (B, H, N); key (B, H, M); beta, gate, gamma
    (B, H, 1); shift (B, H, 2r+1), a distribution. Returns the weightings (B, H, N)."""
    if previous.shape[-1] != memory.shape[1] or key.shape[-1] != memory.shape[-1]:
        raise ShapeError(f"address: memory {tuple(memory.shape)} (B, N, M) does not fit previous "
                         f"weightings {tuple(previous.shape)} (B, H, N) or keys "
                         f"{tuple(key.shape)} (B, H, M)")
    content = content_weights(memory, key, beta)
    gated = gate * content + (1 - gate) * previous
    return sharpen(shift_weights(gated, shift), gamma)


# --- the machine ------------------------------------------------------------------------------

@dataclass
class NTMConfig:
    input_size: int
    output_size: int
    controller_size: int = 100
    memory_slots: int = 128  # N
    memory_width: int = 20  # M
    read_heads: int = 1
    shift_range: int = 1  # shifts -r..r


class NTMState(NamedTuple):
    h: Tensor  # controller (B, C)
    c: Tensor
    memory: Tensor  # (B, N, M)
    read: Tensor  # last read vectors (B, R*M)
    weights: Tensor  # last weightings (B, R+1, N): read heads, then the write head


class NTM(nn.Module):
    """Neural Turing Machine with an LSTM controller, R read heads and one write head.

    forward(x (B, T, input_size)) -> logits (B, T, output_size); ``step`` runs one time step.
    At step t the controller sees [x_t, r_{t-1}]; its state emits every head's parameters;
    all heads address the memory M_{t-1}; the read heads read r_t from it, the write head
    erases and adds to give M_t; the output is linear in [h_t, r_t]."""

    def __init__(self, config: NTMConfig) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.memory_slots < 2 * cfg.shift_range + 1:
            raise ValueError(f"NTM: {cfg.memory_slots} memory slots cannot hold shifts "
                             f"-{cfg.shift_range}..{cfg.shift_range}")
        m, heads = cfg.memory_width, cfg.read_heads + 1
        self.head_size = m + 3 + 2 * cfg.shift_range + 1  # key, beta, gate, shift, gamma
        self.controller = nn.LSTMCell(cfg.input_size + cfg.read_heads * m, cfg.controller_size)
        self.heads = nn.Linear(cfg.controller_size, heads * self.head_size + 2 * m)
        self.output = nn.Linear(cfg.controller_size + cfg.read_heads * m, cfg.output_size)
        self.read_init = nn.Parameter(np.random.default_rng(0).standard_normal(
            cfg.read_heads * m).astype(np.float32) * 0.01)

    def initial_state(self, batch: int, like: Tensor) -> NTMState:
        cfg = self.config
        zeros = like.new_zeros((batch, cfg.controller_size))
        memory = like.new_full((batch, cfg.memory_slots, cfg.memory_width), 1e-6)
        weights = np.zeros((batch, cfg.read_heads + 1, cfg.memory_slots), dtype=np.float32)
        weights[..., 0] = 1.0
        read = self.read_init.unsqueeze(0).expand(batch, -1).to(like.dtype)
        return NTMState(zeros, zeros, memory, read, like.new_tensor(weights))

    def _head_parameters(self, h: Tensor):
        cfg = self.config
        m, s, heads = cfg.memory_width, 2 * cfg.shift_range + 1, cfg.read_heads + 1
        out = self.heads(h)
        batch = out.shape[0]
        addr = out[:, :heads * self.head_size].reshape(batch, heads, self.head_size)
        key = addr[..., :m]
        beta = F.softplus(addr[..., m:m + 1])
        gate = addr[..., m + 1:m + 2].sigmoid()
        shift = F.softmax(addr[..., m + 2:m + 2 + s], dim=-1)
        gamma = 1 + F.softplus(addr[..., m + 2 + s:])
        erase = out[:, heads * self.head_size:heads * self.head_size + m].sigmoid()
        add = out[:, heads * self.head_size + m:].tanh()
        return key, beta, gate, shift, gamma, erase, add

    def step(self, x: Tensor, state: NTMState):
        """One time step: x (B, input_size) -> (logits (B, output_size), new state)."""
        cfg = self.config
        h, c = self.controller(cat([x, state.read], dim=-1), (state.h, state.c))
        key, beta, gate, shift, gamma, erase, add = self._head_parameters(h)
        weights = address(state.memory, state.weights, key, beta, gate, shift, gamma)
        batch, r = x.shape[0], cfg.read_heads
        read = weights[:, :r].matmul(state.memory).reshape(batch, r * cfg.memory_width)
        write = weights[:, r].unsqueeze(-1)  # (B, N, 1)
        memory = state.memory * (1 - write * erase.unsqueeze(1)) + write * add.unsqueeze(1)
        logits = self.output(cat([h, read], dim=-1))
        return logits, NTMState(h, c, memory, read, weights)

    def forward(self, x: Tensor, return_weights: bool = False):
        """x (B, T, input_size) -> logits (B, T, output_size) [, weightings (B, T, R+1, N)]."""
        if x.ndim != 3 or x.shape[-1] != self.config.input_size:
            raise ShapeError(f"NTM: expected input (B, T, {self.config.input_size}), got "
                             f"{tuple(x.shape)}")
        state = self.initial_state(x.shape[0], x)
        outputs, weights = [], []
        for t in range(x.shape[1]):
            logits, state = self.step(x[:, t], state)
            outputs.append(logits)
            weights.append(state.weights)
        out = stack(outputs, dim=1)
        return (out, stack(weights, dim=1)) if return_weights else out


class LSTMBaseline(nn.Module):
    """The baseline of Graves et al. (2014, section 4): LSTM layers, then a linear output at
    every step. forward(x (B, T, input_size)) -> logits (B, T, output_size)."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int,
                 num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return self.output(out)


# --- losses and measures for bit-vector tasks ------------------------------------------------

def masked_bce(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy (nats) per target bit, averaged over the masked steps' bits."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weight = mask.unsqueeze(-1)
    return (bce * weight).sum() / (weight.sum() * logits.shape[-1])


def bit_errors(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Wrong bits per example (thresholding the logits at 0) over the masked steps."""
    wrong = ((logits > 0) != (targets > 0.5)) & (mask[..., None] > 0)
    return wrong.sum(axis=(1, 2))


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))

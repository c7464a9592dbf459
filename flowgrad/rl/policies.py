"""Recurrent actor-critic for MiniGrid's 7x7x3 egocentric view (Mnih et al. 2016, A2C; trained by
PPO, Schulman et al. 2017), after rl-starter-files' ``ACModel``: a small conv encoder, a
recurrent memory, and separate actor and critic heads on the memory's output.

The memory is one of:

* ``lstm``: ``fg.nn.LSTMCell`` (rl-starter-files' memory).
* ``rims``: Recurrent Independent Mechanisms (Goyal et al. 2019, arXiv 1909.10893):
  ``RIMCell`` with LSTM modules, k_A of them active per step, input attention and pairwise
  communication among the modules.
* ``rmc``: the relational memory core (Santoro et al. 2018, arXiv 1806.01822; the table's RMC
  baseline): ``RelationalMemory`` with ``num_slots`` slots of ``hidden_size / num_slots`` units
  (4 heads where they divide it), its flattened memory the policy's state.
* ``rims_workspace``: RIMs whose modules communicate only through a shared workspace (Goyal et
  al. 2021, arXiv 2103.01197): the pairwise communication is replaced by ``SharedWorkspace``
  (the active modules compete to write into a few memory slots, the slots are broadcast back).

The recurrent state is reset where an episode ended: every part is multiplied by the mask
1 - done; the workspace's memory goes back to its learned initial value instead of zero, and
the RMC's memory to its initial identity matrix.

    >>> policy = ActorCritic(PolicyConfig(memory="rims"))
    >>> state = policy.initial_state(4)
    >>> logits, value, state = policy.step(obs, state, mask)   # obs (4, 7, 7, 3) uint8
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

import flowgrad as fg

from ..modular.relational_memory import RelationalMemory
from ..modular.rims import RIMCell, check_modules
from ..modular.workspace import SharedWorkspace
from ..nn.module import Module

__all__ = ["MEMORIES", "PolicyConfig", "ActorCritic", "parameter_count", "sample_actions",
           "workspace_heads"]

MEMORIES = ("lstm", "rims", "rims_workspace", "rmc")


@dataclass
class PolicyConfig:
    memory: str = "lstm"       # "lstm", "rims", "rims_workspace" or "rmc"
    num_actions: int = 3       # MiniGrid's left, right, forward: all FourRooms can use
    embedding: int = 64        # the conv encoder's output (rl-starter-files' image embedding)
    hidden_size: int = 0       # memory state size; 0: 128 for the LSTM and the RMC, 6 x 20 = 120
    #                            for RIMs
    num_units: int = 6         # RIM modules (k_T)
    k_active: int = 4          # modules active per step (k_A)
    num_slots: int = 4         # workspace (and RMC) memory slots
    write_topk: int | None = 2  # modules that may write into each slot (None: all, soft)
    head_hidden: int = 64      # the actor's and the critic's hidden layer (tanh)

    def resolved_hidden(self) -> int:
        if self.hidden_size:
            return int(self.hidden_size)
        return 128 if self.memory in ("lstm", "rmc") else 20 * self.num_units


def parameter_count(module: Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _init_head(linear: fg.nn.Linear) -> None:
    """rl-starter-files' ``init_params``: weight rows drawn N(0, 1) and scaled to unit norm,
    bias zero."""
    with fg.no_grad():
        fg.nn.init.normal_(linear.weight)
        w = linear.weight
        w.mul_(1.0 / (w * w).sum(1, keepdim=True).sqrt())
        fg.nn.init.zeros_(linear.bias)


class ActorCritic(Module):
    """Conv encoder -> recurrent memory -> actor logits and critic value.

    Args:
        config: a PolicyConfig (sizes and the memory type).

    ``step(obs (B, 7, 7, 3) uint8, state, mask (B,)) -> (logits (B, A), value (B,), state)``;
    ``forward(obs (B, T, 7, 7, 3), state, masks (B, T)) -> (logits (B, T, A), values (B, T),
    state)``, the encoder and the heads batched over all steps, the memory stepped in time.
    ``mask`` is 1 - done of the previous step: 0 resets the state before the step.
    """

    def __init__(self, config: PolicyConfig | None = None, **overrides) -> None:
        super().__init__()
        config = PolicyConfig(**{**asdict(config or PolicyConfig()), **overrides})
        if config.memory not in MEMORIES:
            raise ValueError(f"ActorCritic: unknown memory {config.memory!r}; expected one of "
                             f"{', '.join(MEMORIES)}")
        if config.num_actions < 1:
            raise ValueError(f"ActorCritic: num_actions must be >= 1, got {config.num_actions}")
        self.config = config
        h = config.resolved_hidden()
        self.hidden_size = h
        # rl-starter-files' encoder: (3, 7, 7) -> (16, 6, 6) -> pool (16, 3, 3) -> (32, 2, 2)
        # -> (64, 1, 1)
        self.encoder = fg.nn.Sequential(
            fg.nn.Conv2d(3, 16, 2), fg.nn.ReLU(), fg.nn.MaxPool2d(2),
            fg.nn.Conv2d(16, 32, 2), fg.nn.ReLU(),
            fg.nn.Conv2d(32, config.embedding, 2), fg.nn.ReLU(), fg.nn.Flatten())
        if config.memory == "lstm":
            self.memory = fg.nn.LSTMCell(config.embedding, h)
        elif config.memory == "rmc":
            if h % config.num_slots:
                raise ValueError(f"ActorCritic: the RMC's hidden_size {h} must be a multiple "
                                 f"of num_slots={config.num_slots}")
            width = h // config.num_slots
            heads = workspace_heads(width)
            self.memory = RelationalMemory(config.embedding, config.num_slots, width // heads,
                                           num_heads=heads)
        else:
            check_modules("ActorCritic", h, config.num_units, config.k_active)
            unit = h // config.num_units
            # official BlocksCore attention sizes: input d_k 64, d_v 4 x module size;
            # communication 4 heads of d_k = d_v = 16
            sizes = {"input_key_size": 64, "input_value_size": 4 * unit,
                     "comm_key_size": 16, "comm_value_size": 16, "comm_heads": 4}
            workspace = None
            if config.memory == "rims_workspace":
                workspace = SharedWorkspace(unit, num_slots=config.num_slots,
                                            num_heads=workspace_heads(unit),
                                            topk=config.write_topk)
            self.memory = RIMCell(config.embedding, h, config.num_units, config.k_active,
                                  communication=workspace is None, workspace=workspace, **sizes)
        a = config.head_hidden
        self.actor = fg.nn.Sequential(fg.nn.Linear(h, a), fg.nn.Tanh(),
                                      fg.nn.Linear(a, config.num_actions))
        self.critic = fg.nn.Sequential(fg.nn.Linear(h, a), fg.nn.Tanh(), fg.nn.Linear(a, 1))
        for head in (self.actor, self.critic):
            for layer in head:
                if isinstance(layer, fg.nn.Linear):
                    _init_head(layer)

    def extra_repr(self) -> str:
        return f"memory={self.config.memory!r}, hidden_size={self.hidden_size}"

    # --- recurrent state ---------------------------------------------------------------------

    @property
    def _workspace(self):
        return getattr(self.memory, "workspace", None)

    @fg.no_grad()
    def initial_state(self, batch: int) -> tuple:
        """The state at an episode's start for ``batch`` environments: zeros, and the
        workspace's learned initial memory."""
        if self.config.memory == "rmc":
            return (self.memory.initial_state(batch),)
        zeros = fg.zeros(batch, self.hidden_size)
        if self._workspace is None:
            return (zeros, zeros.clone())
        ws = self._workspace
        memory = ws.memory_init.detach().unsqueeze(0).expand(batch, ws.num_slots,
                                                            ws.slot_size).clone()
        return (zeros, zeros.clone(), memory)

    def reset_state(self, state: tuple, mask) -> tuple:
        """Each part of ``state`` times ``mask`` (B,) = 1 - done; the workspace memory is reset
        to memory_init (with its gradient) instead of zero."""
        m = mask if isinstance(mask, fg.Tensor) else fg.from_numpy(
            np.asarray(mask, dtype=np.float32))
        if self.config.memory == "rmc":
            m3 = m.reshape(-1, 1, 1)
            init = self.memory.initial_state(1)
            return (state[0] * m3 + init * (1.0 - m3),)
        m2 = m.reshape(-1, 1)
        h, c = state[0] * m2, state[1] * m2
        if len(state) == 2:
            return (h, c)
        m3 = m.reshape(-1, 1, 1)
        init = self._workspace.memory_init.unsqueeze(0)
        return (h, c, state[2] * m3 + init * (1.0 - m3))

    @staticmethod
    def state_to_numpy(state: tuple) -> list[np.ndarray]:
        return [s.detach().numpy().copy() for s in state]

    @staticmethod
    def state_from_numpy(arrays) -> tuple:
        return tuple(fg.from_numpy(np.asarray(a, dtype=np.float32)) for a in arrays)

    # --- forward -----------------------------------------------------------------------------

    def encode(self, obs: np.ndarray):
        """(M, 7, 7, 3) uint8 cells -> (M, embedding); the (object, colour, state) integers
        are fed as floats, as rl-starter-files does."""
        x = fg.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))
        return self.encoder(x.permute(0, 3, 1, 2))

    def _advance(self, x, state: tuple):
        if self.config.memory == "lstm":
            h, c = self.memory(x, state)
            return h, (h, c)
        if self.config.memory == "rmc":
            h, memory = self.memory(x, state[0])
            return h, (memory,)
        h, new_state = self.memory(x, state)
        return h, tuple(new_state)

    def step(self, obs: np.ndarray, state: tuple, mask) -> tuple:
        """One step for B environments: (logits (B, A), value (B,), new state)."""
        self._check_obs(obs, 4)
        h, state = self._advance(self.encode(obs), self.reset_state(state, mask))
        return self.actor(h), self.critic(h).reshape(-1), state

    def forward(self, obs: np.ndarray, state: tuple, masks) -> tuple:
        """B sequences of T steps from ``state`` (truncated BPTT over T):
        (logits (B, T, A), values (B, T), final state)."""
        self._check_obs(obs, 5)
        b, t = obs.shape[:2]
        masks = np.asarray(masks, dtype=np.float32)
        if masks.shape != (b, t):
            raise ValueError(f"ActorCritic: masks of shape {masks.shape}, expected (B, T) = "
                             f"{(b, t)}")
        x = self.encode(obs.reshape(b * t, *obs.shape[2:])).reshape(b, t, -1)  # (B, T, E)
        hs = []
        for i in range(t):
            h, state = self._advance(x[:, i], self.reset_state(state, masks[:, i]))
            hs.append(h)
        h = fg.stack(hs, dim=1)                                              # (B, T, H)
        return self.actor(h), self.critic(h).squeeze(-1), state

    def _check_obs(self, obs, ndim: int) -> None:
        if not isinstance(obs, np.ndarray) or obs.ndim != ndim or obs.shape[-3:] != (7, 7, 3):
            shape = getattr(obs, "shape", type(obs).__name__)
            lead = "(B, 7, 7, 3)" if ndim == 4 else "(B, T, 7, 7, 3)"
            raise ValueError(f"ActorCritic: observations of shape {shape}, expected a NumPy "
                             f"array {lead} of MiniGrid cells")


def workspace_heads(unit: int) -> int:
    """The most heads (at most 4) that divide the workspace's slot size."""
    return max(h for h in (4, 2, 1) if unit % h == 0)


def log_softmax_np(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def sample_actions(logits: np.ndarray, rng: np.random.Generator,
                   greedy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Actions drawn from softmax(logits) (B, A) by inverse CDF with ``rng`` (or the argmax),
    and their log-probabilities."""
    logp = log_softmax_np(logits.astype(np.float64))
    if greedy:
        actions = logp.argmax(-1)
    else:
        cdf = np.cumsum(np.exp(logp), -1)
        u = rng.random(len(logits))[:, None] * cdf[:, -1:]
        actions = np.minimum((cdf < u).sum(-1), logits.shape[-1] - 1)
    return actions.astype(np.int64), logp[np.arange(len(logits)), actions]


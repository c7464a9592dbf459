"""Proximal policy optimisation (Schulman et al. 2017, arXiv 1707.06347) with generalised
advantage estimation (Schulman et al. 2016, GAE(lambda), arXiv 1506.02438) for a recurrent
actor-critic on a vector of environments (the synchronous advantage actor-critic of Mnih et al.
2016), following rl-starter-files' ``torch_ac.PPOAlgo``:

1. Collect ``rollout`` steps from each of the N environments with the current policy (no
   graph), storing observations, actions, their log-probabilities, values, rewards, the reset
   masks 1 - done and the recurrent state at the start of every chunk of ``recurrence`` steps.
2. GAE(lambda) advantages; returns = advantages + values; an episode's end cuts both.
3. ``epochs`` passes over the rollout in minibatches of whole chunks (``batch_size`` frames
   = batch_size / recurrence chunks of one environment each): the recurrent forward is
   recomputed over each chunk from its stored initial state (truncated BPTT over the chunk),
   the advantages are normalised per minibatch (optional), and the loss is the clipped
   surrogate + value_coef x the clipped value loss - entropy_coef x the entropy; Adam, the
   gradient norm clipped at ``max_grad_norm``.

A checkpoint (flowgrad's .safetensors, written atomically) holds the policy, Adam, the
environments' states, the sampling stream and the learning curves, so a run resumes where it
stopped and continues exactly as if it had not.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import flowgrad as fg

from .envs import VectorEnv
from .policies import ActorCritic, sample_actions

__all__ = ["PPOConfig", "PPO", "gae", "ppo_loss", "evaluate"]


@dataclass
class PPOConfig:
    # rl-starter-files' scripts/train.py defaults for PPO, except recurrence (theirs: 1, no
    # memory), batch_size (theirs: 256) and normalize_advantages (theirs: no)
    num_envs: int = 16           # environments stepped together (--procs 16)
    rollout: int = 128           # steps per environment per update (--frames-per-proc 128)
    recurrence: int = 16         # BPTT chunk, steps (must divide rollout)
    gamma: float = 0.99          # discount
    gae_lambda: float = 0.95
    lr: float = 1e-3             # Adam
    adam_eps: float = 1e-8
    epochs: int = 4              # passes over each rollout
    batch_size: int = 512        # frames per minibatch (a multiple of recurrence)
    clip_eps: float = 0.2        # ratio clip and value clip
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True  # per minibatch, as OpenAI baselines and CleanRL

    def check(self) -> None:
        for name in ("num_envs", "rollout", "recurrence", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"PPOConfig: {name} must be a positive int, got {v!r}")
        if self.rollout % self.recurrence:
            raise ValueError(f"PPOConfig: recurrence={self.recurrence} must divide rollout="
                             f"{self.rollout} (the rollout is cut into whole BPTT chunks)")
        if self.batch_size % self.recurrence:
            raise ValueError(f"PPOConfig: batch_size={self.batch_size} frames must be a multiple "
                             f"of recurrence={self.recurrence} (minibatches of whole chunks)")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"PPOConfig: gamma={self.gamma} and gae_lambda={self.gae_lambda} "
                             f"must lie in [0, 1]")


def gae(rewards: np.ndarray, values: np.ndarray, masks: np.ndarray, last_value: np.ndarray,
        gamma: float = 0.99, lam: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates (Schulman et al. 2016, eq. 16).

    Args:
        rewards, values: (T, N) reward of step t and V(s_t).
        masks: (T, N) 1 - done of step t (0 where the episode ended at step t).
        last_value: (N,) V(s_T) of the observation after the last step.

    A_t = delta_t + gamma lambda m_t A_{t+1}, delta_t = r_t + gamma m_t V_{t+1} - V_t.
    Returns (advantages, returns = advantages + values), each (T, N) float32.
    """
    rewards, values, masks = (np.asarray(a, dtype=np.float64) for a in (rewards, values, masks))
    if not rewards.shape == values.shape == masks.shape or rewards.ndim != 2:
        raise ValueError(f"gae: rewards {rewards.shape}, values {values.shape} and masks "
                         f"{masks.shape} must all be (T, N)")
    next_value = np.asarray(last_value, dtype=np.float64)
    if next_value.shape != rewards.shape[1:]:
        raise ValueError(f"gae: last_value of shape {next_value.shape}, expected (N,) = "
                         f"{rewards.shape[1:]}")
    adv = np.zeros_like(rewards)
    next_adv = np.zeros_like(next_value)
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * next_value * masks[t] - values[t]
        next_adv = delta + gamma * lam * next_adv * masks[t]
        adv[t], next_value = next_adv, values[t]
    return adv.astype(np.float32), (adv + values).astype(np.float32)


def ppo_loss(logits, values, actions: np.ndarray, old_logp: np.ndarray, old_values: np.ndarray,
             advantages: np.ndarray, returns: np.ndarray, clip_eps: float = 0.2,
             value_coef: float = 0.5, entropy_coef: float = 0.01) -> tuple:
    """The PPO loss (Schulman et al. 2017, eq. 9, with rl-starter-files' clipped value loss).

    Args:
        logits: (M, A) Tensor; values: (M,) Tensor, the current policy's outputs.
        actions, old_logp, old_values, advantages, returns: (M,) arrays from the rollout.

    policy = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = exp(log pi(a) - old log pi(a));
    value = mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2));
    loss = policy + value_coef value - entropy_coef mean(entropy).
    Returns (loss Tensor, {"policy_loss", "value_loss", "entropy", "clip_fraction"} floats).
    """
    m = logits.shape[0]
    for name, a in (("actions", actions), ("old_logp", old_logp), ("old_values", old_values),
                    ("advantages", advantages), ("returns", returns)):
        if np.shape(a) != (m,):
            raise ValueError(f"ppo_loss: {name} of shape {np.shape(a)}, expected ({m},) like "
                             f"the logits' first dimension")
    adv, ret, v_old = _f32(advantages), _f32(returns), _f32(old_values)
    logp_all = fg.nn.functional.log_softmax(logits, -1)
    index = fg.from_numpy(np.asarray(actions, dtype=np.int64).reshape(m, 1))
    logp = logp_all.gather(1, index).reshape(m)
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    ratio = (logp - _f32(old_logp)).exp()
    surrogate = fg.minimum(ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv)
    policy_loss = -surrogate.mean()
    clipped = v_old + (values - v_old).clamp(-clip_eps, clip_eps)
    value_loss = fg.maximum((values - ret) ** 2, (clipped - ret) ** 2).mean()
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    r = ratio.detach().numpy()
    stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
             "entropy": entropy.item(),
             "clip_fraction": float(np.mean(np.abs(r - 1.0) > clip_eps))}
    return loss, stats


def _f32(a):
    return fg.from_numpy(np.asarray(a, dtype=np.float32))


class PPO:
    """PPO on ``env`` (a VectorEnv) for ``policy`` (an ActorCritic).

    ``train(frames)`` runs updates until ``frames`` environment steps (all environments
    together) have been taken; ``history`` is one dict per update (frames, the episodes that
    ended in it: return, success and length means, the losses, frames/s). ``seed`` fixes the
    action sampling and the minibatch order (the environments have their own seeds).
    """

    def __init__(self, policy: ActorCritic, env: VectorEnv, config: PPOConfig | None = None,
                 seed: int = 0) -> None:
        self.config = config or PPOConfig()
        self.config.check()
        if env.num_envs != self.config.num_envs:
            raise ValueError(f"PPO: the env vector has {env.num_envs} environments, the config "
                             f"num_envs={self.config.num_envs}")
        if env.num_actions < policy.config.num_actions:
            raise ValueError(f"PPO: the policy has {policy.config.num_actions} actions, "
                             f"{env.env_id} only {env.num_actions}")
        self.policy, self.env, self.seed = policy, env, int(seed)
        self.optimizer = fg.optim.Adam(policy.parameters(), lr=self.config.lr,
                                       eps=self.config.adam_eps)
        self.rng = np.random.default_rng([self.seed, 7])
        self.frames, self.updates, self.seconds = 0, 0, 0.0
        self.history: list[dict] = []
        n = self.config.num_envs
        self.obs = env.reset()
        self.state = policy.initial_state(n)
        self.mask = np.ones(n, dtype=np.float32)  # 1 - done of the previous step

    # --- one update ---------------------------------------------------------------------------

    @fg.no_grad()
    def collect(self) -> dict:
        """``rollout`` steps of every environment with the current policy: (T, N) arrays, the
        chunk-start states, the bootstrap value and the episodes that ended."""
        cfg, policy = self.config, self.policy
        t_len, n = cfg.rollout, cfg.num_envs
        obs = np.empty((t_len, n, 7, 7, 3), dtype=np.uint8)
        masks, rewards, dones = (np.empty((t_len, n), dtype=np.float32) for _ in range(3))
        actions = np.empty((t_len, n), dtype=np.int64)
        logps, values = np.empty((t_len, n)), np.empty((t_len, n), dtype=np.float32)
        states = []
        was_training = policy.training
        policy.eval()
        for t in range(t_len):
            if t % cfg.recurrence == 0:
                states.append(policy.state_to_numpy(self.state))
            obs[t], masks[t] = self.obs, self.mask
            logits, value, self.state = policy.step(self.obs, self.state, self.mask)
            actions[t], logps[t] = sample_actions(logits.numpy(), self.rng)
            values[t] = value.numpy()
            self.obs, rewards[t], done = self.env.step(actions[t])
            dones[t] = done
            self.mask = (~done).astype(np.float32)
        _, last_value, _ = policy.step(self.obs, self.state, self.mask)
        policy.train(was_training)
        adv, ret = gae(rewards, values, 1.0 - dones, last_value.numpy(), cfg.gamma,
                       cfg.gae_lambda)
        return {"obs": obs, "masks": masks, "actions": actions, "logp": logps.astype(np.float32),
                "values": values, "rewards": rewards, "advantages": adv, "returns": ret,
                "states": states, "episodes": self.env.pop_episodes()}

    def _sequences(self, roll: dict) -> dict:
        """(T, N, ...) arrays -> (N * T / R, R, ...) chunks, env-major; states (N * T / R, ...)."""
        r, n = self.config.recurrence, self.config.num_envs
        c = self.config.rollout // r

        def chunks(a):  # (T, N, ...) -> (N, C, R, ...) -> (N * C, R, ...)
            a = np.swapaxes(a, 0, 1)
            return a.reshape(n * c, r, *a.shape[2:])

        seq = {k: chunks(roll[k]) for k in ("obs", "masks", "actions", "logp", "values",
                                             "advantages", "returns")}
        parts = len(roll["states"][0])
        seq["states"] = [np.stack([s[p] for s in roll["states"]], 1).reshape(
            n * c, *roll["states"][0][p].shape[1:]) for p in range(parts)]
        return seq

    def update(self, roll: dict) -> dict:
        """``epochs`` passes of minibatched PPO over the rollout; the mean losses."""
        cfg, policy = self.config, self.policy
        seq = self._sequences(roll)
        count = len(seq["obs"])
        per_batch = max(1, cfg.batch_size // cfg.recurrence)
        logs = {"policy_loss": [], "value_loss": [], "entropy": [], "clip_fraction": [],
                "grad_norm": []}
        policy.train()
        for _ in range(cfg.epochs):
            order = self.rng.permutation(count)
            for s in range(0, count, per_batch):
                idx = order[s:s + per_batch]
                state = policy.state_from_numpy([p[idx] for p in seq["states"]])
                logits, values, _ = policy(seq["obs"][idx], state, seq["masks"][idx])
                flat = [seq[k][idx].reshape(-1) for k in ("actions", "logp", "values",
                                                          "advantages", "returns")]
                if cfg.normalize_advantages:
                    flat[3] = (flat[3] - flat[3].mean()) / (flat[3].std() + 1e-8)
                loss, stats = ppo_loss(logits.reshape(-1, logits.shape[-1]), values.reshape(-1),
                                       *flat, cfg.clip_eps, cfg.value_coef, cfg.entropy_coef)
                self.optimizer.zero_grad()
                loss.backward()
                norm = fg.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                for k, v in stats.items():
                    logs[k].append(v)
                logs["grad_norm"].append(float(norm.item()))
        return {k: float(np.mean(v)) for k, v in logs.items()}

    # --- the loop, checkpoints, resume --------------------------------------------------------

    def train(self, frames: int, progress: bool = True, checkpoint=None,
              checkpoint_every: int = 10, desc: str = "ppo") -> list[dict]:
        """Updates until ``frames`` frames; with ``checkpoint`` (a path), resume from it when
        it exists and save it every ``checkpoint_every`` updates and at the end."""
        from tqdm.auto import tqdm

        if checkpoint is not None and Path(checkpoint).exists():
            self.load(checkpoint)
        bar = tqdm(total=int(frames), initial=min(self.frames, int(frames)), desc=desc,
                   disable=not progress, leave=False, unit="frame")
        while self.frames < frames:
            start = time.perf_counter()
            roll = self.collect()
            logs = self.update(roll)
            seconds = time.perf_counter() - start
            eps = roll["episodes"]
            step = self.config.rollout * self.config.num_envs
            self.frames += step
            self.updates += 1
            self.seconds += seconds
            record = {"update": self.updates, "frames": self.frames,
                      "episodes": int(len(eps["return"])),
                      "return": float(eps["return"].mean()) if len(eps["return"]) else None,
                      "success": float(eps["success"].mean()) if len(eps["return"]) else None,
                      "length": float(eps["length"].mean()) if len(eps["return"]) else None,
                      **logs, "fps": step / seconds, "seconds": self.seconds}
            self.history.append(record)
            bar.update(step)
            if record["return"] is not None:
                bar.set_postfix(ret=f"{record['return']:.2f}", succ=f"{record['success']:.2f}",
                                fps=f"{record['fps']:.0f}")
            if checkpoint is not None and (self.updates % checkpoint_every == 0
                                           or self.frames >= frames):
                self.save(checkpoint)
        bar.close()
        return self.history

    def state_dict(self) -> dict:
        return {"config": asdict(self.config), "policy_config": asdict(self.policy.config),
                "seed": self.seed, "frames": self.frames, "updates": self.updates,
                "seconds": self.seconds, "history": self.history,
                "rng": self.rng.bit_generator.state, "env": self.env.state_dict(),
                "obs": self.obs.copy(), "mask": self.mask.copy(),
                "state": self.policy.state_to_numpy(self.state)}

    def save(self, path) -> None:
        """A checkpoint (policy, Adam, environments, streams, curves), written atomically."""
        from ..train.checkpoint import save_checkpoint

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, self.policy, self.optimizer, epoch=self.updates,
                        extra=self.state_dict())

    def load(self, path) -> None:
        """Resume from a checkpoint written by ``save`` with the same settings."""
        from ..train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, restore_rng=False)
        extra = ckpt["extra"]
        mine = {"config": asdict(self.config), "policy_config": asdict(self.policy.config),
                "seed": self.seed}
        for key, value in mine.items():
            if extra.get(key) != value:
                raise ValueError(f"PPO.load {str(path)!r}: the checkpoint's {key} "
                                 f"{extra.get(key)} differs from this run's {value}; choose "
                                 f"another checkpoint")
        load_checkpoint(path, self.policy, self.optimizer)
        self.frames, self.updates = int(extra["frames"]), int(extra["updates"])
        self.seconds, self.history = float(extra["seconds"]), list(extra["history"])
        self.rng.bit_generator.state = extra["rng"]
        self.env.load_state_dict(extra["env"])
        self.obs = np.asarray(extra["obs"], dtype=np.uint8)
        self.mask = np.asarray(extra["mask"], dtype=np.float32)
        self.state = self.policy.state_from_numpy(extra["state"])


@fg.no_grad()
def evaluate(policy: ActorCritic | None, env_id: str, episodes: int = 100, seed: int = 0,
             num_envs: int = 10, stream: int = 1, greedy: bool = False,
             num_actions: int | None = None, **env_kwargs) -> dict:
    """Success rate and return of ``policy`` on ``episodes`` fresh episodes: ``num_envs``
    environments seeded from (``seed``, ``stream``), a stream that training (stream 0) never
    uses, each playing an equal share of the episodes from the start, so that short episodes
    are not favoured. Actions are sampled (``greedy``: the most likely one); ``policy=None``
    plays uniformly random actions among the first ``num_actions``.

    Returns {"episodes", "success_rate", "return_mean", "length_mean", "returns", "successes"}.
    """
    if episodes < 1:
        raise ValueError(f"evaluate: episodes must be >= 1, got {episodes}")
    num_envs = min(num_envs, episodes)
    quota = np.full(num_envs, episodes // num_envs)
    quota[:episodes % num_envs] += 1
    env = VectorEnv(env_id, num_envs, seed=seed, stream=stream, **env_kwargs)
    rng = np.random.default_rng([int(seed), int(stream), 11])
    obs = env.reset()
    a_count = num_actions or (policy.config.num_actions if policy is not None else 3)
    if policy is not None:
        was_training = policy.training
        policy.eval()
        state = policy.initial_state(num_envs)
    mask = np.ones(num_envs, dtype=np.float32)
    done_count = np.zeros(num_envs, dtype=np.int64)
    kept: list[tuple] = []
    while (done_count < quota).any():
        if policy is None:
            actions = rng.integers(0, a_count, size=num_envs)
        else:
            logits, _, state = policy.step(obs, state, mask)
            actions, _ = sample_actions(logits.numpy(), rng, greedy=greedy)
        obs, _, done = env.step(actions)
        mask = (~done).astype(np.float32)
        eps = env.pop_episodes()
        for i, r, n, s in zip(eps["env"], eps["return"], eps["length"], eps["success"]):
            if done_count[i] < quota[i]:
                kept.append((r, n, s))
            done_count[i] += 1
    env.close()
    if policy is not None:
        policy.train(was_training)
    returns = np.array([k[0] for k in kept])
    lengths = np.array([k[1] for k in kept])
    successes = np.array([k[2] for k in kept], dtype=bool)
    return {"episodes": int(len(kept)), "success_rate": float(successes.mean()),
            "return_mean": float(returns.mean()), "length_mean": float(lengths.mean()),
            "returns": returns.tolist(), "successes": successes.tolist()}

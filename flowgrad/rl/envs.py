"""A synchronous vector of MiniGrid environments (Chevalier-Boisvert et al., the ``minigrid``
package on gymnasium's API), as the agents of Mnih et al. 2016 (A2C) and Schulman et al. 2017
(PPO) collect experience: N copies stepped in lockstep, each reset as soon as its episode ends.

Observations are the agent's 7x7 egocentric view, ``obs["image"]``: (7, 7, 3) uint8 cells of
(object, colour, state) indices, fed to the network as they are, as in rl-starter-files (the
direction and the mission string are not used). An episode ends when the env terminates or
truncates; success is a positive final reward (MiniGrid pays 1 - 0.9 step/max_steps at the goal
and 0 otherwise).

    >>> env = VectorEnv("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)
    >>> obs = env.reset()                                   # (4, 7, 7, 3) uint8
    >>> obs, reward, done = env.step(np.zeros(4, dtype=np.int64))
"""

from __future__ import annotations

import numpy as np

__all__ = ["VectorEnv", "env_seeds", "require_minigrid", "make_env"]

DEFAULT_ENV = "MiniGrid-FourRooms-v0"


def require_minigrid():
    """The ``gymnasium`` module with MiniGrid's environments registered, or an ImportError that
    names the missing extra."""
    try:
        import gymnasium
        import minigrid  # noqa: F401 - importing registers the MiniGrid-* ids
    except ImportError as e:
        raise ImportError(f"flowgrad.rl: the MiniGrid environments need the minigrid package "
                          f"(and gymnasium), which is not installed ({e}); install the extra "
                          f"with: pip install flowgrad[rl]") from e
    return gymnasium


def make_env(env_id: str, **kwargs):
    """One gymnasium MiniGrid environment; a ValueError naming ``env_id`` when it is unknown or
    not a MiniGrid environment (no 7x7x3 ``image`` observation)."""
    gym = require_minigrid()
    if not isinstance(env_id, str):
        raise ValueError(f"make_env: env_id must be a string such as {DEFAULT_ENV!r}, got "
                         f"{env_id!r}")
    if env_id not in gym.registry:
        close = sorted(k for k in gym.registry if k.startswith("MiniGrid-"))
        raise ValueError(f"make_env: unknown environment id {env_id!r}; MiniGrid ids include "
                         f"{', '.join(close[:8])}, ... ({len(close)} in all)")
    env = gym.make(env_id, **kwargs)
    space = getattr(env.observation_space, "spaces", {}).get("image")
    if space is None or tuple(space.shape) != (7, 7, 3):
        env.close()
        raise ValueError(f"make_env: {env_id!r} has no (7, 7, 3) 'image' observation "
                         f"(observation space {env.observation_space}); flowgrad.rl expects "
                         f"a MiniGrid environment")
    return env


def env_seeds(seed: int, num_envs: int, stream: int = 0) -> list[int]:
    """``num_envs`` distinct episode seeds drawn from one ``seed`` (``stream`` 0 for training,
    another value for evaluation episodes that training never saw)."""
    return [int(s) for s in np.random.SeedSequence([int(seed), int(stream)])
            .generate_state(num_envs)]


class VectorEnv:
    """``num_envs`` MiniGrid environments stepped together, each reset when its episode ends.

    Args:
        env_id: a registered MiniGrid id (default MiniGrid-FourRooms-v0).
        num_envs: N, the number of environments.
        seed: env i's first reset uses ``env_seeds(seed, N, stream)[i]``; its later episodes
            continue that environment's own random stream, so a seed fixes every episode.
        stream: 0 for training; another value gives other episodes from the same ``seed``.
        env_kwargs: passed to gymnasium.make (e.g. max_steps).

    ``reset() -> obs (N, 7, 7, 3) uint8``; ``step(actions (N,) int) -> (obs, reward (N,) float32,
    done (N,) bool)``: where done, obs is already the first observation of the next episode
    (the finished episode's return, length and success are kept until ``pop_episodes``).
    """

    def __init__(self, env_id: str = DEFAULT_ENV, num_envs: int = 16, seed: int = 0,
                 stream: int = 0, **env_kwargs) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"VectorEnv: num_envs must be a positive int, got {num_envs!r}")
        self.env_id, self.num_envs, self.seed = env_id, int(num_envs), int(seed)
        self.envs = [make_env(env_id, **env_kwargs) for _ in range(self.num_envs)]
        self.seeds = env_seeds(seed, self.num_envs, stream)
        self.num_actions = int(self.envs[0].action_space.n)
        self.obs = None
        self._return = np.zeros(self.num_envs, dtype=np.float64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self._episodes: list[tuple[int, float, int, bool]] = []

    def reset(self) -> np.ndarray:
        """Every environment's first episode from its seed; returns the observations."""
        self.obs = np.stack([env.reset(seed=s)[0]["image"]
                             for env, s in zip(self.envs, self.seeds)])
        self._return[:] = 0.0
        self._length[:] = 0
        self._episodes.clear()
        return self.obs.copy()

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.obs is None:
            raise RuntimeError("VectorEnv.step: call reset() first")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise ValueError(f"VectorEnv.step: actions must be {self.num_envs} integers, got "
                             f"shape {actions.shape} dtype {actions.dtype}")
        if actions.size and (actions.min() < 0 or actions.max() >= self.num_actions):
            raise ValueError(f"VectorEnv.step: actions must lie in 0..{self.num_actions - 1} "
                             f"for {self.env_id}, got {actions.tolist()}")
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        for i, (env, a) in enumerate(zip(self.envs, actions.tolist())):
            obs, r, terminated, truncated, _ = env.step(a)
            rewards[i] = r
            self._return[i] += r
            self._length[i] += 1
            if terminated or truncated:
                dones[i] = True
                self._episodes.append((i, float(self._return[i]), int(self._length[i]),
                                       bool(r > 0)))
                self._return[i], self._length[i] = 0.0, 0
                obs = env.reset()[0]
            self.obs[i] = obs["image"]
        return self.obs.copy(), rewards, dones

    def pop_episodes(self) -> dict:
        """The episodes finished since the last call, in the order they ended: {"env",
        "return", "length", "success"} arrays; the record is emptied."""
        eps, self._episodes = self._episodes, []
        cols = list(zip(*eps)) if eps else [(), (), (), ()]
        return {"env": np.array(cols[0], dtype=np.int64),
                "return": np.array(cols[1], dtype=np.float64),
                "length": np.array(cols[2], dtype=np.int64),
                "success": np.array(cols[3], dtype=bool)}

    def close(self) -> None:
        for env in self.envs:
            env.close()

    # --- the state of every environment, for a checkpoint that resumes exactly ---------------

    def state_dict(self) -> dict:
        """Each environment's grid, agent, step count, carried object and random stream, the
        current observations and the running episode sums (plain arrays and ints). Covers
        MiniGrid environments whose state is the grid and the agent (FourRooms, Empty,
        DoorKey, ...), not objects hidden in boxes or moving obstacles."""
        envs = []
        for env in self.envs:
            u = env.unwrapped
            envs.append({"grid": u.grid.encode(), "agent_pos": np.asarray(u.agent_pos),
                         "agent_dir": int(u.agent_dir), "step_count": int(u.step_count),
                         "carrying": (np.asarray(u.carrying.encode(), dtype=np.int64)
                                      if u.carrying is not None else np.zeros(0, np.int64)),
                         "rng": u.np_random.bit_generator.state})
        return {"env_id": self.env_id, "num_envs": self.num_envs, "seed": self.seed,
                "obs": None if self.obs is None else self.obs.copy(),
                "return": self._return.copy(), "length": self._length.copy(), "envs": envs}

    def load_state_dict(self, state: dict) -> None:
        from minigrid.core.grid import Grid
        from minigrid.core.world_object import WorldObj

        if state["env_id"] != self.env_id or int(state["num_envs"]) != self.num_envs:
            raise ValueError(f"VectorEnv.load_state_dict: the state is of {state['num_envs']} "
                             f"x {state['env_id']!r}, this vector is {self.num_envs} x "
                             f"{self.env_id!r}")
        for env, s in zip(self.envs, state["envs"]):
            u = env.unwrapped
            env.reset(seed=0)  # the wrappers must have seen a reset; all is overwritten below
            u.grid = Grid.decode(np.asarray(s["grid"], dtype=np.uint8))[0]
            u.agent_pos = tuple(int(v) for v in s["agent_pos"])
            u.agent_dir, u.step_count = int(s["agent_dir"]), int(s["step_count"])
            carried = np.asarray(s["carrying"]).tolist()
            u.carrying = WorldObj.decode(*carried) if carried else None
            u.np_random.bit_generator.state = s["rng"]
        self.obs = None if state["obs"] is None else np.array(state["obs"], dtype=np.uint8)
        self._return = np.array(state["return"], dtype=np.float64)
        self._length = np.array(state["length"], dtype=np.int64)
        self._episodes = []

"""Reinforcement learning on MiniGrid: a synchronous vector of environments (envs), recurrent
actor-critics with an LSTM, RIMs or RIMs + shared workspace memory (policies), and PPO with
GAE(lambda) (ppo): Schulman et al. 2017 (PPO), Schulman et al. 2016 (GAE), Mnih et al. 2016
(A2C), Goyal et al. 2019 (RIMs) and Goyal et al. 2021 (shared workspace, arXiv 2103.01197).

MiniGrid comes with the extra ``pip install flowgrad[rl]``; it is imported only when an
environment is made."""

from .envs import VectorEnv, env_seeds, make_env, require_minigrid
from .policies import MEMORIES, ActorCritic, PolicyConfig, parameter_count, sample_actions
from .ppo import PPO, PPOConfig, evaluate, gae, ppo_loss

__all__ = ["VectorEnv", "env_seeds", "make_env", "require_minigrid", "MEMORIES", "ActorCritic",
           "PolicyConfig", "parameter_count", "sample_actions", "PPO", "PPOConfig", "evaluate",
           "gae", "ppo_loss"]

"""DistributedSampler (PyTorch's ``torch.utils.data.distributed.DistributedSampler``): each rank
draws its own shard of the data set, and the shards of one epoch together cover it.

The indices are shuffled with the same seed (``seed + epoch``) on every rank, padded by repeating
the first ones so that the total divides by the number of replicas (or trimmed with
``drop_last``), and rank r takes every ``num_replicas``-th index starting at r. Call
``set_epoch(epoch)`` at the start of each epoch for a new order (``flowgrad.train.fit`` does).
The permutation is NumPy's (``np.random.default_rng(seed + epoch)``), not torch.randperm's:
the shards have PyTorch's sizes and structure, not its exact order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ...distributed import get_rank, get_world_size, is_available

            if not is_available():
                raise RuntimeError("DistributedSampler: requires the distributed package "
                                   "(mpi4py) or explicit num_replicas and rank")
            num_replicas = get_world_size() if num_replicas is None else num_replicas
            rank = get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle, self.seed = bool(shuffle), int(seed)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding > 0:
                reps = math.ceil(padding / n)
                indices = np.concatenate([indices, np.tile(indices, reps)[:padding]])
        else:
            indices = indices[:self.total_size]
        assert len(indices) == self.total_size
        return iter(int(i) for i in indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order to draw: with shuffle, every rank must set the same one."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])

"""What the training stack asks about ranks, answering as a single process does when no process
group is initialised: who writes files and prints progress (rank 0), and metrics averaged over
every rank's examples."""

from __future__ import annotations

import numpy as np

from .process_group import GroupMember


def rank_or_zero() -> int:
    return GroupMember.WORLD.rank() if GroupMember.WORLD is not None else 0


def world_size_or_one() -> int:
    return GroupMember.WORLD.size() if GroupMember.WORLD is not None else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that prints, checkpoints and writes results."""
    return rank_or_zero() == 0


def average_across_ranks(means: dict, counts: dict) -> dict:
    """Each metric's mean over the examples of every rank (a weighted mean of the per-rank
    means by each rank's example count); unchanged in a single process."""
    if world_size_or_one() == 1 or not means:
        return dict(means)
    from mpi4py import MPI

    keys = sorted(means)
    local = np.array([[means[k] * counts[k] for k in keys], [counts[k] for k in keys]],
                     np.float64)
    total = np.empty_like(local)
    GroupMember.WORLD.comm.Allreduce(local, total, op=MPI.SUM)
    return {k: (total[0, i] / total[1, i] if total[1, i] else means[k])
            for i, k in enumerate(keys)}

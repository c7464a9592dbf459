"""Data-parallel training over MPI with PyTorch's names (``torch.distributed``).

    mpirun -n 2 python train.py          # or: mpirun -n 2 flowgrad train mnist_mlp

    import flowgrad.distributed as dist
    dist.init_process_group(backend="mpi")
    model = fg.nn.parallel.DistributedDataParallel(model)
    sampler = fg.utils.data.DistributedSampler(dataset)

The collectives run on mpi4py's buffer interface; ``flowgrad.nn.parallel`` has
DistributedDataParallel and ``flowgrad.utils.data`` DistributedSampler. docs/distributed.md has
the measured costs and the cost model toward a cluster.
"""

from .collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    gather,
    irecv,
    isend,
    recv,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
    send,
    set_shape_checks,
)
from .process_group import (
    GroupMember,
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    launched_by_mpi,
    new_group,
)
from .ranks import average_across_ranks, is_main_process, rank_or_zero, world_size_or_one

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object",
           "all_reduce", "barrier", "broadcast", "broadcast_object_list", "gather", "irecv",
           "isend", "recv", "reduce", "reduce_scatter", "reduce_scatter_tensor", "scatter",
           "send", "set_shape_checks", "GroupMember", "ProcessGroup", "destroy_process_group",
           "get_backend", "get_rank", "get_world_size", "init_process_group", "is_available",
           "is_initialized", "is_mpi_available", "launched_by_mpi", "new_group",
           "average_across_ranks", "is_main_process", "rank_or_zero", "world_size_or_one"]

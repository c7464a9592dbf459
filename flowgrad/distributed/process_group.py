"""Process groups over MPI (mpi4py): who the processes are, with PyTorch's names
(``torch.distributed.init_process_group``, ``get_rank``, ``get_world_size`` ...).

MPI is the distributed engine (the route Chainer took with ChainerMN): ``mpirun -n N python
train.py`` starts the processes on one machine or a cluster, and each learns its rank and the
world size from MPI itself, so no address, port or rendezvous store is configured.
"""

from __future__ import annotations

import os

__all__ = ["ProcessGroup", "init_process_group", "destroy_process_group", "is_initialized",
           "is_available", "is_mpi_available", "get_rank", "get_world_size", "get_backend",
           "new_group", "launched_by_mpi", "mpi_world_size", "GroupMember"]

_INSTALL = 'pip install "flowgrad[distributed]"  (mpi4py and the mpich wheel)'
_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")


def _mpi():
    """mpi4py's MPI module (initialising MPI on first use), or a clear error naming the extra."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"flowgrad.distributed needs mpi4py and an MPI library: {_INSTALL}; "
                          f"({e})") from e
    return MPI


def is_mpi_available() -> bool:
    """Whether mpi4py can be imported (it does not initialise MPI)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_available() -> bool:
    """PyTorch's ``torch.distributed.is_available``: the package is usable (mpi4py is there)."""
    return is_mpi_available()


def mpi_world_size() -> int:
    """The world size the MPI launcher announced in the environment (MPICH/Hydra's PMI_SIZE,
    Open MPI's OMPI_COMM_WORLD_SIZE, PMIx, Slurm's srun), 1 when not launched by one."""
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(key)
        if value and value.isdigit():
            return int(value)
    return 1


def launched_by_mpi() -> bool:
    """True inside ``mpirun -n N`` (N >= 2): the CLI then starts the process group itself."""
    return mpi_world_size() > 1


class ProcessGroup:
    """A set of processes that run collectives together: an MPI communicator."""

    def __init__(self, comm, backend: str = "mpi") -> None:
        self.comm = comm
        self.backend = backend

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self.backend!r}, rank={self.rank()}, size={self.size()})"


class GroupMember:
    """PyTorch's ``GroupMember.WORLD`` (the default group once initialised) and NON_GROUP_MEMBER
    (what ``new_group`` returns on a rank outside the new group)."""

    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


def init_process_group(backend: str | None = "mpi", init_method=None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "",
                       pg_options=None, device_id=None, abort_on_error: bool = True) -> None:
    """Join the default process group: MPI_COMM_WORLD (duplicated, so that flowgrad's messages
    never mix with the application's own MPI traffic). ``world_size``/``rank``, when given, must
    agree with MPI's. With ``abort_on_error`` (default) an uncaught exception on any rank prints
    that rank's traceback and aborts the whole job (MPI_Abort) instead of leaving the other
    ranks waiting in a collective forever."""
    del init_method, timeout, store, group_name, pg_options, device_id  # MPI decides them
    if GroupMember.WORLD is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group "
                           "twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available; flowgrad "
                         "runs its collectives on MPI (backend='mpi', launched with mpirun)")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    if world_size not in (-1, None) and world_size != comm.Get_size():
        raise ValueError(f"init_process_group: world_size={world_size} but MPI started "
                         f"{comm.Get_size()} processes (mpirun -n {world_size} ...)")
    if rank not in (-1, None) and rank != comm.Get_rank():
        raise ValueError(f"init_process_group: rank={rank} but MPI gave this process rank "
                         f"{comm.Get_rank()}; leave rank=-1 and let MPI choose")
    GroupMember.WORLD = ProcessGroup(comm, name)
    if abort_on_error and comm.Get_size() > 1:
        from .faults import install_abort_on_error

        install_abort_on_error()


def is_initialized() -> bool:
    return GroupMember.WORLD is not None


def _group(group=None) -> ProcessGroup:
    """``group`` or the default group; the PyTorch error when none was initialised."""
    if group is not None:
        if group is GroupMember.NON_GROUP_MEMBER:
            raise ValueError("this rank is not a member of the given process group")
        return group
    if GroupMember.WORLD is None:
        raise ValueError(_NOT_INITIALIZED)
    return GroupMember.WORLD


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (the default group)."""
    return _group(group).rank()


def get_world_size(group=None) -> int:
    return _group(group).size()


def get_backend(group=None) -> str:
    return _group(group).backend


def new_group(ranks=None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization: bool = False, group_desc=None):
    """A group of the given ranks of the default group (all of them when None); every rank of
    the default group must call it. A rank outside ``ranks`` gets GroupMember.NON_GROUP_MEMBER."""
    del timeout, backend, pg_options, use_local_synchronization, group_desc
    world = _group()
    size = world.size()
    members = list(range(size)) if ranks is None else sorted(int(r) for r in ranks)
    bad = [r for r in members if not 0 <= r < size]
    if bad or len(set(members)) != len(members):
        raise ValueError(f"new_group: ranks must be distinct and in [0, {size - 1}], got "
                         f"{list(ranks)}")
    comm = world.comm.Create_group(world.comm.Get_group().Incl(members)) \
        if world.rank() in members else None
    if comm is None:
        return GroupMember.NON_GROUP_MEMBER
    return ProcessGroup(comm, world.backend)


def destroy_process_group(group=None) -> None:
    """Leave ``group`` (the default group: every group; MPI itself is finalised at exit)."""
    if group is None or group is GroupMember.WORLD:
        if GroupMember.WORLD is None:
            raise ValueError(_NOT_INITIALIZED)
        GroupMember.WORLD.comm.Free()
        GroupMember.WORLD = None
        from .faults import uninstall_abort_on_error

        uninstall_abort_on_error()
    elif group is not GroupMember.NON_GROUP_MEMBER:
        group.comm.Free()

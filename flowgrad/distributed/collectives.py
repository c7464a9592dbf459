"""Collectives on tensors with PyTorch's signatures (``torch.distributed.all_reduce`` ...), run
on mpi4py's buffer interface: the tensor's array is handed to MPI as it is (no pickling), and
the result is written into the tensor in place, as PyTorch does.

NumPy arrays go to MPI directly. CuPy arrays go directly too when the MPI library is
CUDA-aware (set ``FLOWGRAD_MPI_CUDA_AWARE=1``); otherwise they are staged through host memory.
Before each collective the ranks compare the shape and dtype they pass (one small allgather), so
that a mismatch is reported with every rank's shape instead of corrupting memory or hanging;
``set_shape_checks(False)`` skips that check once a program is known to be consistent.
"""

from __future__ import annotations

import enum
import os
import pickle

import numpy as np

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .process_group import _group, _mpi

__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "reduce", "gather", "scatter", "send",
           "recv", "isend", "irecv", "barrier", "all_gather_object", "broadcast_object_list",
           "set_shape_checks"]


class ReduceOp(enum.Enum):
    """The reductions of ``all_reduce``/``reduce``/``reduce_scatter`` (PyTorch's names)."""

    SUM = "SUM"
    AVG = "AVG"
    PRODUCT = "PROD"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"


_checks = {"shapes": os.environ.get("FLOWGRAD_DISTRIBUTED_CHECKS", "1") != "0"}
_MAX_DIMS = 8


def set_shape_checks(enabled: bool) -> None:
    """Turn the cross-rank shape/dtype check before each collective on or off."""
    _checks["shapes"] = bool(enabled)


def _mpi_op(op):
    MPI = _mpi()
    if not isinstance(op, ReduceOp):
        raise TypeError(f"expected a flowgrad.distributed.ReduceOp, got {op!r}")
    return MPI.SUM if op is ReduceOp.AVG else getattr(MPI, op.value)


def _cuda_aware() -> bool:
    return os.environ.get("FLOWGRAD_MPI_CUDA_AWARE", "0") == "1"


class _Staged:
    """A tensor's array as MPI will see it: C-contiguous, in host memory unless the MPI library
    is CUDA-aware, float16 widened to float32 (MPI has no half type); ``finish()`` writes a
    received result back into the tensor."""

    def __init__(self, tensor: Tensor, name: str) -> None:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}: expected a flowgrad Tensor, got {type(tensor).__name__}")
        self.tensor = tensor
        raw = tensor._data
        self.xp = backend.get_array_module(raw)
        buf = raw
        if self.xp is not np and not _cuda_aware():
            buf = self.xp.asnumpy(raw)
        if buf.dtype == np.float16:
            buf = buf.astype(np.float32)
        elif not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf) if self.xp is np or buf is not raw \
                else self.xp.ascontiguousarray(buf)
        self.buf = buf
        self.copied = buf is not raw

    def finish(self) -> None:
        if self.copied:
            raw = self.tensor._data
            raw[...] = self.xp.asarray(self.buf).astype(raw.dtype, copy=False)
        self.tensor._version += 1  # written in place, as PyTorch's collectives do


def _signature(arr) -> np.ndarray:
    sig = np.full(_MAX_DIMS + 3, -1, np.int64)
    sig[0] = arr.ndim
    sig[1] = np.dtype(arr.dtype).num
    sig[2] = arr.size
    sig[3:3 + min(arr.ndim, _MAX_DIMS)] = arr.shape[:_MAX_DIMS]
    return sig


def _describe(sig) -> str:
    ndim = int(sig[0])
    dims = [int(d) for d in sig[3:3 + min(ndim, _MAX_DIMS)]]
    shape = "(" + ", ".join(map(str, dims)) + ("," if ndim == 1 else "") + \
        (", ...)" if ndim > _MAX_DIMS else ")")
    return f"{shape} {_num_dtype(sig[1])}"


def _num_dtype(num) -> np.dtype:
    for t in np.sctypeDict.values():
        if np.dtype(t).num == int(num):
            return np.dtype(t)
    return np.dtype("V")


def check_same_shape(group, name: str, arr) -> None:
    """Every rank of ``group`` passed an array of the same shape and dtype; else raise on every
    rank, naming each rank's shape (one small allgather; skipped when checks are off)."""
    if not _checks["shapes"] or group.size() == 1:
        return
    sig = _signature(arr)
    table = np.empty((group.size(), sig.size), np.int64)
    group.comm.Allgather(sig, table)
    if (table != table[0]).any():
        shapes = ", ".join(f"rank {r} {_describe(row)}" for r, row in enumerate(table))
        raise ShapeError(f"{name}: the ranks passed tensors of different shapes or dtypes "
                         f"({shapes}); every rank must pass the same shape and dtype")


class Work:
    """A collective in flight (``async_op=True``, ``isend``/``irecv``): ``wait()`` blocks until
    it is done and the tensors hold the result; ``is_completed()`` polls."""

    def __init__(self, requests, finish=None) -> None:
        self.requests = list(requests)
        self._finish = finish
        self._done = False

    def is_completed(self) -> bool:
        if self._done:
            return True
        if all(r.Test() for r in self.requests):
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        del timeout
        if not self._done:
            _mpi().Request.Waitall(self.requests)
            self._complete()
        return True

    def is_success(self) -> bool:
        return self._done

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()
            self._finish = None


def _done(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def _finisher(*staged, scale=None):
    def finish():
        for s in staged:
            if scale is not None:
                s.buf /= scale
            s.finish()
    return finish


def _check_avg(op, arr, name) -> None:
    if op is ReduceOp.AVG and arr.dtype.kind not in "fc":
        raise TypeError(f"{name}: ReduceOp.AVG needs a floating-point tensor, got {arr.dtype}")


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over every rank of ``group`` with ``op``; each rank's tensor receives
    the result in place."""
    g = _group(group)
    s = _Staged(tensor, "all_reduce")
    _check_avg(op, s.buf, "all_reduce")
    check_same_shape(g, "all_reduce", s.buf)
    MPI = _mpi()
    req = g.comm.Iallreduce(MPI.IN_PLACE, s.buf, op=_mpi_op(op))
    scale = g.size() if op is ReduceOp.AVG else None
    return _done(Work([req], _finisher(s, scale=scale)), async_op)


def broadcast(tensor: Tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None):
    """Copy rank ``src``'s tensor into every rank's ``tensor``."""
    g = _group(group)
    root = _root(src, group_src, g, "broadcast", "src")
    s = _Staged(tensor, "broadcast")
    check_same_shape(g, "broadcast", s.buf)
    req = g.comm.Ibcast(s.buf, root=root)
    return _done(Work([req], _finisher(s)), async_op)


def _root(rank, group_rank, g, name: str, what: str) -> int:
    root = group_rank if group_rank is not None else rank
    if root is None:
        raise ValueError(f"{name}: {what} (the root rank) is required")
    if not 0 <= int(root) < g.size():
        raise ValueError(f"{name}: {what}={root} is not a rank of the group (size {g.size()})")
    return int(root)


def _like(tensor: Tensor, shape):
    xp = backend.get_array_module(tensor._data)
    arr = xp.empty(shape, tensor._data.dtype)
    return Tensor._wrap(arr, None, False)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):
    """Concatenate every rank's ``input_tensor`` along dim 0 (or stack, when ``output_tensor``
    has one more dimension) into ``output_tensor``, in rank order."""
    g = _group(group)
    n = g.size()
    name = "all_gather_into_tensor"
    src = _Staged(input_tensor, name)
    out = _Staged(output_tensor, name)
    check_same_shape(g, name, src.buf)
    if out.buf.size != n * src.buf.size or out.buf.dtype != src.buf.dtype:
        raise ShapeError(f"{name}: output {tuple(output_tensor.shape)} {output_tensor.dtype} "
                         f"must hold {n} inputs of {tuple(input_tensor.shape)} "
                         f"{input_tensor.dtype}")
    req = g.comm.Iallgather(src.buf, out.buf)
    return _done(Work([req], _finisher(out)), async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank."""
    g = _group(group)
    n = g.size()
    if len(tensor_list) != n:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors; the group has "
                         f"{n} ranks")
    for i, t in enumerate(tensor_list):
        if tuple(t.shape) != tuple(tensor.shape):
            raise ShapeError(f"all_gather: tensor_list[{i}] has shape {tuple(t.shape)}, the "
                             f"input has {tuple(tensor.shape)}")
    stacked = _like(tensor, (n, *tensor.shape))
    work = all_gather_into_tensor(stacked, tensor, group=g, async_op=True)

    def finish(inner=work._finish):
        inner()
        for i, t in enumerate(tensor_list):
            t._data[...] = stacked._data[i]
            t._version += 1
    work._finish = finish
    return _done(work, async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op=ReduceOp.SUM, group=None,
                          async_op: bool = False):
    """Reduce ``input`` (the group size times ``output``'s size, in rank order) over the ranks
    and give rank r the r-th block of the result, in ``output``."""
    g = _group(group)
    n = g.size()
    name = "reduce_scatter_tensor"
    src = _Staged(input, name)
    out = _Staged(output, name)
    _check_avg(op, out.buf, name)
    check_same_shape(g, name, src.buf)
    if src.buf.size != n * out.buf.size:
        raise ShapeError(f"{name}: input {tuple(input.shape)} must hold {n} blocks of the "
                         f"output's shape {tuple(output.shape)}")
    req = g.comm.Ireduce_scatter_block(src.buf, out.buf, op=_mpi_op(op))
    scale = n if op is ReduceOp.AVG else None
    return _done(Work([req], _finisher(out, scale=scale)), async_op)


def reduce_scatter(output: Tensor, input_list: list, op=ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """Rank r receives the reduction over all ranks of ``input_list[r]``."""
    g = _group(group)
    if len(input_list) != g.size():
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors; the group "
                         f"has {g.size()} ranks")
    for i, t in enumerate(input_list):
        if tuple(t.shape) != tuple(output.shape):
            raise ShapeError(f"reduce_scatter: input_list[{i}] has shape {tuple(t.shape)}, the "
                             f"output has {tuple(output.shape)}")
    xp = backend.get_array_module(output._data)
    joined = Tensor._wrap(xp.stack([t._data for t in input_list]), None, False)
    return reduce_scatter_tensor(output, joined, op=op, group=g, async_op=async_op)


def reduce(tensor: Tensor, dst: int | None = None, op=ReduceOp.SUM, group=None,
           async_op: bool = False, group_dst: int | None = None):
    """Reduce over the ranks into rank ``dst``'s tensor (the others' are left as they were)."""
    g = _group(group)
    root = _root(dst, group_dst, g, "reduce", "dst")
    s = _Staged(tensor, "reduce")
    _check_avg(op, s.buf, "reduce")
    check_same_shape(g, "reduce", s.buf)
    MPI = _mpi()
    if g.rank() == root:
        req = g.comm.Ireduce(MPI.IN_PLACE, s.buf, op=_mpi_op(op), root=root)
        finish = _finisher(s, scale=g.size() if op is ReduceOp.AVG else None)
    else:
        req = g.comm.Ireduce(s.buf, None, op=_mpi_op(op), root=root)
        finish = None
    return _done(Work([req], finish), async_op)


def gather(tensor: Tensor, gather_list: list | None = None, dst: int | None = None, group=None,
           async_op: bool = False, group_dst: int | None = None):
    """Rank ``dst`` receives every rank's tensor in ``gather_list`` (None on the other ranks)."""
    g = _group(group)
    root = _root(0 if dst is None and group_dst is None else dst, group_dst, g, "gather", "dst")
    mine = g.rank() == root
    if mine and (gather_list is None or len(gather_list) != g.size()):
        raise ValueError(f"gather: rank {root} needs a gather_list of {g.size()} tensors")
    if not mine and gather_list:
        raise ValueError("gather: gather_list must be None on the ranks other than dst")
    stacked = _like(tensor, (g.size(), *tensor.shape)) if mine else None
    s = _Staged(tensor, "gather")
    check_same_shape(g, "gather", s.buf)
    recv = _Staged(stacked, "gather") if mine else None
    req = g.comm.Igather(s.buf, recv.buf if mine else None, root=root)

    def finish():
        if mine:
            recv.finish()
            for i, t in enumerate(gather_list):
                t._data[...] = stacked._data[i]
                t._version += 1
    return _done(Work([req], finish), async_op)


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int | None = None,
            group=None, async_op: bool = False, group_src: int | None = None):
    """Rank r's ``tensor`` receives ``scatter_list[r]`` of rank ``src``."""
    g = _group(group)
    root = _root(0 if src is None and group_src is None else src, group_src, g, "scatter", "src")
    mine = g.rank() == root
    if mine and (scatter_list is None or len(scatter_list) != g.size()):
        raise ValueError(f"scatter: rank {root} needs a scatter_list of {g.size()} tensors")
    s = _Staged(tensor, "scatter")
    check_same_shape(g, "scatter", s.buf)
    send = None
    if mine:
        xp = backend.get_array_module(tensor._data)
        send = np.ascontiguousarray(backend.to_numpy(xp.stack([t._data for t in scatter_list])))
        send = send.astype(s.buf.dtype, copy=False)
    req = g.comm.Iscatter(send, s.buf, root=root)
    return _done(Work([req], _finisher(s)), async_op)


def isend(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
          group_dst: int | None = None) -> Work:
    g = _group(group)
    s = _Staged(tensor, "isend")
    return Work([g.comm.Isend(s.buf, dest=_root(dst, group_dst, g, "isend", "dst"), tag=tag)])


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
          group_src: int | None = None) -> Work:
    g = _group(group)
    MPI = _mpi()
    s = _Staged(tensor, "irecv")
    source = MPI.ANY_SOURCE if src is None and group_src is None else \
        _root(src, group_src, g, "irecv", "src")
    return Work([g.comm.Irecv(s.buf, source=source, tag=tag)], _finisher(s))


def send(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
         group_dst: int | None = None) -> None:
    """Send ``tensor`` to rank ``dst`` (blocking)."""
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
         group_src: int | None = None) -> int:
    """Receive into ``tensor`` from rank ``src`` (any rank when None); returns the sender's
    rank. The sizes must match: a message larger than ``tensor`` is an error naming both."""
    g = _group(group)
    MPI = _mpi()
    s = _Staged(tensor, "recv")
    source = MPI.ANY_SOURCE if src is None and group_src is None else \
        _root(src, group_src, g, "recv", "src")
    status = MPI.Status()
    g.comm.Probe(source=source, tag=tag, status=status)
    from mpi4py.util.dtlib import from_numpy_dtype

    got = status.Get_count(from_numpy_dtype(s.buf.dtype))
    if got != s.buf.size:
        raise ShapeError(f"recv: rank {status.Get_source()} sent {got} elements, the receiving "
                         f"tensor {tuple(tensor.shape)} holds {s.buf.size}")
    g.comm.Recv(s.buf, source=status.Get_source(), tag=tag, status=status)
    s.finish()
    return status.Get_source()


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None):
    """Wait until every rank of ``group`` has reached this call."""
    del device_ids, timeout
    g = _group(group)
    return _done(Work([g.comm.Ibarrier()]), async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[r]`` becomes rank r's picklable ``obj``, on every rank."""
    g = _group(group)
    if len(object_list) != g.size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} slots; the "
                         f"group has {g.size()} ranks")
    object_list[:] = g.comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int | None = None, group=None,
                          device=None, group_src: int | None = None) -> None:
    """Replace ``object_list``'s items on every rank by rank ``src``'s (pickled)."""
    del device
    g = _group(group)
    root = _root(0 if src is None and group_src is None else src, group_src, g,
                 "broadcast_object_list", "src")
    data = g.comm.bcast(pickle.dumps(list(object_list)) if g.rank() == root else None,
                        root=root)
    object_list[:] = pickle.loads(data)

"""DistributedDataParallel over MPI (PyTorch's ``torch.nn.parallel.DistributedDataParallel``;
lecture: "Iterative training by SGD" with the minibatch split across processes).

Each rank runs the same model on its own shard of the minibatch; the gradients are averaged
across ranks during backward, so every rank takes the same optimizer step and the replicas stay
equal. At wrap time the parameters and buffers are broadcast from rank 0. During backward, each
parameter's post-accumulate-grad hook marks it ready; a bucket whose parameters are all ready is
copied into its flat buffer and its all-reduce starts at once (non-blocking MPI), in bucket
order on every rank, so that communication overlaps the rest of backward; at the end of backward
the last all-reduces are waited for and the averaged gradients written back.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ...autograd import engine
from ...autograd.grad_mode import is_grad_enabled
from ...errors import ShapeError
from ...tensor import Tensor
from ..module import Module
from .buckets import make_buckets


def _outputs_leaves(output) -> set:
    """ids of the leaf tensors the flow graph of ``output`` reaches (unused-parameter search)."""
    stack, seen, leaves = [], set(), set()

    def add(obj):
        if isinstance(obj, Tensor):
            stack.append(obj)
        elif isinstance(obj, (tuple, list)):
            for o in obj:
                add(o)
        elif isinstance(obj, dict):
            for o in obj.values():
                add(o)

    add(output)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ctx = t._ctx
        if ctx is None:
            leaves.add(id(t))
        elif ctx.parents is not None:
            stack.extend(p for p, need in zip(ctx.parents, ctx.needs_input_grad) if need)
    return leaves


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of a process group (see the module docstring).

    Arguments as PyTorch's: ``broadcast_buffers`` (rank 0's buffers, e.g. BatchNorm running
    statistics, broadcast before each forward), ``bucket_cap_mb`` (25), ``find_unused_parameters``
    (search the forward's graph for parameters that take no part, so that backward does not wait
    for them), ``init_sync`` (broadcast the parameters at wrap time), ``gradient_as_bucket_view``
    (each ``.grad`` a view of its bucket after the reduction: one copy less per step; a ``.grad``
    kept across steps then changes with the next reduction, as in PyTorch). ``device_ids``,
    ``output_device`` and ``static_graph`` are accepted for compatibility and change nothing
    here."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False, **_ignored) -> None:
        super().__init__()
        from ...distributed.process_group import _group

        del device_ids, output_device, check_reduction, static_graph
        if dim != 0:
            raise ValueError(f"DistributedDataParallel: dim={dim}; the batch is split along "
                             "dim 0 (each rank loads its own shard)")
        self.module = module
        object.__setattr__(self, "process_group", _group(process_group))
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        object.__setattr__(self, "find_unused_parameters", bool(find_unused_parameters))
        object.__setattr__(self, "require_backward_grad_sync", True)
        object.__setattr__(self, "gradient_as_bucket_view", bool(gradient_as_bucket_view))
        object.__setattr__(self, "bucket_cap_mb", 25.0 if bucket_cap_mb is None
                           else float(bucket_cap_mb))
        named, seen = [], set()
        for name, p in module.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                named.append((name, p))
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        object.__setattr__(self, "_named_params", named)
        self._verify_same_model()
        if init_sync:
            self._broadcast([p for _, p in named] + [b for _, b in module.named_buffers()])
        cuda_aware = os.environ.get("FLOWGRAD_MPI_CUDA_AWARE", "0") == "1"
        buckets = make_buckets(named, int(self.bucket_cap_mb * (1 << 20)), cuda_aware)
        where = {}
        for b in buckets:
            for i, p in enumerate(b.params):
                where[id(p)] = (b, i)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_pass", None)  # the backward pass being reduced
        object.__setattr__(self, "_unfinished", None)  # names left unreduced by the last pass
        handles = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for _, p in named]
        object.__setattr__(self, "_hook_handles", handles)

    # --- wrap time ------------------------------------------------------------------------------
    def _verify_same_model(self) -> None:
        """Every rank wraps a model with the same parameter shapes (else a clear error naming
        the first difference, on every rank)."""
        g = self.process_group
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in self._named_params]
        everyone = g.comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if len(theirs) != len(everyone[0]):
                raise RuntimeError(f"DistributedDataParallel: DDP expects same model across all "
                                   f"ranks, but rank 0 has {len(everyone[0])} params, while "
                                   f"rank {r} has inconsistent {len(theirs)} params.")
            for a, b in zip(everyone[0], theirs):
                if a != b:
                    raise ShapeError(f"DistributedDataParallel: rank 0 has parameter {a[0]} of "
                                     f"shape {a[1]} {a[2]}, rank {r} has {b[0]} of shape {b[1]} "
                                     f"{b[2]}; every rank must wrap the same model")

    def _broadcast(self, tensors: list) -> None:
        """Rank 0's values of ``tensors`` to every rank, coalesced into one message per dtype."""
        g = self.process_group
        if g.size() == 1 or not tensors:
            return
        from ...distributed.collectives import _Staged

        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(str(t._data.dtype), []).append(t)
        for group in by_dtype.values():
            staged = [_Staged(t, "DistributedDataParallel") for t in group]
            flat = np.concatenate([np.asarray(s.buf).ravel() for s in staged]) \
                if all(isinstance(s.buf, np.ndarray) for s in staged) else None
            if flat is None:  # device arrays with a CUDA-aware MPI: one message each
                for s in staged:
                    g.comm.Bcast(s.buf, root=0)
                    s.finish()
                continue
            g.comm.Bcast(flat, root=0)
            offset = 0
            for s in staged:
                n = s.buf.size
                s.buf.reshape(-1)[...] = flat[offset:offset + n]
                offset += n
                s.finish()

    # --- forward --------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self._unfinished:
            names = ", ".join(self._unfinished)
            object.__setattr__(self, "_unfinished", None)
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior "
                "iteration before starting a new one. This error indicates that your module has "
                f"parameters that were not used in producing loss: {names}. Pass "
                "find_unused_parameters=True to DistributedDataParallel, or make sure that every "
                "output of forward takes part in computing the loss.")
        if self.broadcast_buffers and self.process_group.size() > 1:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers:
                self._broadcast(buffers)
        output = self.module(*inputs, **kwargs)
        sync = (self.require_backward_grad_sync and is_grad_enabled()
                and self.process_group.size() > 1)
        if sync:
            self._prepare_backward(output)
        else:
            object.__setattr__(self, "_pass", None)
        return output

    def _prepare_backward(self, output) -> None:
        """Expect one backward: reset the buckets; with find_unused_parameters, the parameters
        the output's graph does not reach are ready at once (their gradient is zero here)."""
        for b in self._buckets:
            b.ready.clear()
            b.request = None
        state = {"next": 0, "queued": False, "used": None}
        object.__setattr__(self, "_pass", state)
        if self.find_unused_parameters:
            reached = _outputs_leaves(output)
            used = np.array([id(p) in reached for _, p in self._named_params], np.int32)
            state["used"] = used
            for (_, p), u in zip(self._named_params, used):
                if not u:
                    self._mark_ready(p)

    # --- backward -------------------------------------------------------------------------------
    def _on_grad_ready(self, param) -> None:
        state = self._pass
        if state is None:
            return  # no_sync(), no_grad forward, or a backward DDP did not prepare
        if not state["queued"]:
            engine.queue_callback(self._finish_backward)
            state["queued"] = True
        self._mark_ready(param)

    def _mark_ready(self, param) -> None:
        bucket, i = self._where[id(param)]
        bucket.ready.add(i)
        self._launch_ready()

    def _launch_ready(self) -> None:
        """Start the all-reduce of every complete bucket, in bucket order (the same order on
        every rank, as MPI's non-blocking collectives require)."""
        from mpi4py import MPI

        state = self._pass
        buckets = self._buckets
        pending = [b.request for b in buckets[:state["next"]] if b.request is not None]
        if pending:
            MPI.Request.Testall(pending)  # let MPI progress the messages in flight
        while state["next"] < len(buckets) and \
                len(buckets[state["next"]].ready) == len(buckets[state["next"]]):
            b = buckets[state["next"]]
            b.fill(1.0 / self.process_group.size())
            b.request = self.process_group.comm.Iallreduce(MPI.IN_PLACE, b.buffer, op=MPI.SUM)
            state["next"] += 1

    def _finish_backward(self) -> None:
        """End of backward: wait for the all-reduces, write the averaged gradients back."""
        from mpi4py import MPI

        state = self._pass
        object.__setattr__(self, "_pass", None)
        if state is None:
            return
        launched = self._buckets[:state["next"]]
        MPI.Request.Waitall([b.request for b in launched])
        used = None
        if state["used"] is not None:  # which parameters some rank used
            used = np.empty_like(state["used"])
            self.process_group.comm.Allreduce(state["used"], used, op=MPI.MAX)
        index = {id(p): k for k, (_, p) in enumerate(self._named_params)}
        for b in launched:
            b.unpack(None if used is None else [bool(used[index[id(p)]]) for p in b.params],
                     as_view=self.gradient_as_bucket_view)
            b.request = None
        if state["next"] < len(self._buckets):
            missing = [n for b in self._buckets[state["next"]:]
                       for i, n in enumerate(b.names) if i not in b.ready]
            object.__setattr__(self, "_unfinished", missing)

    # --- gradient accumulation ------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside this block accumulate gradients locally with
        no communication; the first backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        object.__setattr__(self, "require_backward_grad_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "require_backward_grad_sync", old)

    def extra_repr(self) -> str:
        g = self.process_group
        return (f"world_size={g.size()}, rank={g.rank()}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb:g}, "
                f"find_unused_parameters={self.find_unused_parameters}")

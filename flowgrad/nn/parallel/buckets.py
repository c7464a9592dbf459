"""Gradient buckets of DistributedDataParallel: parameters grouped, in the reverse order of
registration (the order backward usually produces their gradients), into flat buffers of at most
``cap`` bytes each, one dtype per bucket, so that one all-reduce carries many small gradients
(PyTorch's ``bucket_cap_mb``; its first bucket is smaller so that communication starts early)."""

from __future__ import annotations

import numpy as np

from ... import backend

FIRST_BUCKET_BYTES = 1 << 20  # PyTorch's _DEFAULT_FIRST_BUCKET_BYTES


class Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, index: int, params: list, names: list, cuda_aware: bool) -> None:
        self.index, self.params, self.names = index, params, names
        raw = params[0]._data
        self.xp = backend.get_array_module(raw)
        self.host = self.xp is not np and not cuda_aware  # staged through host memory
        self.dtype = np.float32 if raw.dtype == np.float16 else raw.dtype
        sizes = [int(p._data.size) for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        xp = np if self.host or self.xp is np else self.xp
        self.buffer = xp.zeros(int(self.offsets[-1]), self.dtype)
        self.ready: set = set()
        self.request = None

    def __len__(self) -> int:
        return len(self.params)

    def fill(self, scale: float) -> None:
        """Each parameter's gradient times ``scale`` into the buffer (one pass; zeros for a
        parameter without one): the sum over ranks is then already the average."""
        xp = np if self.host else self.xp
        for p, a, b in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            view = self.buffer[a:b].reshape(p._data.shape)
            if p.grad is None:
                view[...] = 0
            else:
                grad = backend.to_numpy(p.grad._data) if self.host else p.grad._data
                xp.multiply(grad, scale, out=view, casting="unsafe")

    def unpack(self, used=None, as_view: bool = False) -> None:
        """Write the reduced buffer back into the gradients; ``used`` (a bool per parameter, or
        None for all) says which parameters take part anywhere; ``as_view`` makes each
        ``.grad`` a view of the buffer instead of a copy (PyTorch's gradient_as_bucket_view:
        no copy, and the next step's reduction overwrites it)."""
        from ...tensor import Tensor

        for i, (p, a, b) in enumerate(zip(self.params, self.offsets[:-1], self.offsets[1:])):
            if used is not None and not used[i]:
                continue  # unused on every rank: its .grad stays as it was (PyTorch's behaviour)
            value = self.buffer[a:b].reshape(p._data.shape)
            if self.host:
                value = self.xp.asarray(value)
            if as_view and not self.host and value.dtype == p._data.dtype:
                p.grad = Tensor._wrap(value, None, False)
            elif p.grad is None or p.grad._data.base is self.buffer:
                p.grad = Tensor._wrap(value.astype(p._data.dtype, copy=True), None, False)
            else:
                p.grad._data[...] = value


def make_buckets(named_params: list, cap_bytes: int, cuda_aware: bool) -> list:
    """Buckets over ``named_params`` [(name, param)], in reverse order, the first one capped at
    1 MiB and the others at ``cap_bytes``; a new bucket starts where the dtype or device
    changes."""
    buckets, current, names, size = [], [], [], 0
    limit = min(FIRST_BUCKET_BYTES, cap_bytes)

    def close():
        nonlocal current, names, size, limit
        if current:
            buckets.append(Bucket(len(buckets), current, names, cuda_aware))
            current, names, size, limit = [], [], 0, cap_bytes

    for name, p in reversed(named_params):
        nbytes = int(p._data.nbytes)
        if current and (p._data.dtype != current[0]._data.dtype
                        or backend.get_array_module(p._data) is not
                        backend.get_array_module(current[0]._data)
                        or size + nbytes > limit):
            close()
        current.append(p)
        names.append(name)
        size += nbytes
    close()
    return buckets

"""DataLoader with PyTorch's ``torch.utils.data.DataLoader`` semantics. A TensorDataset with
the default collate is gathered a whole batch at a time in the main process (one fancy-index
per tensor: there is no per-sample work for workers to share); any other dataset is loaded by
``num_workers`` worker processes when that is > 0 (see ``worker``).

Checkpoint and resume mid-epoch: ``state = loader.state_dict()`` (the sampler's epoch seed,
position and generator state) and, when the loader draws from the global stream (no
``generator=``), ``rng = get_rng_state()``; later ``loader.load_state_dict(state)`` and
``set_rng_state(rng)``: the next ``iter(loader)`` yields the rest of that epoch, bit-identical.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from . import worker
from .collate import default_collate, default_convert
from .dataset import IterableDataset, Subset, TensorDataset
from .generator import as_generator
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _StatefulSampler


def _tensor_source(dataset):
    """(TensorDataset, index map or None) when ``dataset`` is a TensorDataset or Subsets of one."""
    index_map = None
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        idx = np.asarray(dataset.indices, dtype=np.int64)
        index_map = idx if index_map is None else idx[index_map]
        dataset = dataset.dataset
    if type(dataset) is TensorDataset:
        return dataset, index_map
    return None, None


class DataLoader:
    """Iterate over a dataset in batches: sampler -> batch sampler -> fetch -> collate
    (PyTorch's DataLoader). With ``num_workers > 0`` the fetch and collate run in worker
    processes (``worker_init_fn``, ``prefetch_factor``, ``timeout``, ``in_order`` and
    ``multiprocessing_context`` as in PyTorch; ``persistent_workers`` is accepted, and workers
    are started for each pass); ``pin_memory`` is accepted and has no effect."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; use num_workers=0 to "
                             f"disable multiprocessing, got {num_workers!r}")
        if num_workers == 0 and (prefetch_factor is not None or persistent_workers):
            raise ValueError("prefetch_factor and persistent_workers options need "
                             "num_workers > 0 (multiprocessing)")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"prefetch_factor option should be a positive integer, got "
                             f"{prefetch_factor!r}")
        self.dataset = dataset
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        generator = as_generator(generator, "DataLoader")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None and not self._iterable:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        elif batch_size is not None and self._iterable and (
                not isinstance(batch_size, int) or isinstance(batch_size, bool)
                or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self._auto_collation = batch_sampler is not None or (self._iterable
                                                              and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._batches_yielded = 0
        self._skip = 0
        self._worker_sampler_state = None

    # --- iteration ----------------------------------------------------------------------------
    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    def _fast_source(self):
        """The TensorDataset and index map when batches can be gathered in one go."""
        if self._iterable or self.collate_fn is not default_collate or self.batch_sampler is None:
            return None, None
        return _tensor_source(self.dataset)

    def __iter__(self):
        skip, self._skip = self._skip, 0
        self._batches_yielded = 0
        if self._iterable:
            if self.num_workers > 0:
                return self._iter_iterable_workers(skip)
            return self._iter_iterable(skip)
        base, index_map = self._fast_source()
        bs = self.batch_sampler
        if (base is not None and type(bs) is BatchSampler
                and isinstance(bs.sampler, _StatefulSampler)):
            return self._iter_fast(base, index_map, skip)
        if self.num_workers > 0 and base is None:
            return self._iter_map_workers(skip)
        return self._iter_map(base, index_map, skip)

    def _iter_fast(self, base: TensorDataset, index_map, skip: int):
        bs = self.batch_sampler
        sampler, size = bs.sampler, bs.batch_size
        order = sampler._epoch_indices()
        if skip:  # replay without a sampler state: drop the batches already seen
            drop = min(skip * size, len(order))
            order = order[drop:]
            sampler._yielded += drop
            self._batches_yielded = skip
        if index_map is not None:
            order = index_map[order]
        n = len(order)
        stop = n - n % size if bs.drop_last else n
        for start in range(0, stop, size):
            idx = order[start:start + size]
            sampler._yielded += len(idx)
            self._batches_yielded += 1
            yield base._take(idx)
        sampler._finish_epoch()
        self._batches_yielded = 0

    def _iter_map(self, base, index_map, skip: int):
        dataset, collate = self.dataset, self.collate_fn
        batches = iter(self._index_sampler)
        for _ in range(skip):
            if next(batches, None) is None:
                break
            self._batches_yielded += 1
        getitems = getattr(dataset, "__getitems__", None)
        for indices in batches:
            if not self._auto_collation:
                out = collate(dataset[indices])
            elif base is not None:  # TensorDataset under a custom batch sampler: one gather
                idx = np.asarray(indices, dtype=np.int64)
                out = base._take(idx if index_map is None else index_map[idx])
            elif callable(getitems):
                out = collate(getitems(indices))
            else:
                out = collate([dataset[i] for i in indices])
            self._batches_yielded += 1
            yield out
        self._batches_yielded = 0

    def _iter_iterable(self, skip: int):
        it = iter(self.dataset)
        collate, size = self.collate_fn, self.batch_size
        if size is None:
            for k, sample in enumerate(it):
                if k >= skip:
                    self._batches_yielded = k + 1
                    yield collate(sample)
            self._batches_yielded = 0
            return
        k = 0
        while True:
            batch = []
            for sample in it:
                batch.append(sample)
                if len(batch) == size:
                    break
            if not batch or (self.drop_last and len(batch) < size):
                break
            k += 1
            if k > skip:
                self._batches_yielded = k
                yield collate(batch)
        self._batches_yielded = 0

    def _iter_map_workers(self, skip: int):
        batches = iter(self._index_sampler)
        for _ in range(skip):
            if next(batches, None) is None:
                break
            self._batches_yielded += 1
        src = self._stateful()
        # the first batch is drawn before the workers' base seed: the sampler's epoch seed is
        # the generator's next draw, as without workers (a first epoch has the same order)
        first = next(batches, None)
        if first is None:
            return
        snapshots = {0: None if src is None else src.state_dict()}

        def on_drawn(key):  # the sampler runs ahead of the batches the caller has seen
            if src is not None and key:
                snapshots[key] = src.state_dict()

        pool = worker.WorkerPool(self, worker.MapFetcher(self.dataset, self.collate_fn,
                                                         self._auto_collation))
        try:
            for key, data in worker.run_map(self, pool, chain([first], batches), on_drawn):
                self._worker_sampler_state = snapshots.pop(key, None)
                self._batches_yielded += 1
                yield data
        finally:
            pool.close()
            self._worker_sampler_state = None
        self._batches_yielded = 0

    def _iter_iterable_workers(self, skip: int):
        fetch = worker.IterableFetcher(self.dataset, self.collate_fn, self.batch_size,
                                       self.drop_last)
        pool = worker.WorkerPool(self, fetch)
        try:
            for k, data in enumerate(worker.run_iterable(self, pool), 1):
                if k > skip:
                    self._batches_yielded = k
                    yield data
        finally:
            pool.close()
        self._batches_yielded = 0

    # --- checkpointing ------------------------------------------------------------------------
    def _stateful(self):
        src = self.batch_sampler if self.batch_sampler is not None else self.sampler
        if isinstance(src, BatchSampler):
            src = src.sampler
        return src if callable(getattr(src, "state_dict", None)) else None

    def state_dict(self) -> dict:
        """Where the current epoch stands: the sampler's state (seed, position, generator), or
        just the number of batches yielded when the sampler keeps no state."""
        src = self._stateful()
        if self._worker_sampler_state is not None:  # as of the last batch handed out
            return {"batches_yielded": self._batches_yielded,
                    "sampler": self._worker_sampler_state}
        return {"batches_yielded": self._batches_yielded,
                "sampler": None if src is None else src.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Make the next ``iter(self)`` resume the epoch recorded in ``state``."""
        src = self._stateful()
        if state.get("sampler") is not None and src is not None:
            src.load_state_dict(state["sampler"])
            self._skip = 0
        else:  # replay the index stream (deterministic only if the sampler is)
            self._skip = int(state.get("batches_yielded", 0))

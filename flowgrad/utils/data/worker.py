"""Worker processes for ``DataLoader(num_workers > 0)``, with PyTorch's semantics: each worker
fetches and collates whole batches; the batches come back in the sampler's order (or as they
are ready, with ``in_order=False``); worker ``k`` is seeded with ``base_seed + k`` (flowgrad's
global stream, Python's ``random`` and NumPy's legacy global RNG), where ``base_seed`` is drawn
from the loader's generator for each epoch; ``get_worker_info()`` tells code running in a
worker which one it is (an ``IterableDataset`` uses it to shard itself)."""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
import traceback
from dataclasses import dataclass
from itertools import islice

import numpy as np

from .generator import numpy_stream

__all__ = ["WorkerInfo", "get_worker_info"]

_POLL_S = 1.0  # how often a waiting loader checks that its workers are alive
_CLOSE_S = 1.0  # how long closing waits for the workers to exit before terminating them


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself: ``id`` in [0, num_workers), its ``seed`` and its
    copy of the ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The current worker's WorkerInfo inside a DataLoader worker process, None elsewhere."""
    return _worker_info


class _Exhausted:
    """An iterable dataset's copy in this worker has no more batches."""


class _WorkerError:
    def __init__(self, worker_id: int, text: str) -> None:
        self.worker_id, self.text = worker_id, text

    def reraise(self):
        raise RuntimeError(f"DataLoader worker {self.worker_id} raised an exception while "
                           f"loading a batch; its traceback:\n{self.text}")


class MapFetcher:
    """A batch of a map-style dataset: ``collate([dataset[i] for i in indices])`` (one
    ``__getitems__`` call when the dataset has it), or one sample without auto-batching."""

    def __init__(self, dataset, collate, auto_collation: bool) -> None:
        self.dataset, self.collate, self.auto_collation = dataset, collate, auto_collation

    def __call__(self, indices):
        if not self.auto_collation:
            return self.collate(self.dataset[indices])
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return self.collate(getitems(indices))
        return self.collate([self.dataset[i] for i in indices])


class IterableFetcher:
    """The next batch of this worker's pass over an iterable dataset; raises StopIteration at
    its end (a short last batch is dropped with ``drop_last``)."""

    def __init__(self, dataset, collate, batch_size: int | None, drop_last: bool) -> None:
        self.dataset, self.collate = dataset, collate
        self.batch_size, self.drop_last = batch_size, drop_last
        self.iterator = None

    def __call__(self, _):
        if self.iterator is None:
            self.iterator = iter(self.dataset)
        if self.batch_size is None:
            return self.collate(next(self.iterator))
        batch = list(islice(self.iterator, self.batch_size))
        if not batch or (self.drop_last and len(batch) < self.batch_size):
            raise StopIteration
        return self.collate(batch)


def _seed_worker(seed: int) -> None:
    from ... import backend

    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    backend.manual_seed(seed)


def _worker_loop(fetch, dataset, index_queue, result_queue, worker_id: int, num_workers: int,
                 seed: int, init_fn, done=None) -> None:
    global _worker_info
    _seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    failed = None
    if init_fn is not None:
        try:
            init_fn(worker_id)
        except Exception:
            failed = _WorkerError(worker_id, traceback.format_exc())
    while True:
        task = index_queue.get()
        if task is None or (done is not None and done.is_set()):
            break  # the loader is closing: skip the batches still queued
        key, payload = task
        if failed is not None:
            result_queue.put((key, worker_id, failed))
            continue
        try:
            data = fetch(payload)
        except StopIteration:
            data = _Exhausted()
        except Exception:
            data = _WorkerError(worker_id, traceback.format_exc())
        result_queue.put((key, worker_id, data))
    if done is not None and done.is_set():
        # Nobody reads the results any more: exit without waiting for the queue's feeder
        # thread to push them into a full pipe (that wait is what took seconds per worker).
        result_queue.cancel_join_thread()
        result_queue.close()


class WorkerPool:
    """``num_workers`` processes for one pass over the data, fed index batches (map-style) or
    batch requests (iterable) and read back through one result queue."""

    def __init__(self, loader, fetch) -> None:
        context = loader.multiprocessing_context
        if context is None or isinstance(context, str):
            context = multiprocessing.get_context(context)
        self.num_workers = n = loader.num_workers
        base_seed = int(numpy_stream(loader.generator).integers(0, 1 << 62))
        self.timeout = loader.timeout
        self.index_queues = [context.Queue() for _ in range(n)]
        self.result_queue = context.Queue()
        self.done = context.Event()  # set by close(): workers stop and drop their results
        self.workers = []
        for k in range(n):
            w = context.Process(target=_worker_loop, daemon=True, args=(
                fetch, loader.dataset, self.index_queues[k], self.result_queue, k, n,
                base_seed + k, loader.worker_init_fn, self.done))
            w.start()
            self.workers.append(w)

    def send(self, worker: int, key: int, payload) -> None:
        self.index_queues[worker].put((key, payload))

    def receive(self):
        """(key, worker id, data) of the next finished batch; raises on a timeout or a dead
        worker instead of waiting for ever."""
        waited = 0.0
        while True:
            step = _POLL_S if not self.timeout else min(_POLL_S, self.timeout - waited)
            try:
                return self.result_queue.get(timeout=step)
            except queue.Empty:
                waited += step
            dead = [w for w in self.workers if not w.is_alive()]
            if dead:
                raise RuntimeError(f"DataLoader worker (pid {dead[0].pid}) exited unexpectedly "
                                   f"with exit code {dead[0].exitcode}")
            if self.timeout and waited >= self.timeout:
                raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds waiting "
                                   "for a batch from its workers")

    def close(self) -> None:
        """Stop the workers (PyTorch's shutdown): set the done event, wake each worker with
        None, give them ``_CLOSE_S`` in all to exit, then terminate whatever is still running
        (a long ``__getitem__``), so leaving a loop early costs milliseconds, not seconds."""
        if self.done.is_set():
            return
        self.done.set()
        for q in self.index_queues:
            q.put(None)
        deadline = time.monotonic() + _CLOSE_S
        for w in self.workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self.workers:
            if w.is_alive():
                w.terminate()
                w.join(timeout=_CLOSE_S)
        for q in (*self.index_queues, self.result_queue):
            q.cancel_join_thread()
            q.close()


def run_map(loader, pool: WorkerPool, batches, on_drawn):
    """Yield the batches of ``batches`` (an iterator of index lists) loaded by ``pool``,
    keeping ``prefetch_factor × num_workers`` of them in flight. ``on_drawn(key)`` runs right
    after each index batch is drawn (the loader snapshots its sampler there)."""
    n = pool.num_workers
    sent = received = 0
    ready: dict[int, object] = {}

    def send_one() -> bool:
        nonlocal sent
        indices = next(batches, None)
        if indices is None:
            return False
        on_drawn(sent)
        pool.send(sent % n, sent, indices)
        sent += 1
        return True

    for _ in range((loader.prefetch_factor or 2) * n):
        if not send_one():
            break
    while received < sent:
        if loader.in_order:
            while received not in ready:
                key, _, data = pool.receive()
                ready[key] = data
            key, data = received, ready.pop(received)
        else:
            key, _, data = pool.receive()
        received += 1
        if isinstance(data, _WorkerError):
            data.reraise()
        send_one()
        yield key, data


def run_iterable(loader, pool: WorkerPool):
    """Yield batches from each worker's copy of an iterable dataset, taking the workers in
    turn (PyTorch's order) and dropping each from the rotation once its copy is exhausted."""
    n = pool.num_workers
    active = list(range(n))
    owner: dict[int, int] = {}
    sent = received = 0
    ready: dict[int, object] = {}
    turn = 0

    def send_one() -> None:
        nonlocal sent, turn
        if not active:
            return
        worker = active[turn % len(active)]
        turn += 1
        owner[sent] = worker
        pool.send(worker, sent, None)
        sent += 1

    for _ in range((loader.prefetch_factor or 2) * n):
        send_one()
    while received < sent:
        while received not in ready:
            key, _, data = pool.receive()
            ready[key] = data
        data = ready.pop(received)
        worker = owner.pop(received)
        received += 1
        if isinstance(data, _WorkerError):
            data.reraise()
        if isinstance(data, _Exhausted):
            if worker in active:
                active.remove(worker)
            send_one()  # keep the others busy: this request brought nothing
            continue
        send_one()
        yield data

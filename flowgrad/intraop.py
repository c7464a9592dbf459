"""Intra-op threads: the element-wise work of one op spread over several cores (PyTorch's
``torch.set_num_threads`` / ``torch.get_num_threads``).

NumPy's ufuncs run on one thread, but they release the GIL inside their loops. So an op over a
large array can cut it into row blocks and hand the blocks to a small pool of Python threads,
which NumPy then runs at once; the GEMMs already use the BLAS library's own threads. Arrays
under ``MIN_ELEMENTS`` numbers stay on the calling thread, where handing work over would cost
more than it saves. Blocks call no BLAS routine (OpenBLAS queues calls made from several
threads at once; their sums are einsums), except inside ``blas_single()``, which holds the
BLAS to one thread so that each block's many small products run at once (attention's).

The number of threads defaults to ``OMP_NUM_THREADS`` when set (as PyTorch's does), else to
the cores this process may run on. ``set_num_threads(n)`` sets it and also caps the BLAS
threads (through threadpoolctl, where installed). OpenBLAS's idle threads spinning after a
product would take cores from these threads: flowgrad's ``__init__`` shortens that spin.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import denormal

__all__ = ["get_num_threads", "set_num_threads"]

# below this many numbers an op stays on one thread
MIN_ELEMENTS = 1 << 19


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()  # .inside: this thread is running a block already


def get_num_threads() -> int:
    """The number of threads an op may use."""
    return _threads


def set_num_threads(n: int) -> None:
    """Let each op use ``n`` threads for its element-wise work, and cap the BLAS threads at
    ``n`` (threadpoolctl, where installed)."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    n = operator.index(n)
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n}")
    _set_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return
    threadpool_limits(limits=n, user_api="blas")


def _set_threads(n: int) -> None:
    global _threads
    with _pool_lock:
        if n != _threads:
            _drop_pool()
        _threads = n


def restart_pool() -> None:
    """Let the pool's threads end; the next op starts new ones (which take the current
    per-thread settings, such as ``denormal.set_flush_denormal``'s)."""
    with _pool_lock:
        _drop_pool()


def _drop_pool() -> None:
    """End the pool's threads (the caller holds ``_pool_lock``)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


@contextlib.contextmanager
def limited(n: int | None):
    """Within the block, ops use at most ``n`` threads (``None``: unchanged); the BLAS threads
    are left to the caller (``flowgrad.utils.threads.limit_threads`` caps both)."""
    before = _threads
    if n is not None:
        _set_threads(max(1, min(int(n), before)))
    try:
        yield
    finally:
        _set_threads(before)


_blas = None  # threadpoolctl's controller of the loaded BLAS libraries (False: none)
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


def _blas_libraries():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            found = ThreadpoolController().select(user_api="blas")
            _blas = found if found.lib_controllers else False
        except Exception:  # threadpoolctl comes with scikit-learn; without it, no limit
            _blas = False
    return _blas


def blas_single_available() -> bool:
    """Whether ``blas_single`` can hold the BLAS to one thread (threadpoolctl is installed and
    found the BLAS library)."""
    return bool(_blas_libraries())


@contextlib.contextmanager
def blas_single():
    """Within the block, the BLAS libraries run each call on the calling thread, so that calls
    from several intra-op threads run at once instead of queueing for the BLAS's threads. The
    first of overlapping blocks sets the limit and the last restores it."""
    global _blas_users, _blas_limiter
    blas = _blas_libraries()
    if not blas:
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = blas.limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _reset_after_fork() -> None:
    """A forked child (a DataLoader worker) has none of the parent's pool threads."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def spans(rows: int, numbers: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) covering ``rows`` rows that hold ``numbers`` numbers in all:
    one per thread for a large array, a single range for a small one (or inside a block)."""
    threads = _threads
    if threads <= 1 or numbers < MIN_ELEMENTS or rows < 2 or getattr(_local, "inside", False):
        return [(0, rows)]
    threads = min(threads, rows, max(1, numbers // (MIN_ELEMENTS // 2)))
    bounds = [rows * i // threads for i in range(threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def blas_spans(rows: int, numbers: int) -> list[tuple[int, int]]:
    """``spans`` for kernels that call the BLAS: a single range where the BLAS cannot be held
    to one thread (several threads' products would queue at it)."""
    ranges = spans(rows, numbers)
    if len(ranges) > 1 and not blas_single_available():
        return [(0, rows)]
    return ranges


def run_blas_single(kernel, ranges: list[tuple[int, int]]) -> list:
    """``run`` for kernels that call the BLAS: the BLAS held to one thread while several
    blocks run at once, so that their products run side by side."""
    if len(ranges) == 1:
        return [kernel(*ranges[0])]
    with blas_single():
        return run(kernel, ranges)


def _inside(kernel, start: int, stop: int):
    _local.inside = True
    try:
        return kernel(start, stop)
    finally:
        _local.inside = False


def run(kernel, ranges: list[tuple[int, int]]) -> list:
    """``kernel(start, stop)`` for every range, the first on this thread and the others in the
    pool; their results in order. An exception in any block is raised here."""
    global _pool
    if len(ranges) == 1:
        return [kernel(*ranges[0])]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, _threads - 1),
                                       thread_name_prefix="flowgrad-intraop",
                                       initializer=denormal.thread_start)
        pool = _pool
    futures = [pool.submit(_inside, kernel, a, b) for a, b in ranges[1:]]
    first = _inside(kernel, *ranges[0])
    return [first] + [f.result() for f in futures]


def for_rows(kernel, rows: int, numbers: int, threads: bool = True) -> list:
    """``run(kernel, spans(rows, numbers))``: a kernel over row blocks of a (rows, ...) array
    of ``numbers`` numbers; ``threads=False`` (a GPU array) runs it once over all rows."""
    return run(kernel, spans(rows, numbers) if threads else [(0, rows)])

"""Thread-pool limits for flowgrad's intra-op threads, BLAS and OpenMP (threadpoolctl, which
ships with scikit-learn).

Small GEMMs run fastest on one thread, and processes sharing a machine should not fight over
its cores: ``with limit_threads(1): ...`` caps the pools inside the block, and
``limit_threads(None)`` changes nothing. Without threadpoolctl both are no-ops.
"""

from __future__ import annotations

import contextlib

from .. import intraop

__all__ = ["limit_threads"]


@contextlib.contextmanager
def limit_threads(threads: int | None, user_api: str | None = None):
    """A context manager capping flowgrad's intra-op threads and the BLAS (and, unless
    ``user_api="blas"``, OpenMP) thread pools at ``threads``; ``None`` leaves them as they
    are."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        threadpool_limits = None
    with intraop.limited(threads), (contextlib.nullcontext() if threadpool_limits is None
                                    else threadpool_limits(limits=int(threads),
                                                           user_api=user_api)):
        yield

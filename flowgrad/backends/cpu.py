"""``fg.backends.cpu``: the CPU's vector capability (PyTorch's ``get_cpu_capability``) and how the
memory of freed arrays is reused.

NumPy takes each array's memory from the C library's ``malloc``. glibc serves blocks above its
mmap threshold (128 KiB, raised only as blocks are freed) with freshly mapped pages and hands the
top of its heap back to the system past its trim threshold, so a training step that frees and
re-allocates the same multi-megabyte activations every step pays a page fault, and the zeroing of
a page, for every 4 KiB it touches again. On the convnet benchmark that was about 6,600 faults
and 12 ms of an 85 ms step (``benchmarks/RESULTS.md``). :func:`reuse_freed_memory` raises both
thresholds with ``mallopt`` so that freed arrays go back to the heap and are reused; flowgrad
calls it at import on glibc. Set ``FLOWGRAD_MALLOC_REUSE=0`` in the environment to keep the C
library's defaults. The cost: up to ``keep_bytes`` of freed memory stays with the process
instead of going back to the system. Other C libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc refuses more on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_GLIBC_DEFAULT = 128 * 2**10

_state = {"enabled": False}


def _glibc():
    """The process's glibc (None elsewhere: mallopt's thresholds are glibc's)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


def reuse_freed_memory(enabled: bool = True, keep_bytes: int = 256 * 2**20) -> bool:
    """Let freed arrays (up to 32 MiB each) be reused from the heap, keeping up to ``keep_bytes``
    of freed memory, instead of mapping fresh pages every time (``enabled=False``: glibc's
    initial fixed thresholds of 128 KiB, without its dynamic raising). Returns whether the C
    library took the setting (False where it is not glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    if enabled:
        if keep_bytes < _MMAP_THRESHOLD_MAX:
            raise ValueError(f"reuse_freed_memory: keep_bytes must be at least "
                             f"{_MMAP_THRESHOLD_MAX} (32 MiB), got {keep_bytes}")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and libc.mallopt(
            _M_TRIM_THRESHOLD, min(int(keep_bytes), 2**31 - 1))
    else:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT) and libc.mallopt(
            _M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
    _state["enabled"] = bool(ok) and enabled
    return bool(ok)


def is_reusing_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` is in effect."""
    return _state["enabled"]


def get_cpu_capability() -> str:
    """The widest vector instruction set NumPy dispatches to here, in PyTorch's words:
    "AVX512", "AVX2" or "DEFAULT"."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features
    if features.get("AVX512F") and features.get("AVX512BW") and features.get("AVX512VL"):
        return "AVX512"
    if features.get("AVX2") and features.get("FMA3"):
        return "AVX2"
    return "DEFAULT"


if os.environ.get("FLOWGRAD_MALLOC_REUSE", "1") != "0":
    reuse_freed_memory()

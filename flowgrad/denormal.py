"""Flushing denormal numbers to zero on the CPU (PyTorch's ``torch.set_flush_denormal``).

A float below the smallest normal number (1.2e-38 in float32, 2.2e-308 in float64) is stored
"denormal", and x86 cores compute on such numbers tens of times more slowly. They appear where
a softmax saturates: exp of a score far below the row's maximum, then every product the
backward pass makes with it. A sequence model whose attention has collapsed onto one slot can
run several times slower per update for that reason alone.

``set_flush_denormal(True)`` sets the FTZ and DAZ bits of the SSE control register (MXCSR), as
PyTorch does: results that would be denormal become 0, and denormal inputs are read as 0. The
register belongs to each thread, so the mode is set on the calling thread and on flowgrad's
intra-op threads; the BLAS library's own threads keep theirs. Supported on x86-64 Linux with
glibc (the register is reached through ``fegetenv``/``fesetenv``); elsewhere the call changes
nothing and returns False, as PyTorch's does where it is unsupported.

Where flowgrad differs: NumPy copies a denormal into a new array unchanged, so
``fg.tensor([1e-323], dtype=fg.float64)`` keeps it (PyTorch's constructor gives 0); the first
operation on it reads 0.

Flushing changes results that depend on numbers that small. Adam, for one, divides by the
square root of its second moment: a gradient of 1e-20 squares to a denormal, which flushing
turns into 0, so the step lr·g/(√v + eps) falls from about lr to about 1e-12·lr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading

__all__ = ["set_flush_denormal"]

_FTZ_DAZ = 0x8040           # MXCSR bits: flush to zero (15), denormals are zero (6)
_MXCSR_OFFSET = 28          # glibc's x86-64 fenv_t: the x87 environment, then __mxcsr
_FENV_BYTES = 64            # fenv_t is 32 bytes there; room to spare

_enabled = False
_libm = None
_lock = threading.Lock()


def _library():
    """glibc's libm on x86-64 Linux, else None (unsupported)."""
    global _libm
    if _libm is None:
        machine = platform.machine().lower()
        if (platform.system() != "Linux" or machine not in ("x86_64", "amd64")
                or platform.libc_ver()[0] != "glibc"):
            _libm = False
        else:
            name = ctypes.util.find_library("m") or "libm.so.6"
            try:
                _libm = ctypes.CDLL(name)
            except OSError:  # pragma: no cover - libm always present with glibc
                _libm = False
    return _libm or None


def _apply(mode: bool) -> bool:
    """Set or clear FTZ and DAZ on the calling thread; False if that cannot be done."""
    libm = _library()
    if libm is None:
        return False
    env = ctypes.create_string_buffer(_FENV_BYTES)
    if libm.fegetenv(env) != 0:  # pragma: no cover - fegetenv does not fail on glibc
        return False
    raw = bytearray(env.raw)
    end = _MXCSR_OFFSET + 4
    csr = int.from_bytes(raw[_MXCSR_OFFSET:end], "little")
    csr = csr | _FTZ_DAZ if mode else csr & ~_FTZ_DAZ
    raw[_MXCSR_OFFSET:end] = csr.to_bytes(4, "little")
    return libm.fesetenv(ctypes.create_string_buffer(bytes(raw), _FENV_BYTES)) == 0


def thread_start() -> None:
    """Give a new worker thread the current mode (flowgrad's intra-op pool calls it)."""
    if _enabled:
        _apply(True)


def set_flush_denormal(mode: bool) -> bool:
    """Disable (``True``) or re-enable (``False``) denormal floats on the CPU, on this thread
    and flowgrad's intra-op threads. Returns True where supported (x86-64 Linux with glibc)
    and the mode was set, else False — as ``torch.set_flush_denormal``.

    Example:
        >>> fg.set_flush_denormal(True)
        True
        >>> fg.tensor([1e-39]) * 1.0
        tensor([0.])
    """
    global _enabled
    from . import intraop

    with _lock:
        if not _apply(bool(mode)):
            return False
        _enabled = bool(mode)
    intraop.restart_pool()  # its threads start again with the new mode
    return True

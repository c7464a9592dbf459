"""``fg.accelerator``: PyTorch's device-agnostic queries (the accelerator is CUDA via CuPy)."""

from __future__ import annotations

from . import backend, cuda


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False):  # noqa: ARG001 (PyTorch's signature)
    """``device(type='cuda')`` where CuPy sees a GPU, else None (as PyTorch's CPU build)."""
    if not backend.cuda_available():
        return None
    from .devices import device

    return device("cuda")


def current_device_index() -> int:
    return cuda.current_device()

"""``fg.cuda``: PyTorch's ``torch.cuda`` queries, answered from CuPy. Without CuPy and a CUDA
device they answer as PyTorch's CPU build does: ``is_available()`` False, ``device_count()`` 0,
and the calls that need a device raise an AssertionError (a ``DeviceError`` too)."""

from __future__ import annotations

from . import backend


def _require(what: str):
    if not backend.cuda_available():
        raise backend.CudaUnavailableError(
            f"cuda.{what}(): no CUDA device: flowgrad needs CuPy (pip install cupy-cuda12x) and "
            "a CUDA GPU (PyTorch's CPU build says 'Torch not compiled with CUDA enabled')")
    return backend.cupy


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    if not backend.cuda_available():
        return 0
    return int(backend.cupy.cuda.runtime.getDeviceCount())


def is_initialized() -> bool:
    return backend.cuda_available()


def current_device() -> int:
    return int(_require("current_device").cuda.runtime.getDevice())


def set_device(device) -> None:
    cp = _require("set_device")
    index = device if isinstance(device, int) else (getattr(device, "index", None) or 0)
    cp.cuda.Device(index).use()


def get_device_properties(device=None) -> dict:
    cp = _require("get_device_properties")
    return cp.cuda.runtime.getDeviceProperties(_index(device, cp))


def get_device_name(device=None) -> str:
    props = get_device_properties(device)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _index(device, cp) -> int:
    if device is None:
        return int(cp.cuda.runtime.getDevice())
    if isinstance(device, int):
        return device
    from .devices import device as _device

    return _device(device).index or 0


def synchronize(device=None) -> None:  # noqa: ARG001 (PyTorch's signature)
    _require("synchronize").cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    """Accepted; flowgrad's one seed (``fg.manual_seed``) covers the GPU stream too."""


manual_seed_all = manual_seed


def empty_cache() -> None:
    if backend.cuda_available():
        backend.cupy.get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None) -> int:  # noqa: ARG001 (PyTorch's signature)
    if not backend.cuda_available():
        return 0
    return int(backend.cupy.get_default_memory_pool().used_bytes())


def memory_reserved(device=None) -> int:  # noqa: ARG001 (PyTorch's signature)
    if not backend.cuda_available():
        return 0
    return int(backend.cupy.get_default_memory_pool().total_bytes())


max_memory_allocated = memory_allocated


def is_bf16_supported(including_emulation: bool = True) -> bool:  # noqa: ARG001
    return False  # NumPy and CuPy have no bfloat16

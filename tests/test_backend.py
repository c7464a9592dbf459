"""The array backend: NumPy always; CuPy (marked gpu) when it is installed with a device."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import backend
from flowgrad.ops.elementwise import ToDevice

gpu = pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")


def test_numpy_is_the_default_array_module():
    x = fg.ones(2)
    assert x.xp is np and x.device == "cpu"


def test_to_device_op_moves_gradients_back():
    x = fg.randn(3, requires_grad=True)
    y = ToDevice.apply(x, "cpu")
    (y * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_unknown_device_is_a_clear_error():
    with pytest.raises(fg.DeviceError, match="expected 'cpu' or 'cuda"):
        fg.ones(2).to("tpu")
    if backend.cupy is None:
        with pytest.raises(fg.DeviceError, match="CuPy is not installed"):
            fg.ones(2).to("cuda")


def test_scatter_add_accumulates_repeats():
    target = np.zeros(4)
    backend.scatter_add(np, target, np.array([1, 1, 3]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_allclose(target, [0, 3, 0, 5])


@gpu
@pytest.mark.gpu
def test_same_code_runs_on_cupy():
    import cupy

    x = fg.randn(4, 5, device="cuda", requires_grad=True)
    w = fg.randn(3, 5).cuda().requires_grad_()
    y = fg.nn.functional.linear(x, w).relu().log_softmax(-1).mean()
    y.backward()
    assert isinstance(x.grad._data, cupy.ndarray) and x.device == "cuda"
    with pytest.raises(fg.DeviceError, match="operands are on"):
        fg.ones(2) + fg.ones(2, device="cuda")


def test_cpu_backend_reuses_freed_memory_and_names_the_capability():
    import os
    import sys

    import torch

    cpu = fg.backends.cpu
    assert cpu.get_cpu_capability() == torch.backends.cpu.get_cpu_capability()
    glibc = sys.platform.startswith("linux") and cpu._glibc() is not None
    assert cpu.is_reusing_freed_memory() == (glibc and os.environ.get(
        "FLOWGRAD_MALLOC_REUSE", "1") != "0")
    if glibc:
        assert cpu.reuse_freed_memory(False) and not cpu.is_reusing_freed_memory()
        assert cpu.reuse_freed_memory(True) and cpu.is_reusing_freed_memory()
        with pytest.raises(ValueError, match="keep_bytes must be at least"):
            cpu.reuse_freed_memory(True, keep_bytes=1024)

"""fg.set_flush_denormal against torch.set_flush_denormal."""

import platform
import threading

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import intraop

SUPPORTED = (platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")
             and platform.libc_ver()[0] == "glibc")
TINY = {np.float32: 1e-39, np.float64: 1e-310}  # denormal in each


@pytest.fixture
def flushing():
    yield
    fg.set_flush_denormal(False)


@pytest.mark.skipif(not SUPPORTED, reason="flushing denormals needs x86-64 Linux with glibc")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_denormal_matches_torch(flushing, dtype):
    torch = pytest.importorskip("torch")
    fg_dtype = fg.float32 if dtype is np.float32 else fg.float64
    torch_dtype = torch.float32 if dtype is np.float32 else torch.float64
    tiny = TINY[dtype]
    try:
        for mode in (True, False):
            assert fg.set_flush_denormal(mode) is True
            assert torch.set_flush_denormal(mode) is True
            ours = (fg.tensor([tiny, 1.0], dtype=fg_dtype) * 1.0).numpy()
            theirs = (torch.tensor([tiny, 1.0], dtype=torch_dtype) * 1.0).numpy()
            np.testing.assert_array_equal(ours, theirs)
            assert (ours[0] == 0) == mode
            # a result that underflows into the denormal range
            ours = (fg.tensor([1e-20], dtype=fg_dtype) ** 2 if dtype is np.float32
                    else fg.tensor([1e-160], dtype=fg_dtype) ** 2).numpy()
            assert (ours[0] == 0) == mode
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.skipif(not SUPPORTED, reason="flushing denormals needs x86-64 Linux with glibc")
def test_flush_denormal_reaches_the_intra_op_threads(flushing):
    def kernel(lo, hi):
        return threading.current_thread().name, np.float32(1e-39) * np.float32(1.0)

    with intraop.limited(2):
        for mode in (True, False):
            fg.set_flush_denormal(mode)
            (_, here), (name, there) = intraop.run(kernel, [(0, 1), (1, 2)])
            assert name.startswith("flowgrad-intraop")
            assert (here == 0) == mode and (there == 0) == mode


def test_flush_denormal_says_whether_it_is_supported(flushing):
    assert fg.set_flush_denormal(False) is SUPPORTED

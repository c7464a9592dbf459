import os

import numpy as np
import pytest

import flowgrad as fg


@pytest.fixture(autouse=True)
def _seed():
    fg.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def pytest_configure(config):
    """Under pytest-xdist (``-n``) each worker is one process per core: one BLAS/OpenMP thread
    each, so that the workers do not fight over the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from threadpoolctl import threadpool_limits

        config._flowgrad_thread_limit = threadpool_limits(limits=1)

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

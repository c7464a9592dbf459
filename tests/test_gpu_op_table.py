"""The whole op table on CuPy: the same code on a GPU gives the NumPy results (forward and every
input's gradient). Runs only where CuPy finds a CUDA device (pytest -m gpu)."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import backend

from opspec import run
from specs import all_specs

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and CUDA")]

SPECS = all_specs()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_op_on_gpu_matches_cpu(spec):
    cpu_out, cpu_dt, cpu_grads = run(fg, spec, "float64")
    gpu_out, gpu_dt, gpu_grads = run(fg, spec, "float64", device="cuda")
    assert cpu_dt == gpu_dt
    for a, b in zip(cpu_out, gpu_out):
        np.testing.assert_allclose(b, a, atol=1e-9, rtol=1e-7, err_msg=spec.name)
    for a, b in zip(cpu_grads or [], gpu_grads or []):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, atol=1e-9, rtol=1e-7, err_msg=spec.name)

"""Every op of the table against PyTorch: forward values, shape and dtype, and every input's
gradient under a random upstream gradient, in float32 and float64."""

import pytest

from opspec import check_against_torch
from specs import all_specs

SPECS = all_specs()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_op_matches_torch(spec, dtype, torch):
    if dtype not in spec.dtypes:
        pytest.skip(f"{spec.name} is not defined for {dtype}")
    check_against_torch(spec, dtype, torch)

"""Every differentiable op of the table against central finite differences in float64 (no
PyTorch needed)."""

import pytest

from opspec import check_finite_differences
from specs import all_specs

SPECS = [s for s in all_specs() if s.grad and s.fd and "float64" in s.dtypes]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_op_gradcheck(spec):
    check_finite_differences(spec)

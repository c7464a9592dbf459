"""Keeps "every op is tested" true: each Function under flowgrad.ops appears in the table."""

from flowgrad.ops import all_ops
from specs import all_specs


def test_every_op_is_in_the_table():
    covered = {c for s in all_specs() for c in s.covers}
    missing = sorted(op.__name__ for op in all_ops() if op not in covered)
    assert not missing, f"ops without an entry in tests/specs: {missing}"


def test_every_differentiable_op_has_a_gradient_entry():
    covered = {c for s in all_specs() if s.grad for c in s.covers}
    missing = sorted(op.__name__ for op in all_ops() if op.differentiable and op not in covered)
    assert not missing, f"differentiable ops never checked with gradients: {missing}"

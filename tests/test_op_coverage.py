"""Keeps "every op is tested" true: each Op under flowgrad.ops appears in the table."""

from flowgrad.ops import all_ops
from flowgrad.ops.elementwise import ToDevice

from specs import all_specs

# Ops that PyTorch cannot mirror in the table, with the test that covers them instead.
TESTED_ELSEWHERE = {ToDevice: "tests/test_backend.py and tests/test_gpu_op_table.py"}


def test_every_op_is_in_the_table():
    covered = {c for s in all_specs() for c in s.covers} | set(TESTED_ELSEWHERE)
    missing = sorted(op.__name__ for op in all_ops() if op not in covered)
    assert not missing, f"ops without an entry in tests/specs: {missing}"


def test_every_differentiable_op_has_a_gradient_entry():
    covered = {c for s in all_specs() if s.grad for c in s.covers} | set(TESTED_ELSEWHERE)
    missing = sorted(op.__name__ for op in all_ops() if op.differentiable and op not in covered)
    assert not missing, f"differentiable ops never checked with gradients: {missing}"


def test_covers_name_real_ops():
    ops = set(all_ops())
    stray = sorted({c.__name__ for s in all_specs() for c in s.covers} - {o.__name__ for o in ops})
    assert not stray, f"specs claim to cover classes that are not ops: {stray}"

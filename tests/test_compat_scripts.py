"""Real PyTorch scripts (pytorch/examples, pytorch/tutorials) run with only their imports changed.

See tests/compat/README.md for the table and tests/compat/harness.py for how steps are bounded
and how torch's weights, random draws, dropout masks and shuffles are given to flowgrad's run.
A script that fails today is marked xfail(strict=True) with its first error: the day it works,
the XPASS fails the suite, and the marker must go.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "compat"))
from harness import Spec, first_error, run_script

# First error of each script that does not run unchanged today (the to-do list).
XFAIL: dict = {}
# Scripts that torch 2.13 itself cannot run as published (kept vendored, not run).
SKIP = {
    "tutorials_polynomial_autograd":
        "torch 2.13 itself raises at `a.grad, ... = 0., ...`: TypeError: assigned grad expected "
        "to be a Tensor or None but got grad of type float",
}

SPECS = [
    Spec("tutorials_polynomial_tensor", compare_vars=("a", "b", "c", "d")),
    Spec("tutorials_polynomial_autograd"),
    Spec("tutorials_polynomial_custom_function"),
    Spec("tutorials_polynomial_nn"),
    Spec("tutorials_polynomial_optim"),
    Spec("tutorials_dynamic_net"),
    Spec("examples_regression"),
    Spec("examples_mnist", argv=["--epochs", "1", "--batch-size", "32"], fakes=("torchvision",)),
    Spec("examples_vae", argv=["--epochs", "1", "--batch-size", "32"], fakes=("torchvision",)),
    Spec("examples_reinforce", compare=False, fakes=("gymnasium",)),
    Spec("examples_word_language_model",
         argv=["--emsize", "16", "--nhid", "16", "--nlayers", "2", "--bptt", "10",
               "--batch_size", "4", "--epochs", "1", "--dropout", "0", "--save", "model.pt"],
         fakes=("corpus",), siblings={"model": "word_language_model_model.py"}),
    # the Transformer variant: nn.Transformer's own dropout (0.1, inside attention) draws masks
    # the harness cannot hand from torch to flowgrad, so this is a runs-only check
    Spec("examples_word_language_model", variant="transformer", compare=False,
         argv=["--model", "Transformer", "--emsize", "16", "--nhid", "16", "--nlayers", "2",
               "--nhead", "2", "--bptt", "10", "--batch_size", "4", "--epochs", "1",
               "--dropout", "0", "--save", "model.pt"],
         fakes=("corpus",), siblings={"model": "word_language_model_model.py"}),
]


def _param(spec):
    marks = []
    if spec.name in SKIP:
        marks.append(pytest.mark.skip(reason=SKIP[spec.name]))
    if spec.name in XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[spec.name]))
    name = f"{spec.name}-{spec.variant}" if spec.variant else spec.name
    return pytest.param(spec, id=name, marks=marks)


@pytest.mark.parametrize("spec", [_param(s) for s in SPECS])
def test_script_runs_unchanged(spec, torch, tmp_path):
    (tmp_path / "torch").mkdir()
    (tmp_path / "flowgrad").mkdir()
    ref = run_script(spec, "torch", tmp_path / "torch")
    assert ref.error is None, f"the harness cannot run {spec.name} under torch: {ref.error!r}"
    got = run_script(spec, "flowgrad", tmp_path / "flowgrad", ref=ref)
    if got.error is not None:
        raise AssertionError(first_error(got.error)) from got.error
    if not spec.compare:
        assert len(got.losses) == len(ref.losses)
        return
    np.testing.assert_allclose(got.losses, ref.losses, rtol=1e-4, atol=1e-6)
    for name in spec.compare_vars:
        np.testing.assert_allclose(float(got.namespace[name]), float(ref.namespace[name]),
                                   rtol=1e-4)

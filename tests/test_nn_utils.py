"""nn.utils against torch.nn.utils: gradient clipping by norm and by value, total norms, and
parameters to and from one vector."""

from __future__ import annotations

import math

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn
from flowgrad.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(3, 4), (5,), (2, 3, 2), (1,)]


def _params(m, dtype, scale=1.0, seed=0, none_at=None):
    """Parameters with given gradients (one without a gradient at ``none_at``)."""
    rng = np.random.default_rng(seed)
    ps = []
    for i, s in enumerate(SHAPES):
        p = m.nn.Parameter(m.tensor(rng.standard_normal(s).astype(dtype)))
        if i != none_at:
            p.grad = m.tensor((scale * rng.standard_normal(s)).astype(dtype))
        ps.append(p)
    return ps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(torch, dtype, norm_type, max_norm):
    tp = _params(torch, dtype, scale=2.0, none_at=1)
    fp = _params(fg, dtype, scale=2.0, none_at=1)
    t_total = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    f_total = clip_grad_norm_(iter(fp), max_norm, norm_type)   # a generator is fine
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert isinstance(f_total, fg.Tensor) and f_total.shape == () and f_total.dtype == dtype
    np.testing.assert_allclose(f_total.item(), t_total.item(), rtol=rtol)
    for a, b in zip(fp, tp):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_norm_caps_the_norm():
    ps = _params(fg, "float64", scale=10.0)
    before = clip_grad_norm_(ps, 1.0).item()
    after = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in ps))
    assert before > 10 and after == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_single_tensor_and_no_grads(torch):
    p = nn.Parameter(fg.tensor([3.0, 4.0]))
    p.grad = fg.tensor([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    empty = clip_grad_norm_([nn.Parameter(fg.zeros(2))], 1.0)
    assert empty.item() == 0.0
    assert torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(torch.zeros(2))], 1.0).item() == 0


def test_clip_grad_norm_nonfinite(torch):
    fp = _params(fg, "float32")
    fp[0].grad._data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(fp, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(fp, 1.0)       # torch scales by the non-finite norm anyway
    tp = _params(torch, "float32")
    tp[0].grad[0, 0] = float("inf")
    t_total = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    assert math.isinf(total.item()) and math.isinf(t_total.item())
    for a, b in zip(fp, tp):
        np.testing.assert_array_equal(np.isnan(a.grad.numpy()), np.isnan(b.grad.numpy()))


def test_get_total_norm_and_clip_with_norm_match_torch(torch):
    tp, fp = _params(torch, "float64"), _params(fg, "float64")
    t_total = torch.nn.utils.get_total_norm([p.grad for p in tp], 3.0)
    f_total = get_total_norm([p.grad for p in fp], 3.0)
    np.testing.assert_allclose(f_total.item(), t_total.item(), rtol=1e-12)
    torch.nn.utils.clip_grads_with_norm_(tp, 0.3, t_total)
    clip_grads_with_norm_(fp, 0.3, f_total)
    for a, b in zip(fp, tp):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("clip", [0.1, 1.0, 5.0])
def test_clip_grad_value_matches_torch(torch, clip):
    tp, fp = _params(torch, "float32", scale=2.0), _params(fg, "float32", scale=2.0)
    torch.nn.utils.clip_grad_value_(tp, clip)
    assert clip_grad_value_(fp, clip) is None
    for a, b in zip(fp, tp):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_parameters_to_vector_and_back_match_torch(torch):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    fm = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    tv = torch.nn.utils.parameters_to_vector(tm.parameters())
    fv = parameters_to_vector(fm.parameters())
    assert fv.shape == (26,) and fv.requires_grad
    np.testing.assert_array_equal(fv.detach().numpy(), tv.detach().numpy())
    (fv * fg.arange(26).float()).sum().backward()       # recorded in the graph like torch's
    np.testing.assert_array_equal(fm[0].bias.grad.numpy(), np.arange(12, 16))
    new = np.arange(26, dtype=np.float32)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new.copy()), tm.parameters())
    vector_to_parameters(fg.tensor(new), fm.parameters())
    for (k, a), (_, b) in zip(fm.named_parameters(), tm.named_parameters()):
        assert isinstance(a, nn.Parameter) and a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=k)
    with pytest.raises(TypeError, match="flowgrad Tensor"):
        vector_to_parameters(new, fm.parameters())
    with pytest.raises(ValueError, match=r"expected shape \(26,\)"):
        vector_to_parameters(fg.zeros(25), fm.parameters())

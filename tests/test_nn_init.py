"""nn.init against torch.nn.init: gains, fans, and each scheme's bound or standard deviation;
orthogonality; truncated-normal bounds; determinism under fg.manual_seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn
from flowgrad.errors import ShapeError
from flowgrad.nn import init


def _param(*shape, dtype=fg.float32):
    return nn.Parameter(fg.zeros(shape, dtype=dtype))


def _arr(t):
    return t.detach().numpy().astype(np.float64).ravel()


@pytest.mark.parametrize("name,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None)])
def test_calculate_gain_matches_torch(torch, name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(3, 4), (8, 4, 3, 3), (2, 3, 5), (6, 2, 1, 4, 2)])
def test_fans_match_torch(torch, shape):
    assert init._calculate_fan_in_and_fan_out(fg.zeros(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


def test_fans_need_two_dims():
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(fg.zeros(5))
    with pytest.raises(ValueError, match="fan_avg"):
        init.kaiming_uniform_(_param(3, 4), mode="fan_avg")


def _uniform_ok(a, lo, hi):
    n = a.size
    width = hi - lo
    assert a.min() >= lo and a.max() <= hi
    assert a.min() < lo + 0.01 * width and a.max() > hi - 0.01 * width   # reaches the bounds
    assert abs(a.mean() - (lo + hi) / 2) < 5 * width / math.sqrt(12 * n)
    assert abs(a.std() - width / math.sqrt(12)) < 0.02 * width / math.sqrt(12)


def _normal_ok(a, mean, std):
    n = a.size
    assert abs(a.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(a.std() - std) < 0.02 * std


def test_uniform_and_normal():
    w = _param(200, 300)
    assert init.uniform_(w, -0.3, 0.7) is w
    _uniform_ok(_arr(w), -0.3, 0.7)
    assert init.normal_(w, 1.5, 0.2) is w
    _normal_ok(_arr(w), 1.5, 0.2)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None   # in place, no graph
    d = _param(100, 100, dtype=fg.float64)
    init.normal_(d)
    assert d.dtype == np.float64
    _normal_ok(_arr(d), 0.0, 1.0)


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 5.0 / 3])
def test_xavier_matches_torch_formula(torch, shape, gain):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))            # Glorot & Bengio 2010
    w = _param(*shape)
    init.xavier_uniform_(w, gain=gain)
    bound = math.sqrt(3.0) * std
    _uniform_ok(_arr(w), -bound, bound)
    tw = torch.nn.init.xavier_uniform_(torch.empty(shape), gain=gain)
    assert abs(tw.abs().max().item() - np.abs(_arr(w)).max()) < 0.01 * bound
    init.xavier_normal_(w, gain=gain)
    _normal_ok(_arr(w), 0.0, std)
    tstd = torch.nn.init.xavier_normal_(torch.empty(shape), gain=gain).std().item()
    assert abs(_arr(w).std() - tstd) < 0.03 * std


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
@pytest.mark.parametrize("a,mode,nonlinearity", [
    (0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
    (0, "fan_out", "relu"), (0.2, "fan_out", "leaky_relu"), (0, "fan_in", "tanh"),
    (0, "FAN_IN", "linear")])
def test_kaiming_matches_torch_formula(torch, shape, a, mode, nonlinearity):
    te = torch.empty(shape)
    fan = torch.nn.init._calculate_correct_fan(te, mode.lower())
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)   # He et al. 2015
    w = _param(*shape)
    init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    bound = math.sqrt(3.0) * std
    _uniform_ok(_arr(w), -bound, bound)
    tmax = torch.nn.init.kaiming_uniform_(te, a=a, mode=mode,
                                          nonlinearity=nonlinearity).abs().max().item()
    assert abs(tmax - np.abs(_arr(w)).max()) < 0.01 * bound
    init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    _normal_ok(_arr(w), 0.0, std)
    tstd = torch.nn.init.kaiming_normal_(te, a=a, mode=mode, nonlinearity=nonlinearity).std()
    assert abs(_arr(w).std() - tstd.item()) < 0.03 * std


def test_kaiming_zero_element_is_a_no_op():
    w = _param(0, 3)
    with pytest.warns(UserWarning, match="no-op"):
        assert init.kaiming_uniform_(w) is w


@pytest.mark.parametrize("shape", [(20, 50), (50, 20), (30, 30), (16, 4, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal(shape, gain):
    w = _param(*shape, dtype=fg.float64)
    init.orthogonal_(w, gain=gain)
    flat = w.detach().numpy().reshape(shape[0], -1)
    rows, cols = flat.shape
    if rows <= cols:
        np.testing.assert_allclose(flat @ flat.T, gain ** 2 * np.eye(rows), atol=1e-10)
    else:
        np.testing.assert_allclose(flat.T @ flat, gain ** 2 * np.eye(cols), atol=1e-10)


def test_orthogonal_float32_and_errors():
    w = _param(64, 64)
    init.orthogonal_(w)
    np.testing.assert_allclose(w.detach().numpy() @ w.detach().numpy().T, np.eye(64), atol=1e-5)
    with pytest.raises(ShapeError, match="2 or more dimensions"):
        init.orthogonal_(_param(5))


def test_orthogonal_is_haar_distributed():
    # the sign correction makes the diagonal of R positive: entries are symmetric about 0
    vals = []
    for s in range(200):
        fg.manual_seed(s)
        w = _param(3, 3, dtype=fg.float64)
        init.orthogonal_(w)
        vals.append(w.detach().numpy()[0, 0])
    assert abs(np.mean(vals)) < 0.15


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 2.0, 0.0, 1.5), (0.0, 1.0, 1.0, 3.0)])
def test_trunc_normal_bounds_and_moments(torch, mean, std, a, b):
    w = _param(400, 250, dtype=fg.float64)
    init.trunc_normal_(w, mean, std, a, b)
    x = _arr(w)
    assert x.min() >= a and x.max() <= b
    t = torch.nn.init.trunc_normal_(torch.empty(400, 250, dtype=torch.float64), mean, std, a, b)
    assert abs(x.mean() - t.mean().item()) < 0.02 * std
    assert abs(x.std() - t.std().item()) < 0.02 * std


def test_trunc_normal_rejects_empty_interval():
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(_param(3), a=1.0, b=1.0)
    with pytest.raises(ValueError, match="would not finish"):
        init.trunc_normal_(_param(3), a=20.0, b=21.0)


def test_deterministic_fills_match_torch(torch):
    for shape in ((3, 5), (4, 4)):
        w = _param(*shape)
        np.testing.assert_array_equal(init.eye_(w).detach().numpy(),
                                      torch.nn.init.eye_(torch.empty(shape)).numpy())
    for shape, groups in (((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 2, 3, 3, 3), 1)):
        w = _param(*shape)
        np.testing.assert_array_equal(
            init.dirac_(w, groups).detach().numpy(),
            torch.nn.init.dirac_(torch.empty(shape), groups).numpy())
    w = _param(2, 3)
    np.testing.assert_array_equal(init.constant_(w, 0.3).detach().numpy(),
                                  np.full((2, 3), 0.3, np.float32))
    np.testing.assert_array_equal(init.ones_(w).detach().numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(w).detach().numpy(), np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="2 dimensions"):
        init.eye_(_param(2, 2, 2))
    with pytest.raises(ShapeError, match="3, 4, or 5"):
        init.dirac_(_param(2, 2))


def test_sparse_zeros_per_column():
    w = _param(40, 30)
    init.sparse_(w, sparsity=0.25, std=0.5)
    a = w.detach().numpy()
    assert ((a == 0).sum(axis=0) == 10).all()
    assert abs(a[a != 0].std() - 0.5) < 0.05


def test_seeded_and_stream_advances():
    fg.manual_seed(11)
    a = init.normal_(_param(5, 5)).detach().numpy()
    b = init.normal_(_param(5, 5)).detach().numpy()
    fg.manual_seed(11)
    np.testing.assert_array_equal(init.normal_(_param(5, 5)).detach().numpy(), a)
    assert not np.array_equal(a, b)


def test_works_on_plain_tensors_and_float64():
    t = fg.zeros(10, 10, dtype=fg.float64)
    init.xavier_uniform_(t)
    assert t.dtype == np.float64 and np.abs(t.numpy()).max() <= math.sqrt(6 / 20)

"""fg.nn.Maxout against the torch composition Linear(in, out * pieces) -> view(*, out, pieces) ->
max over pieces (PyTorch has no Maxout layer): outputs and the gradients of the input, the weight
and the bias, float64 and float32; state_dict both ways; bad input."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import ShapeError

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=1e-5, rtol=1e-4), "float64": dict(atol=1e-12, rtol=1e-10)}


def _torch_maxout(linear, x, out_features, pieces):
    z = linear(x)
    return z.view(*x.shape[:-1], out_features, pieces).max(-1).values


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lead,bias", [((6,), True), ((2, 3), False), ((), True)])
def test_matches_torch_composition(dtype, lead, bias):
    n_in, n_out, pieces = 7, 4, 3
    torch.manual_seed(0)
    tl = torch.nn.Linear(n_in, n_out * pieces, bias=bias).to(getattr(torch, dtype))
    fm = fg.nn.Maxout(n_in, n_out, pieces, bias=bias, dtype=getattr(fg, dtype))
    fm.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal(lead + (n_in,)).astype(dtype)
    w_out = rng.standard_normal(lead + (n_out,)).astype(dtype)

    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_maxout(tl, xt, n_out, pieces)
    (yt * torch.tensor(w_out)).sum().backward()
    xf = fg.tensor(x, requires_grad=True)
    yf = fm(xf)
    (yf * fg.tensor(w_out)).sum().backward()

    assert tuple(yf.shape) == tuple(yt.shape) == lead + (n_out,)
    assert yf.dtype == getattr(fg, dtype)
    np.testing.assert_allclose(yf.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    tparams = dict(tl.named_parameters())
    names = [name for name, _ in fm.named_parameters()]
    assert names == list(tparams)
    for name, p in fm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), **TOL[dtype])


def test_state_dict_layout_and_round_trip():
    fm = fg.nn.Maxout(5, 3, 2)
    sd = fm.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert tuple(sd["weight"].shape) == (6, 5) and tuple(sd["bias"].shape) == (6,)
    bound = 1 / np.sqrt(5)
    assert np.abs(sd["weight"].numpy()).max() <= bound
    tl = torch.nn.Linear(5, 6)
    tl.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd.items()})  # flowgrad -> torch
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    expect = _torch_maxout(tl, torch.tensor(x), 3, 2).detach().numpy()
    np.testing.assert_allclose(fm(fg.tensor(x)).detach().numpy(), expect, atol=1e-6)
    assert "pieces=2" in repr(fm)


def test_one_piece_is_linear():
    fm = fg.nn.Maxout(4, 3, 1)
    lin = fg.nn.Linear(4, 3)
    lin.load_state_dict(fm.state_dict())
    x = fg.randn(5, 4)
    np.testing.assert_allclose(fm(x).detach().numpy(), lin(x).detach().numpy())


def test_bad_input():
    fm = fg.nn.Maxout(5, 3, 2)
    with pytest.raises(ShapeError, match=r"4 features.*\(2, 4\).*expected 5"):
        fm(fg.randn(2, 4))
    with pytest.raises(ShapeError, match="shape \\(\\)"):
        fm(fg.tensor(1.0))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="pieces must be a positive integer"):
            fg.nn.Maxout(5, 3, bad)
    with pytest.raises(ValueError, match="out_features must be a positive integer, got 0"):
        fg.nn.Maxout(5, 0, 2)

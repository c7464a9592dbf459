"""The flat-plane depthwise convolution (groups == channels, stride 1) against PyTorch: output
and the gradients of input, weight and bias, in both float dtypes, with padding on every side,
dilation and kernels that are not square; other grouped convs still take im2col."""

import numpy as np
import pytest
import torch

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad.ops import depthwise

CASES = [
    dict(shape=(2, 3, 7, 6), kernel=(3, 3), padding=1, dilation=1, bias=True),
    dict(shape=(3, 4, 9, 8), kernel=(5, 3), padding=(2, 0), dilation=1, bias=False),
    dict(shape=(2, 5, 10, 9), kernel=(3, 3), padding=2, dilation=2, bias=True),
    dict(shape=(1, 2, 6, 6), kernel=(2, 2), padding="same", dilation=1, bias=True),
    dict(shape=(4, 70, 5, 5), kernel=(3, 3), padding=0, dilation=1, bias=True),
    dict(shape=(2, 3, 5, 4), kernel=(3, 2), padding=(3, 2), dilation=1, bias=True),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['shape']}-{c['kernel']}-{c['padding']}")
def test_depthwise_matches_torch(case, dtype, tol):
    rng = np.random.default_rng(0)
    N, C, H, W = case["shape"]
    a = rng.standard_normal(case["shape"]).astype(dtype)
    wa = rng.standard_normal((C, 1, *case["kernel"])).astype(dtype)
    ba = rng.standard_normal(C).astype(dtype)
    kw = dict(padding=case["padding"], dilation=case["dilation"], groups=C)
    assert depthwise.applies(a.shape, wa.shape, C, (1, 1))
    fx, fw, fb = (fg.tensor(v, requires_grad=True) for v in (a, wa, ba))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (a, wa, ba))
    fy = F.conv2d(fx, fw, fb if case["bias"] else None, **kw)
    ty = torch.nn.functional.conv2d(tx, tw, tb if case["bias"] else None, **kw)
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    assert fy.dtype == (fg.float32 if dtype == np.float32 else fg.float64)
    g = rng.standard_normal(ty.shape).astype(dtype)
    fy.backward(fg.tensor(g))
    ty.backward(torch.tensor(g))
    for f, t in [(fx, tx), (fw, tw)] + ([(fb, tb)] if case["bias"] else []):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=tol * 10, atol=tol * 10)


def test_depthwise_gradient_of_one_input_only():
    rng = np.random.default_rng(1)
    a, wa = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((3, 1, 3, 3))
    fx, fw = fg.tensor(a), fg.tensor(wa, requires_grad=True)
    tx, tw = torch.tensor(a), torch.tensor(wa, requires_grad=True)
    F.conv2d(fx, fw, padding=1, groups=3).sum().backward()
    torch.nn.functional.conv2d(tx, tw, padding=1, groups=3).sum().backward()
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), atol=1e-12)
    fx, fw = fg.tensor(a, requires_grad=True), fg.tensor(wa)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(wa)
    F.conv2d(fx, fw, padding=1, groups=3).sum().backward()
    torch.nn.functional.conv2d(tx, tw, padding=1, groups=3).sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("shape,w_shape,groups,stride", [
    ((1, 4, 6, 6), (4, 1, 3, 3), 4, (2, 2)),    # stride 2
    ((1, 4, 6, 6), (8, 1, 3, 3), 4, (1, 1)),    # channel multiplier 2
    ((1, 4, 6, 6), (4, 2, 3, 3), 2, (1, 1)),    # two channels per group
])
def test_other_grouped_convs_take_im2col(shape, w_shape, groups, stride):
    assert not depthwise.applies(shape, w_shape, groups, stride)


def test_depthwise_gradcheck():
    rng = np.random.default_rng(2)
    x = fg.tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    w = fg.tensor(rng.standard_normal((3, 1, 3, 2)), requires_grad=True)
    b = fg.tensor(rng.standard_normal(3), requires_grad=True)
    assert fg.autograd.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 1), groups=3),
                                 (x, w, b))

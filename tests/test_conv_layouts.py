"""Convolution on both memory layouts (channels-last and channels-first im2col), against
PyTorch, and a conv output flowing through relu, max-pool and view."""

import numpy as np
import pytest
import torch

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import intraop
from flowgrad.ops import conv as conv_ops


def _pair(shape, seed, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape)
    return fg.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


# col2im's three ways (channels-last): a GEMM per kernel offset, one for all offsets, and
# blocks of images (one image here) on 3 intra-op threads, each multiplying and adding its own
# (in the channels-first layout, "shared" splits the images over the threads as well)
ONE_GEMM = pytest.mark.parametrize("col2im", ["per_offset", "one_gemm", "shared"])


def _col2im_mode(monkeypatch, mode: str) -> None:
    monkeypatch.setattr(conv_ops, "ONE_GEMM_COLUMNS", 4096 if mode == "one_gemm" else 0)
    if mode == "shared":
        monkeypatch.setattr(intraop, "MIN_ELEMENTS", 8)
        monkeypatch.setattr(intraop, "_threads", 3)
        monkeypatch.setattr(conv_ops, "SHARED_BLOCK", 1)


@ONE_GEMM
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (2, 2, 1), (1, 1, 2)])
def test_conv_matches_torch_on_both_layouts(monkeypatch, layout, groups, stride, dilation,
                                            col2im):
    monkeypatch.setattr(conv_ops, "LAYOUT", layout)
    _col2im_mode(monkeypatch, col2im)
    fx, tx = _pair((3, 4, 9, 8), 0)
    fw, tw = _pair((6, 4 // groups, 3, 3), 1)
    fb, tb = _pair((6,), 2)
    kw = dict(stride=stride, padding=1, dilation=dilation, groups=groups)
    fy = F.conv2d(fx, fw, fb, **kw)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
    gy = np.random.default_rng(3).standard_normal(ty.shape)
    fy.backward(fg.tensor(gy))
    ty.backward(torch.tensor(gy))
    for f, t in ((fx, tx), (fw, tw), (fb, tb)):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), atol=1e-11)


@ONE_GEMM
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_on_both_layouts(monkeypatch, layout, groups, col2im):
    monkeypatch.setattr(conv_ops, "LAYOUT", layout)
    _col2im_mode(monkeypatch, col2im)
    fx, tx = _pair((2, 6, 4, 6), 4)
    fw, tw = _pair((6, 3, 3, 3), 5)
    kw = dict(stride=2, padding=1, groups=groups, dilation=2 if groups == 2 else 1)
    fy = F.conv_transpose2d(fx, fw, None, **kw)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, None, **kw)
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
    fy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), atol=1e-11)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_conv_output_flows_through_relu_pool_view(monkeypatch, layout):
    monkeypatch.setattr(conv_ops, "LAYOUT", layout)
    fx, tx = _pair((2, 3, 8, 8), 6)
    fw, tw = _pair((5, 3, 3, 3), 7)
    fy = F.conv2d(fx, fw, padding=1)
    assert fy.is_contiguous()
    fz = F.max_pool2d(fy.relu(), 2)
    fout = (fz.view(2, -1) * fg.arange(80, dtype=fg.float64)).sum()
    tz = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(tx, tw, padding=1).relu(), 2)
    tout = (tz.view(2, -1) * torch.arange(80, dtype=torch.float64)).sum()
    np.testing.assert_allclose(fout.item(), tout.item(), rtol=1e-12)
    fout.backward()
    tout.backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), atol=1e-10)

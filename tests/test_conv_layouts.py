"""Convolution memory layouts: the channels-last path's NCHW views, and the chunked col2im,
against PyTorch."""

import numpy as np
import pytest
import torch

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad.ops import conv as conv_ops


def _pair(shape, seed, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape)
    return fg.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


@pytest.mark.parametrize("chunk", [1, 37, 1 << 22])
@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (2, 2, 1), (1, 1, 2)])
def test_channels_last_conv_matches_torch(monkeypatch, chunk, groups, stride, dilation):
    monkeypatch.setattr(conv_ops, "LAYOUT", "nhwc")
    monkeypatch.setattr(conv_ops, "_COL2IM_CHUNK", chunk)
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


@pytest.mark.parametrize("chunk", [1, 1 << 22])
def test_conv_transpose_chunked_col2im(monkeypatch, chunk):
    monkeypatch.setattr(conv_ops, "LAYOUT", "nhwc")
    monkeypatch.setattr(conv_ops, "_COL2IM_CHUNK", chunk)
    fx, tx = _pair((2, 5, 4, 6), 4)
    fw, tw = _pair((5, 3, 3, 3), 5)
    fy = F.conv_transpose2d(fx, fw, None, stride=2, padding=1)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, None, stride=2, padding=1)
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
    fy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), atol=1e-11)


def test_channels_last_output_flows_through_relu_pool_flatten(monkeypatch):
    """An NHWC-laid conv output is an ordinary NCHW tensor to every later op; max-pool and relu
    keep its layout, flatten and view copy where needed, and gradients match PyTorch."""
    monkeypatch.setattr(conv_ops, "LAYOUT", "nhwc")
    fx, tx = _pair((2, 3, 8, 8), 6)
    fw, tw = _pair((5, 3, 3, 3), 7)
    fy = F.conv2d(fx, fw, padding=1)
    assert not fy.is_contiguous() and fy.contiguous().is_contiguous()
    fz = F.max_pool2d(fy.relu(), 2)
    assert conv_ops._is_channels_last(fz.detach().numpy())
    fout = (fz.view(2, -1) * fg.arange(80, dtype=fg.float64)).sum()
    tz = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(tx, tw, padding=1).relu(), 2)
    tout = (tz.view(2, -1) * torch.arange(80, dtype=torch.float64)).sum()
    np.testing.assert_allclose(fout.item(), tout.item(), rtol=1e-12)
    fout.backward()
    tout.backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), atol=1e-10)

"""Convolution and pooling: errors that name the op and the shapes, float32 kept end to end,
and behaviour the op table does not reach (NaN in max-pool, backward twice, no-grad)."""

import re

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import DTypeError, ShapeError
from flowgrad.nn.functional import conv as F
from flowgrad.ops import conv as conv_ops
from flowgrad.ops.conv import Conv2d, ConvTranspose2d

from opspec import check_against_torch
from specs.conv import SPECS as CONV_TABLE


def t(*shape, dtype=fg.float32, grad=False):
    a = np.random.default_rng(0).standard_normal(shape)
    return fg.tensor(a, dtype=dtype, requires_grad=grad)


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(t(2, 3, 8, 8), t(16, 4, 3, 3)),
     "conv2d: input has 3 channels (shape (2, 3, 8, 8)) but the weight (16, 4, 3, 3) expects 4 "
     "(groups=1)"),
    (lambda: F.conv2d(t(2, 4, 8, 8), t(6, 4, 3, 3), groups=2),
     "conv2d: input has 4 channels (shape (2, 4, 8, 8)) but the weight (6, 4, 3, 3) expects 8 "
     "(groups=2)"),
    (lambda: F.conv2d(t(2, 4, 8, 8), t(5, 2, 3, 3), groups=2),
     "conv2d: weight (5, 2, 3, 3) has 5 in dimension 0, which is not divisible by groups=2"),
    (lambda: F.conv2d(t(8, 8), t(4, 1, 3, 3)),
     "conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (8, 8)"),
    (lambda: F.conv2d(t(1, 1, 8, 8), t(4, 1, 3)),
     "conv2d: expected a 4-D weight (C_out, C_in/groups, kh, kw), got shape (4, 1, 3)"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), t(3)),
     "conv2d: bias has shape (3,) but the weight (4, 2, 3, 3) gives 4 output channels"),
    (lambda: F.conv2d(t(1, 2, 4, 4), t(4, 2, 5, 5)),
     "conv2d: the input (1, 2, 4, 4) padded to 4x4 is smaller than the kernel 5x5"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), stride=2, padding="same"),
     "conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), padding="full"),
     "conv2d: padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), padding=-1),
     "conv2d: padding must be non-negative, got -1"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), stride=0),
     "conv2d: stride must be positive, got (0, 0)"),
    (lambda: F.conv2d(t(1, 2, 8, 8), t(4, 2, 3, 3), stride=(1, 2, 3)),
     "conv2d: stride must be an int or a pair of ints, got (1, 2, 3)"),
    (lambda: F.conv1d(t(2, 3, 8), t(4, 2, 3)),
     "conv1d: input has 3 channels (shape (2, 3, 8)) but the weight (4, 2, 3) expects 2 "
     "(groups=1)"),
    (lambda: F.conv1d(t(2, 3, 8, 8), t(4, 3, 3)),
     "conv1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape (2, 3, 8, 8)"),
    (lambda: F.conv_transpose2d(t(1, 3, 4, 4), t(4, 2, 3, 3)),
     "conv_transpose2d: input has 3 channels (shape (1, 3, 4, 4)) but the weight (4, 2, 3, 3) "
     "expects 4 (groups=1)"),
    (lambda: F.conv_transpose2d(t(1, 4, 4, 4), t(4, 2, 3, 3), stride=2, output_padding=2),
     "conv_transpose2d: output_padding (2, 2) must be smaller than either stride (2, 2) or "
     "dilation (1, 1)"),
    (lambda: F.conv_transpose2d(t(1, 4, 1, 1), t(4, 2, 1, 1), padding=1),
     "conv_transpose2d: input (1, 4, 1, 1) and weight (4, 2, 1, 1) with padding"),
    (lambda: F.max_pool2d(t(1, 2, 8, 8), 3, padding=2),
     "max_pool2d: padding (2, 2) must be between 0 and half the kernel size (3, 3)"),
    (lambda: F.max_pool2d(t(1, 2, 3, 3), 4),
     "max_pool2d: the input (1, 2, 3, 3) with padding (0, 0) is smaller than the kernel (4, 4)"),
    (lambda: F.max_pool2d(t(2, 3), 2),
     "max_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (2, 3)"),
    (lambda: F.avg_pool2d(t(1, 2, 4, 4), 2, divisor_override=0),
     "avg_pool2d: divisor_override must be non-zero"),
    (lambda: F.avg_pool1d(t(1, 2, 4), (2, 3)),
     "avg_pool1d: kernel_size must be an int or a 1-tuple, got (2, 3)"),
    (lambda: F.adaptive_avg_pool2d(t(1, 2, 4, 4), (0, 2)),
     "adaptive_avg_pool2d: output_size must be positive, got (0, 2)"),
    (lambda: Conv2d.apply(t(2, 3, 8, 8), t(16, 4, 3, 3), None, 1, 0, 1, 1),
     "conv2d: input has 3 channels (shape (2, 3, 8, 8)) but the weight (16, 4, 3, 3) expects 4"),
])
def test_shape_errors_name_the_op_and_shapes(call, message):
    with pytest.raises(ShapeError, match=re.escape(message)):
        call()


def test_mixed_dtypes_raise():
    with pytest.raises(DTypeError, match=re.escape("conv2d: input is float32 but weight is "
                                                   "float64")):
        F.conv2d(t(1, 2, 5, 5), t(3, 2, 3, 3, dtype=fg.float64))
    with pytest.raises(DTypeError, match="conv_transpose2d: input is float64 but weight is "
                                         "float64, bias float32"):
        F.conv_transpose2d(t(1, 2, 5, 5, dtype=fg.float64), t(2, 3, 3, 3, dtype=fg.float64),
                           t(3))


CALLS = {
    "conv2d": lambda x, w: F.conv2d(x, w[:4], padding="same", groups=1),
    "conv2d_groups": lambda x, w: F.conv2d(x, w[:4, :2], stride=2, padding=1, groups=2),
    "conv1d": lambda x, w: F.conv1d(x.flatten(2), w[:4, :, 0], padding=1),
    "conv_transpose2d": lambda x, w: F.conv_transpose2d(x, w[:, :2], stride=2, padding=1,
                                                        output_padding=1),
    "max_pool2d": lambda x, w: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    "avg_pool2d": lambda x, w: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_pool2d_divisor": lambda x, w: F.avg_pool2d(x, 2, divisor_override=3),
    "adaptive_avg_pool2d": lambda x, w: F.adaptive_avg_pool2d(x, (3, 4)),
    "adaptive_avg_pool2d_1": lambda x, w: F.adaptive_avg_pool2d(x, 1),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_float32_stays_float32(name):
    x = t(2, 4, 7, 7, grad=True)
    w = t(4, 4, 3, 3, grad=True)
    out = CALLS[name](x, w)
    assert out.dtype == fg.float32, f"{name}: output is {out.dtype}"
    assert out._data.dtype == np.float32
    (out * out).sum().backward()
    assert x.grad.dtype == fg.float32, f"{name}: input grad is {x.grad.dtype}"
    if w.grad is not None:
        assert w.grad.dtype == fg.float32, f"{name}: weight grad is {w.grad.dtype}"


def test_outputs_are_contiguous_nchw():
    x = t(2, 3, 6, 6, grad=True)
    w = t(4, 3, 3, 3, grad=True)
    out = F.conv2d(x, w, padding=1)
    assert out._data.flags.c_contiguous
    out.sum().backward()
    assert x.grad._data.flags.c_contiguous and w.grad._data.flags.c_contiguous


def test_max_pool_propagates_nan_like_torch():
    a = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    a[0, 0, 1, 1] = np.nan  # last position of the first window
    a[0, 0, 2, 2] = np.nan  # first position of the last window
    out, idx = F.max_pool2d(fg.tensor(a), 2, return_indices=True)
    assert np.isnan(out.numpy()[0, 0, 0, 0]) and np.isnan(out.numpy()[0, 0, 1, 1])
    assert out.numpy()[0, 0, 0, 1] == 7 and out.numpy()[0, 0, 1, 0] == 13
    assert idx.numpy()[0, 0].tolist() == [[5, 7], [13, 10]]


def test_max_pool_backward_twice_with_retain_graph():
    x = t(1, 2, 4, 4, grad=True)
    out = F.max_pool2d(x, 2)
    out.sum().backward(retain_graph=True)
    first = x.grad.numpy().copy()
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    assert first.sum() == 8  # one maximum per window takes the whole gradient


def test_indices_need_no_grad_and_match_values():
    x = t(2, 3, 6, 5)
    out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert idx.dtype == fg.int64 and not idx.requires_grad
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2),
                                  out.numpy().reshape(2, 3, -1))


def test_no_grad_records_nothing():
    x = t(1, 2, 5, 5, grad=True)
    w = t(3, 2, 3, 3, grad=True)
    with fg.no_grad():
        out = F.conv2d(x, w)
    assert not out.requires_grad and out.grad_fn is None


CONV_SPECS = [s for s in CONV_TABLE if Conv2d in s.covers or ConvTranspose2d in s.covers]


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("spec", CONV_SPECS, ids=lambda s: s.name)
def test_both_memory_layouts_match_torch(spec, layout, torch, monkeypatch):
    """Each conv runs channels-last or channels-first by size; force each on every entry."""
    monkeypatch.setattr(conv_ops, "LAYOUT", layout)
    check_against_torch(spec, "float64", torch)
    check_against_torch(spec, "float32", torch)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_inplace_change_of_a_saved_input_is_caught(layout, monkeypatch):
    monkeypatch.setattr(conv_ops, "LAYOUT", layout)
    x = t(2, 3, 4, 4)
    w = t(5, 3, 1, 1, grad=True)  # a 1x1 kernel: its im2col matrix is a view of x
    out = F.conv2d(x, w)
    x.add_(1.0)
    with pytest.raises(fg.GraphError, match="modified in place"):
        out.sum().backward()

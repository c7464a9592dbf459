"""Op table, convolution and pooling: conv1d/conv2d (stride, padding incl. 'same', dilation,
groups), transposed conv, max/avg pooling (padding, ceil mode, indices) and adaptive pooling.

Shapes stay small: the finite-difference check perturbs every input element.
"""

import numpy as np

from flowgrad.ops import linalg as L
from flowgrad.ops import reduction as R
from flowgrad.ops.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d

from opspec import OpSpec


def F(m):
    """torch.nn.functional or flowgrad.nn.functional (same names and signatures)."""
    return m.nn.functional


def distinct(*shape, scale=0.1):
    """Inputs without ties (a scaled permutation), so max-pool's argmax is stable under FD."""
    n = int(np.prod(shape))
    return lambda r: [(r.permutation(n).reshape(shape) - n / 2) * scale]


TOL = (1e-4, 1e-4)  # float32 GEMMs sum in a different order than PyTorch's kernels


def conv(name, fn, shapes, **kw):
    return OpSpec(name, fn, shapes=shapes, covers=(Conv2d,), tol32=TOL, **kw)


def convt(name, fn, shapes, **kw):
    return OpSpec(name, fn, shapes=shapes, covers=(ConvTranspose2d,), tol32=TOL, **kw)


def maxpool(name, fn, shape, **kw):
    return OpSpec(name, fn, make=distinct(*shape), covers=(MaxPool2d,), **kw)


def avgpool(name, fn, shape, **kw):
    return OpSpec(name, fn, shapes=(shape,), covers=(AvgPool2d,), **kw)


SPECS = [
    # --- conv2d ----------------------------------------------------------------------------------
    conv("conv2d", lambda m, x, w, b: F(m).conv2d(x, w, b),
         ((2, 3, 5, 5), (4, 3, 3, 3), (4,))),
    conv("conv2d_stride_padding", lambda m, x, w: F(m).conv2d(x, w, None, 2, (1, 2)),
         ((1, 2, 6, 7), (3, 2, 3, 2))),
    conv("conv2d_stride_tuple", lambda m, x, w, b: F(m).conv2d(x, w, b, stride=(1, 3), padding=1),
         ((2, 2, 5, 7), (2, 2, 2, 3), (2,))),
    conv("conv2d_dilation", lambda m, x, w: F(m).conv2d(x, w, padding=1, dilation=(2, 1)),
         ((1, 2, 7, 7), (2, 2, 2, 3))),
    conv("conv2d_dilation_stride",
         lambda m, x, w: F(m).conv2d(x, w, stride=2, padding=(2, 0), dilation=2),
         ((1, 2, 8, 9), (3, 2, 3, 3))),
    conv("conv2d_groups", lambda m, x, w, b: F(m).conv2d(x, w, b, (1, 2), 1, 1, 2),
         ((1, 4, 5, 5), (6, 2, 3, 3), (6,))),
    conv("conv2d_depthwise", lambda m, x, w: F(m).conv2d(x, w, padding=1, groups=3),
         ((2, 3, 5, 5), (3, 1, 3, 3))),
    conv("conv2d_depthwise_multiplier", lambda m, x, w: F(m).conv2d(x, w, stride=2, groups=2),
         ((1, 2, 6, 6), (6, 1, 2, 2))),
    conv("conv2d_same_odd", lambda m, x, w, b: F(m).conv2d(x, w, b, padding="same"),
         ((1, 2, 5, 6), (3, 2, 3, 3), (3,))),
    conv("conv2d_same_even_kernel", lambda m, x, w: F(m).conv2d(x, w, padding="same"),
         ((1, 2, 5, 6), (3, 2, 4, 2))),
    conv("conv2d_same_dilation",
         lambda m, x, w: F(m).conv2d(x, w, padding="same", dilation=(2, 3)),
         ((1, 2, 6, 7), (2, 2, 2, 3))),
    conv("conv2d_valid", lambda m, x, w: F(m).conv2d(x, w, padding="valid"),
         ((2, 2, 4, 5), (3, 2, 2, 2))),
    conv("conv2d_1x1", lambda m, x, w, b: F(m).conv2d(x, w, b),
         ((2, 4, 3, 3), (5, 4, 1, 1), (5,))),
    conv("conv2d_1x1_groups", lambda m, x, w, b: F(m).conv2d(x, w, b, groups=2),
         ((2, 4, 3, 3), (6, 2, 1, 1), (6,))),
    conv("conv2d_1x1_stride", lambda m, x, w: F(m).conv2d(x, w, stride=2),
         ((1, 3, 5, 5), (2, 3, 1, 1))),
    conv("conv2d_kernel_covers_input", lambda m, x, w: F(m).conv2d(x, w),
         ((2, 2, 3, 3), (4, 2, 3, 3))),
    conv("conv2d_unbatched", lambda m, x, w, b: F(m).conv2d(x, w, b, padding=1),
         ((2, 5, 5), (3, 2, 3, 3), (3,))),
    conv("conv2d_weight_only", lambda m, x, w: F(m).conv2d(x, w, padding=1),
         ((2, 2, 4, 4), (3, 2, 3, 3)), grad_inputs=(1,)),
    conv("conv2d_input_only", lambda m, x, w: F(m).conv2d(x, w, stride=2),
         ((2, 2, 5, 5), (3, 2, 3, 3)), grad_inputs=(0,)),
    # --- conv1d ----------------------------------------------------------------------------------
    conv("conv1d", lambda m, x, w, b: F(m).conv1d(x, w, b, stride=2, padding=1),
         ((2, 3, 8), (4, 3, 3), (4,))),
    conv("conv1d_same_dilation", lambda m, x, w: F(m).conv1d(x, w, padding="same", dilation=2),
         ((2, 2, 9), (3, 2, 4))),
    conv("conv1d_groups_unbatched", lambda m, x, w: F(m).conv1d(x, w, groups=2),
         ((4, 7), (4, 2, 3))),
    # --- conv_transpose2d / 1d -------------------------------------------------------------------
    convt("conv_transpose2d", lambda m, x, w, b: F(m).conv_transpose2d(x, w, b),
          ((2, 3, 3, 3), (3, 2, 3, 3), (2,))),
    convt("conv_transpose2d_stride_output_padding",
          lambda m, x, w: F(m).conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
          ((1, 2, 3, 4), (2, 3, 3, 3))),
    convt("conv_transpose2d_groups_dilation",
          lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, (2, 1), (0, 1), (1, 0), 2, (1, 2)),
          ((1, 4, 3, 3), (4, 2, 2, 3), (4,))),
    convt("conv_transpose2d_stride3_pad",
          lambda m, x, w: F(m).conv_transpose2d(x, w, stride=3, padding=(2, 1), output_padding=2),
          ((1, 2, 3, 3), (2, 2, 3, 2))),
    convt("conv_transpose2d_unbatched",
          lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, stride=2),
          ((2, 3, 3), (2, 3, 2, 2), (3,))),
    convt("conv_transpose1d",
          lambda m, x, w, b: F(m).conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
          ((2, 3, 5), (3, 2, 3), (2,))),
    # --- max pooling -----------------------------------------------------------------------------
    maxpool("max_pool2d", lambda m, x: F(m).max_pool2d(x, 2), (2, 3, 4, 6)),
    maxpool("max_pool2d_k3_s2_p1", lambda m, x: F(m).max_pool2d(x, 3, 2, 1), (1, 2, 7, 7)),
    maxpool("max_pool2d_overlap", lambda m, x: F(m).max_pool2d(x, (2, 3), stride=1),
            (2, 2, 4, 5)),
    maxpool("max_pool2d_ceil", lambda m, x: F(m).max_pool2d(x, 3, 2, ceil_mode=True),
            (1, 2, 7, 6)),
    maxpool("max_pool2d_dilation", lambda m, x: F(m).max_pool2d(x, 2, 1, 1, dilation=2),
            (1, 2, 6, 7)),
    maxpool("max_pool2d_indices",
            lambda m, x: F(m).max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True),
            (2, 2, 5, 6)),
    maxpool("max_pool2d_indices_dilation",
            lambda m, x: F(m).max_pool2d(x, (2, 3), (1, 2), (1, 1), 2, return_indices=True),
            (1, 2, 6, 7)),
    maxpool("max_pool2d_unbatched", lambda m, x: F(m).max_pool2d(x, 2, return_indices=True),
            (3, 4, 5)),
    maxpool("max_pool2d_global_int32_argmax", lambda m, x: F(m).max_pool2d(x, 12, 1, 6,
                                                                           return_indices=True),
            (1, 2, 12, 12)),
    maxpool("max_pool1d", lambda m, x: F(m).max_pool1d(x, 3, 2, 1, ceil_mode=True,
                                                        return_indices=True), (2, 3, 8)),
    maxpool("max_pool1d_unbatched", lambda m, x: F(m).max_pool1d(x, 2), (3, 7)),
    # --- average pooling -------------------------------------------------------------------------
    avgpool("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, 2), (2, 3, 4, 6)),
    avgpool("avg_pool2d_k3_s2_p1", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1), (1, 2, 7, 7)),
    avgpool("avg_pool2d_exclude_pad",
            lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 7, 6)),
    avgpool("avg_pool2d_ceil_include_pad",
            lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, ceil_mode=True), (1, 2, 8, 7)),
    avgpool("avg_pool2d_ceil_exclude_pad",
            lambda m, x: F(m).avg_pool2d(x, (3, 2), (2, 3), (1, 1), True, False), (1, 2, 8, 7)),
    avgpool("avg_pool2d_divisor_override",
            lambda m, x: F(m).avg_pool2d(x, 2, 1, 1, divisor_override=3), (1, 2, 5, 5)),
    avgpool("avg_pool2d_unbatched", lambda m, x: F(m).avg_pool2d(x, (2, 3)), (3, 4, 6)),
    avgpool("avg_pool1d", lambda m, x: F(m).avg_pool1d(x, 3, 2, 1, True, False), (2, 3, 8)),
    # --- adaptive average pooling (composed: one mean, or two averaging matmuls) ----------------
    OpSpec("adaptive_avg_pool2d_global", lambda m, x: F(m).adaptive_avg_pool2d(x, 1),
           shapes=((2, 3, 4, 5),), covers=(R.Mean,)),
    OpSpec("adaptive_avg_pool2d_divisible", lambda m, x: F(m).adaptive_avg_pool2d(x, (2, 3)),
           shapes=((2, 3, 4, 6),), covers=(R.Mean,)),
    OpSpec("adaptive_avg_pool2d_uneven", lambda m, x: F(m).adaptive_avg_pool2d(x, (4, 3)),
           shapes=((2, 3, 7, 5),), covers=(L.MatMul,)),
    OpSpec("adaptive_avg_pool2d_upsample", lambda m, x: F(m).adaptive_avg_pool2d(x, 5),
           shapes=((1, 2, 3, 4),), covers=(L.MatMul,)),
    OpSpec("adaptive_avg_pool2d_none", lambda m, x: F(m).adaptive_avg_pool2d(x, (None, 3)),
           shapes=((2, 2, 3, 7),)),
    OpSpec("adaptive_avg_pool2d_unbatched", lambda m, x: F(m).adaptive_avg_pool2d(x, (3, 2)),
           shapes=((2, 5, 5),)),
    OpSpec("adaptive_avg_pool1d", lambda m, x: F(m).adaptive_avg_pool1d(x, 4),
           shapes=((2, 3, 9),)),
]

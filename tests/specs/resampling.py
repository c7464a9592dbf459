"""Op table, resampling and friends: interpolate (nearest, nearest-exact, linear, bilinear),
pixel_shuffle/unshuffle, diag/diagonal, index_add, cdist."""

import numpy as np

from flowgrad.ops import elementwise as E
from flowgrad.ops import indexing as I
from flowgrad.ops import reduction as R
from flowgrad.ops import resample as RS
from flowgrad.ops import shape as S

from opspec import OpSpec


def F(m):
    return m.nn.functional


SPECS = [
    # --- interpolate ------------------------------------------------------------------------------
    OpSpec("interp_nearest_1d_size", lambda m, x: F(m).interpolate(x, size=7),
           shapes=((2, 3, 5),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_1d_down", lambda m, x: F(m).interpolate(x, scale_factor=0.6),
           shapes=((2, 3, 8),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_2d_scale", lambda m, x: F(m).interpolate(x, scale_factor=2),
           shapes=((2, 2, 3, 4),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_2d_size", lambda m, x: F(m).interpolate(x, size=(5, 3)),
           shapes=((1, 2, 3, 4),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_2d_scale_recompute",
           lambda m, x: F(m).interpolate(x, scale_factor=(2.3, 1.7), recompute_scale_factor=True),
           shapes=((1, 2, 3, 4),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_exact_1d", lambda m, x: F(m).interpolate(x, size=7,
                                                                      mode="nearest-exact"),
           shapes=((2, 3, 5),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_nearest_exact_2d", lambda m, x: F(m).interpolate(x, scale_factor=(1.5, 0.5),
                                                                      mode="nearest-exact"),
           shapes=((1, 2, 4, 6),), covers=(RS.UpsampleNearest,)),
    OpSpec("interp_linear", lambda m, x: F(m).interpolate(x, size=9, mode="linear"),
           shapes=((2, 3, 4),), covers=(RS.UpsampleLinear,)),
    OpSpec("interp_linear_align", lambda m, x: F(m).interpolate(x, scale_factor=2.5,
                                                                  mode="linear",
                                                                  align_corners=True),
           shapes=((2, 3, 4),), covers=(RS.UpsampleLinear,)),
    OpSpec("interp_linear_down", lambda m, x: F(m).interpolate(x, scale_factor=0.4,
                                                                 mode="linear"),
           shapes=((2, 3, 9),), covers=(RS.UpsampleLinear,)),
    OpSpec("interp_bilinear", lambda m, x: F(m).interpolate(x, size=(5, 7), mode="bilinear"),
           shapes=((2, 2, 3, 4),), covers=(RS.UpsampleLinear,)),
    OpSpec("interp_bilinear_align", lambda m, x: F(m).interpolate(
        x, size=(6, 2), mode="bilinear", align_corners=True), shapes=((1, 3, 4, 5),),
           covers=(RS.UpsampleLinear,)),
    OpSpec("interp_bilinear_scale", lambda m, x: F(m).interpolate(
        x, scale_factor=(1.7, 0.6), mode="bilinear"), shapes=((1, 2, 4, 6),),
           covers=(RS.UpsampleLinear,)),
    OpSpec("upsample_module_bilinear",
           lambda m, x: m.nn.UpsamplingBilinear2d(scale_factor=2)(x), shapes=((1, 2, 3, 3),),
           covers=(RS.UpsampleLinear,)),
    OpSpec("upsample_module_nearest",
           lambda m, x: m.nn.Upsample(scale_factor=3, mode="nearest")(x), shapes=((1, 2, 3),),
           covers=(RS.UpsampleNearest,)),
    # --- pixel shuffle ----------------------------------------------------------------------------
    OpSpec("pixel_shuffle", lambda m, x: F(m).pixel_shuffle(x, 2), shapes=((2, 8, 3, 4),),
           covers=(S.Reshape, S.Permute)),
    OpSpec("pixel_shuffle_batchless", lambda m, x: m.nn.PixelShuffle(3)(x), shapes=((9, 2, 2),),
           covers=(S.Reshape, S.Permute)),
    OpSpec("pixel_unshuffle", lambda m, x: F(m).pixel_unshuffle(x, 2), shapes=((2, 3, 4, 6),),
           covers=(S.Reshape, S.Permute)),
    OpSpec("pixel_unshuffle_5d", lambda m, x: m.nn.PixelUnshuffle(2)(x),
           shapes=((2, 1, 2, 4, 2),), covers=(S.Reshape, S.Permute)),
    # --- diag, diagonal, index_add ----------------------------------------------------------------
    OpSpec("diag_1d", lambda m, x: [m.diag(x), x.diag(2), x.diag(-1)], shapes=((4,),),
           covers=(I.Scatter,)),
    OpSpec("diag_2d", lambda m, x: [x.diag(), m.diag(x, 1), x.diag(-2)], shapes=((3, 5),),
           covers=(I.GetItem,)),
    OpSpec("diagonal", lambda m, x: [m.diagonal(x, 1, -1, 0), x.diagonal(-1, 1, 2)],
           shapes=((3, 4, 5),), covers=(I.GetItem,)),
    OpSpec("index_add", lambda m, x, s: x.index_add(1, m.tensor([4, 0, 4]), s, alpha=0.5),
           shapes=((3, 5), (3, 3)), covers=(I.ScatterAdd,)),
    OpSpec("index_add_dim0", lambda m, x, s: m.index_add(x, 0, m.tensor([1, 1]), s),
           shapes=((3, 2, 2), (2, 2, 2)), covers=(I.ScatterAdd,)),
    # --- cdist ------------------------------------------------------------------------------------
    OpSpec("cdist", lambda m, x, y: m.cdist(x, y), shapes=((4, 3), (5, 3)), covers=(R.Norm2,)),
    OpSpec("cdist_batched", lambda m, x, y: m.cdist(x, y), shapes=((2, 4, 3), (2, 5, 3)),
           covers=(R.Norm2,)),
    OpSpec("cdist_p1", lambda m, x, y: m.cdist(x, y, p=1), shapes=((4, 3), (5, 3)),
           avoid_kinks=0, covers=(E.Abs,)),
    OpSpec("cdist_p3", lambda m, x, y: m.cdist(x, y, p=3.0), shapes=((3, 2), (4, 2)),
           covers=(E.Pow,)),
    OpSpec("cdist_pinf", lambda m, x, y: m.cdist(x, y, p=float("inf")), shapes=((3, 4), (2, 4)),
           covers=(R.AMax,)),
    # a large batch: torch takes its matrix-product path for p=2 (values agree within tolerance)
    OpSpec("cdist_large", lambda m, x, y: m.cdist(x, y), shapes=((30, 3), (27, 3)),
           covers=(R.Norm2,), fd=False, tol32=(1e-4, 1e-4), tol64=(1e-9, 1e-7)),
    OpSpec("unique", lambda m, x: m.unique((x * 2).round(), return_inverse=True,
                                           return_counts=True), shapes=((4, 5),), grad=False),
    OpSpec("unique_dim", lambda m, x: m.unique(x, dim=0, return_inverse=True,
                                               return_counts=True),
           make=lambda r: [np.array([[1.0, 2.0], [0.5, 3.0], [1.0, 2.0]])], grad=False),
]

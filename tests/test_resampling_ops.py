"""Behaviour of interpolate, pixel_shuffle, diag, unique, cdist, scatter_ and index_add that the
op table cannot show: ATen's index computations over many sizes, error messages, module reprs
and the in-place rules."""

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn
from flowgrad.errors import DTypeError, GraphError, ShapeError


def _cases():
    for mode, aligns in (("nearest", (None,)), ("nearest-exact", (None,)),
                         ("linear", (False, True)), ("bilinear", (False, True))):
        for align in aligns:
            yield mode, align


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("mode", "align"), list(_cases()))
def test_interpolate_matches_torch_over_many_sizes(torch, mode, align, dtype):
    rng = np.random.default_rng(0)
    sizes = [dict(size=o) for o in range(1, 14)]
    sizes += [dict(scale_factor=s) for s in (0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 2.3, 3.7)]
    sizes += [dict(scale_factor=s, recompute_scale_factor=True) for s in (0.7, 2.3, 3.7)]
    spatial = (1,) if mode == "linear" else (2,) if mode == "bilinear" else (1, 2)
    for n in range(1, 8):
        for kw in sizes:
            for k in spatial:
                shape = (1, 2) + (n, n + 2)[:k]
                a = rng.standard_normal(shape).astype(dtype)
                if k == 2 and "size" in kw:
                    kw = dict(size=(kw["size"], kw["size"] + 1))
                try:
                    want = torch.nn.functional.interpolate(torch.tensor(a), mode=mode,
                                                           align_corners=align, **kw).numpy()
                except RuntimeError:  # an empty output: refused by both
                    with pytest.raises(ShapeError, match="greater than 0"):
                        F.interpolate(fg.tensor(a), mode=mode, align_corners=align, **kw)
                    continue
                got = F.interpolate(fg.tensor(a), mode=mode, align_corners=align, **kw).numpy()
                assert got.shape == want.shape, (shape, kw)
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{mode} {align} {shape} {kw}")


def test_interpolate_backward_is_a_scatter_add_of_the_gradient():
    x = fg.ones(1, 1, 2, 2, requires_grad=True)
    F.interpolate(x, scale_factor=3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 2, 2), 9.0))
    y = fg.ones(1, 1, 3, requires_grad=True)
    F.interpolate(y, size=7, mode="linear", align_corners=True).sum().backward()
    assert y.grad.numpy().sum() == pytest.approx(7.0)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(size=4, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (dict(), ValueError, "either size or scale_factor should be defined"),
    (dict(size=(4, 4, 4)), ValueError, "same number of spatial dimensions"),
    (dict(scale_factor=(2, 2, 2)), ValueError, "same number of spatial dimensions"),
    (dict(size=(4.0, 3)), TypeError, "expected size"),
    (dict(size=4, align_corners=True), ValueError, "align_corners option can only be set"),
    (dict(size=4, mode="nearest-exact", align_corners=False), ValueError, "align_corners"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "not meaningful with an explicit"),
    (dict(size=4, mode="cubic"), NotImplementedError, "got cubic"),
    (dict(size=4, mode="linear"), NotImplementedError, "linear mode needs 3D input"),
    (dict(size=4, mode="trilinear"), NotImplementedError, "trilinear mode needs 5D input"),
    (dict(size=4, mode="nearest", antialias=True), ValueError, "Anti-alias option"),
    (dict(size=(0, 3)), ShapeError, "greater than 0"),
    (dict(scale_factor=0.1), ShapeError, "greater than 0"),
])
def test_interpolate_errors(torch, kwargs, error, match):
    a = np.zeros((1, 1, 3, 4), dtype=np.float32)
    with pytest.raises(error, match=match):
        F.interpolate(fg.tensor(a), **kwargs)
    with pytest.raises((ValueError, TypeError, RuntimeError, NotImplementedError)):  # as torch
        torch.nn.functional.interpolate(torch.tensor(a), **kwargs)


def test_interpolate_refuses_bilinear_on_3d_unsupported_modes_and_integer_inputs():
    for mode in ("bicubic", "area"):
        with pytest.raises(NotImplementedError, match="not implemented in flowgrad"):
            F.interpolate(fg.zeros(1, 1, 3, 3), size=4, mode=mode)
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D input"):
        F.interpolate(fg.zeros(1, 1, 3), size=4, mode="bilinear")
    with pytest.raises(DTypeError):
        F.interpolate(fg.zeros(1, 1, 3, dtype=fg.int64), size=4)


def test_upsample_modules_repr_and_forward(torch):
    pairs = [(nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
             (nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True),
              torch.nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True)),
             (nn.Upsample(scale_factor=(2, 3)), torch.nn.Upsample(scale_factor=(2, 3))),
             (nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(
                 scale_factor=2)),
             (nn.UpsamplingBilinear2d(size=5), torch.nn.UpsamplingBilinear2d(size=5)),
             (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
             (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2))]
    a = np.random.default_rng(0).standard_normal((1, 4, 4, 6)).astype(np.float32)
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(fg.tensor(a)).numpy(), theirs(torch.tensor(a)).numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("fn", "shape", "factor", "match"), [
    (F.pixel_shuffle, (1, 5, 3, 3), 2, "divisible by the square of upscale_factor"),
    (F.pixel_shuffle, (4, 3), 2, "at least 3 dimensions"),
    (F.pixel_shuffle, (1, 4, 3, 3), 0, "positive upscale_factor"),
    (F.pixel_unshuffle, (1, 5, 3, 4), 2, "height to be divisible"),
    (F.pixel_unshuffle, (1, 5, 4, 3), 2, "width to be divisible"),
])
def test_pixel_shuffle_errors(fn, shape, factor, match):
    with pytest.raises(ShapeError, match=match):
        fn(fg.zeros(*shape), factor)


def test_pixel_unshuffle_inverts_pixel_shuffle():
    x = fg.randn(2, 12, 3, 5)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())


def test_diag_errors_and_integer_input():
    with pytest.raises(ShapeError, match="Supports 1D or 2D"):
        fg.zeros(2, 3, 4).diag()
    np.testing.assert_array_equal(fg.tensor([1, 2]).diag(1).numpy(),
                                  [[0, 1, 0], [0, 0, 2], [0, 0, 0]])
    assert fg.zeros(2, 3).diag(5).shape == (0,)
    with pytest.raises(ShapeError, match="cannot be identical"):
        fg.zeros(2, 3).diagonal(0, 1, -1)


def test_unique_matches_torch_and_has_no_grad(torch):
    a = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 3.0]])
    x = fg.tensor(a, requires_grad=True)
    for kw in (dict(), dict(return_inverse=True), dict(return_counts=True),
               dict(return_inverse=True, return_counts=True, dim=1), dict(dim=0)):
        ours, theirs = fg.unique(x, **kw), torch.unique(torch.tensor(a), **kw)
        ours = ours if isinstance(ours, tuple) else (ours,)
        theirs = theirs if isinstance(theirs, tuple) else (theirs,)
        for o, t in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(o.numpy(), t.numpy())
            assert str(o.dtype) == str(t.dtype).replace("torch.", "")
            assert not o.requires_grad


def test_cdist_errors_and_zero_distance_gradient():
    with pytest.raises(ShapeError, match="same number of columns"):
        fg.cdist(fg.zeros(3, 4), fg.zeros(2, 5))
    with pytest.raises(ShapeError, match="at least 2D"):
        fg.cdist(fg.zeros(4), fg.zeros(2, 4))
    with pytest.raises(ValueError, match="non-negative p"):
        fg.cdist(fg.zeros(3, 4), fg.zeros(2, 4), p=-1)
    with pytest.raises(DTypeError):
        fg.cdist(fg.zeros(3, 4), fg.zeros(2, 4, dtype=fg.float64))
    x = fg.ones(2, 3, requires_grad=True)
    fg.cdist(x, fg.ones(1, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))  # as torch: 0, not NaN
    d = fg.cdist(fg.tensor([[0.0, 0.0], [1.0, 2.0]]), fg.tensor([[1.0, 0.0]]), p=0)
    np.testing.assert_array_equal(d.numpy(), [[1.0], [1.0]])


def test_index_add_matches_torch_and_checks_arguments(torch):
    a = np.arange(12.0).reshape(3, 4)
    s = np.ones((3, 2))
    want = torch.tensor(a).index_add(1, torch.tensor([3, 3]), torch.tensor(s), alpha=2)
    got = fg.tensor(a).index_add(1, fg.tensor([3, 3]), fg.tensor(s), alpha=2)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    x = fg.tensor(a)
    assert x.index_add_(1, fg.tensor([3, 3]), fg.tensor(s), alpha=2) is x
    np.testing.assert_array_equal(x.numpy(), want.numpy())
    with pytest.raises(ShapeError, match="Number of indices"):
        fg.zeros(3, 4).index_add(1, fg.tensor([0, 1]), fg.ones(3, 3))
    with pytest.raises(ShapeError, match="must match self tensor shape"):
        fg.zeros(3, 4).index_add(1, fg.tensor([0, 1]), fg.ones(2, 2))
    with pytest.raises(DTypeError, match="same scalar type"):
        fg.zeros(3, 4).index_add(1, fg.tensor([0, 1]), fg.ones(3, 2, dtype=fg.float64))
    with pytest.raises(IndexError):
        fg.zeros(3, 4).index_add(1, fg.tensor([0, 5]), fg.ones(3, 2))
    with pytest.raises(IndexError, match="vector"):
        fg.zeros(3, 4).index_add(1, fg.tensor([[0, 1]]), fg.ones(3, 2))


def test_in_place_scatter_and_index_add_follow_the_in_place_rules(torch):
    idx = [[0, 1], [2, 3], [1, 1]]
    x = fg.zeros(3, 4)
    v = x._version
    assert x.scatter_(1, fg.tensor(idx), fg.ones(3, 2) * 2) is x
    assert x._version == v + 1
    t = torch.zeros(3, 4).scatter_(1, torch.tensor(idx), torch.ones(3, 2) * 2)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    x.scatter_(1, fg.tensor([[3], [0], [0]]), 7.0)
    t.scatter_(1, torch.tensor([[3], [0], [0]]), 7.0)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    w = fg.zeros(3, 4, requires_grad=True)
    with pytest.raises(GraphError, match="scatter_"):
        w.scatter_(1, fg.tensor(idx), fg.ones(3, 2))
    h = (w * 2).index_add_(0, fg.tensor([0]), fg.ones(1, 4))  # recorded, as in PyTorch
    h.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 4), 2.0))
    w.grad = None
    with fg.no_grad():
        w.index_add_(0, fg.tensor([0, 0]), fg.ones(2, 4))
    np.testing.assert_array_equal(w.detach().numpy()[0], [2, 2, 2, 2])

"""The 2x2 max-pool fast path (separable, masks instead of an argmax array), the large-array
ReLU and LeakyReLU's max paths against PyTorch: values, indices and gradients, with ties, NaN
and infinite gradients."""

import numpy as np
import pytest
import torch

import flowgrad as fg
import flowgrad.nn.functional as F


def _ties(shape, dtype, seed=0):
    """Values from {0, 1, 2} after a ReLU: most windows hold equal maxima."""
    return np.maximum(np.random.default_rng(seed).integers(-2, 3, shape), 0).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 2, 7, 6), (2, 1, 6, 9)])
def test_max_pool_2x2_matches_torch_with_ties(dtype, shape):
    a = _ties(shape, dtype)
    g = np.random.default_rng(1).standard_normal(
        (shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(dtype)
    fx, tx = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fy, fi = F.max_pool2d(fx, 2, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    np.testing.assert_array_equal(fy.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    fy.backward(fg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(fx.grad.numpy(), tx.grad.numpy())


def test_max_pool_2x2_sends_an_infinite_gradient_only_to_the_maximum():
    a = _ties((1, 2, 4, 4), np.float32)
    g = np.full((1, 2, 2, 2), np.inf, dtype=np.float32)
    fx, tx = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    F.max_pool2d(fx, 2).backward(fg.tensor(g))
    torch.nn.functional.max_pool2d(tx, 2).backward(torch.tensor(g))
    np.testing.assert_array_equal(fx.grad.numpy(), tx.grad.numpy())


def test_max_pool_2x2_with_nan_takes_the_first_nan_like_torch():
    a = _ties((2, 2, 6, 6), np.float32)
    a[0, 0, 1, 1] = a[1, 1, 4, 5] = a[1, 1, 5, 4] = np.nan
    fx, tx = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fy, fi = F.max_pool2d(fx, 2, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    np.testing.assert_array_equal(fy.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    fy.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(fx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [40_000, 3 * 4096 * 8 + 17])
def test_relu_on_large_arrays_matches_torch(dtype, size):
    a = np.random.default_rng(2).standard_normal(size).astype(dtype)
    a[:3] = [np.nan, -0.0, np.inf]
    fx, tx = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fy, ty = F.relu(fx), torch.relu(tx)
    np.testing.assert_array_equal(fy.detach().numpy(), ty.detach().numpy())
    assert fy.dtype == fg.float32 if dtype == np.float32 else fy.dtype == fg.float64
    fy.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(fx.grad.numpy(), tx.grad.numpy())
    strided = fg.tensor(a.reshape(-1, 1)[::2])
    np.testing.assert_array_equal(F.relu(strided).numpy(), np.maximum(a.reshape(-1, 1)[::2], 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.2, 0.01, 1.0, 0.0, -0.3, 1.7])
def test_leaky_relu_matches_torch_bit_for_bit_with_inf_and_nan(dtype, slope):
    """The max(x, slope x) forward and max(1[x > 0], slope) backward paths (0 < slope < 1) and
    the general where path give PyTorch's values and gradients, infinities and NaN included."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(5000).astype(dtype)
    a[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30]
    g = rng.standard_normal(5000).astype(dtype)
    g[6:9] = [np.inf, -np.inf, np.nan]
    fx, tx = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fy = F.leaky_relu(fx, slope)
    ty = torch.nn.functional.leaky_relu(tx, slope)
    np.testing.assert_array_equal(fy.detach().numpy(), ty.detach().numpy())
    fy.backward(fg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(fx.grad.numpy(), tx.grad.numpy())

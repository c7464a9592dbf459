"""SGD and Adam on parameters of benchmark size (their in-place, scratch-buffer updates) against
PyTorch, step by step; the gradient is never changed by a step."""

import numpy as np
import pytest
import torch

import flowgrad as fg


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
                                    {"weight_decay": 1e-2, "momentum": 0.5, "dampening": 0.1},
                                    {"maximize": True}])
@pytest.mark.parametrize("shape", [(160, 128), (400, 400)])  # one or several update chunks
def test_sgd_on_large_parameters_matches_torch(dtype, kwargs, shape):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(w0.shape).astype(dtype) for _ in range(3)]
    fw, tw = fg.tensor(w0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)
    fo, to = fg.optim.SGD([fw], lr=0.05, **kwargs), torch.optim.SGD([tw], lr=0.05, **kwargs)
    for g in grads:
        fw.grad, tw.grad = fg.tensor(g.copy()), torch.tensor(g.copy())
        fo.step()
        to.step()
        np.testing.assert_allclose(fg.tensor(g).numpy(), fw.grad.numpy())  # grad untouched
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name,kwargs", [("Adam", {}), ("Adam", {"amsgrad": True}),
                                         ("AdamW", {"weight_decay": 0.1})])
@pytest.mark.parametrize("shape", [(160, 128), (400, 400)])
def test_adam_on_large_parameters_matches_torch(name, kwargs, shape):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(4)]
    fw, tw = fg.tensor(w0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)
    fo = getattr(fg.optim, name)([fw], lr=1e-2, **kwargs)
    to = getattr(torch.optim, name)([tw], lr=1e-2, **kwargs)
    for g in grads:
        fw.grad, tw.grad = fg.tensor(g.copy()), torch.tensor(g.copy())
        fo.step()
        to.step()
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=1e-6, atol=1e-6)

"""In-place ops inside the flow graph, side by side with PyTorch (the oracle): the tensor's
history is rebased onto the in-place node, gradients flow to what produced its old value, a
saved value modified afterwards raises, a leaf that requires grad is refused outside no_grad,
and ``x += y`` writes in place."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.errors import DTypeError, GraphError

RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (3, 4))
W = RNG.uniform(-1, 1, (3, 4))
V = RNG.uniform(-1, 1, (4,))


def _run(m, fn):
    """fn(m, x, w, v) -> loss; returns the gradients of the three leaves."""
    x = m.tensor(X, requires_grad=True)
    w = m.tensor(W, requires_grad=True)
    v = m.tensor(V, requires_grad=True)
    loss = fn(m, x, w, v)
    loss.backward()
    return [None if t.grad is None else t.grad.numpy() for t in (x, w, v)], loss.item()


def _chain(m, x, w, v):
    h = x * w
    h.add_(1).mul_(2)
    h.sub_(v, alpha=0.5)
    h.div_(w + 3)
    h.clamp_(-0.5, 0.8)
    return (h * h).sum()


def _relu_masked(m, x, w, v):
    h = x + w
    h.masked_fill_(x > 0.3, 0.25)
    h.relu_()
    return (h * v).sum()


def _setitem_tensor(m, x, w, v):
    h = x * 2
    h[:, 0] = 0
    h[1] = v * 3          # a value that requires grad: its gradient flows too
    h[m.tensor([0, 2]), 1:3] = w[0, :2]
    return (h * w).sum()


def _used_before(m, x, w, v):
    h = x + 1
    y = h + w             # consumed h before the in-place ops
    h.mul_(3)
    h.add_(v)
    return (y * y).sum() + (h * h).sum()


def _augmented(m, x, w, v):
    h = x * 1
    h += w
    h *= v
    h -= x
    h /= 2
    return (h ** 2).sum()


def _copy_zero_fill(m, x, w, v):
    h = x * w
    g = (x - 1) * 1
    h.copy_(v * 2)        # broadcast copy from a tensor that requires grad
    g.zero_()
    k = x * 1
    k.fill_(v.sum())      # a 0-d tensor that requires grad
    return (h * x).sum() + (g * w).sum() + (k * w).sum()


def _buffer_write(m, x, w, v):
    out = m.zeros(3, 4, dtype=m.float64)  # no grad: becomes part of the graph through the write
    out[0] = x[0] * w[0]
    out[2, 1:] = v[:3]
    return (out ** 2).sum()


def _pointwise(m, x, w, v):
    h = x * 0.5
    h.add_(w).exp_()      # exp_/tanh_/sigmoid_/relu_ save their result: nothing after them
    g = x * w
    g.tanh_()
    k = x - w
    k.sigmoid_()
    r = x + 0.2
    r.relu_()
    return (h * v).sum() + (g * g).sum() + (k * v).sum() + (r * w).sum()


def _scatter_index_add(m, x, w, v):
    h = x * 1
    h.index_add_(0, m.tensor([0, 2, 0]), w)
    h.scatter_(1, m.tensor([[0], [1], [2]]), v[:3].reshape(3, 1) * 4)
    return (h * h).sum()


@pytest.mark.parametrize("fn", [_chain, _relu_masked, _setitem_tensor, _used_before, _augmented,
                                _copy_zero_fill, _buffer_write, _pointwise, _scatter_index_add])
def test_gradients_through_in_place_ops_match_pytorch(fn):
    g_fg, l_fg = _run(fg, fn)
    g_t, l_t = _run(torch, fn)
    np.testing.assert_allclose(l_fg, l_t, rtol=1e-10)
    for a, b in zip(g_fg, g_t):
        if b is None:
            assert a is None or not a.any()
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_tensor_keeps_its_identity_and_memory():
    x = fg.ones(2, 3, requires_grad=True)
    h = x * 2
    view = h.detach()     # shares the array: sees the write, as in PyTorch
    arr = h._data
    assert h.add_(1) is h and h._data is arr
    assert view.tolist() == [[3.0] * 3] * 2
    assert h.grad_fn is not None and h._version == 1


@pytest.mark.parametrize("case", ["mul_saved_input", "exp_saved_output", "relu_saved_output",
                                  "pow_saved_input", "add_no_save", "exp_of_h_then_add",
                                  "relu__then_masked_fill_", "tanh__then_add_"])
def test_version_errors_match_pytorch(case):
    def build(m):
        x = m.tensor(X, requires_grad=True)
        w = m.tensor(W, requires_grad=True)
        if case == "mul_saved_input":
            h = x * 1
            z = h * w
            h.mul_(2)
        elif case == "exp_saved_output":
            h = x.exp()
            h.add_(1)
            z = h
        elif case == "relu_saved_output":
            h = x.relu()
            h.mul_(2)
            z = h * 1
        elif case == "pow_saved_input":
            h = x * 1
            z = h ** 2
            h.sub_(1)
        elif case == "add_no_save":
            h = x * 1
            z = h + w
            h.add_(1)
        elif case == "relu__then_masked_fill_":
            h = x * 1
            h.relu_()
            h.masked_fill_(x > 0.3, 0.25)
            z = h
        elif case == "tanh__then_add_":
            h = x * 1
            h.tanh_()
            h.add_(1)
            z = h
        else:
            h = x * 1
            z = h.exp()
            h.add_(1)
        return z.sum()

    try:
        build(torch).backward()
        torch_raises = False
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e)
        torch_raises = True
    if torch_raises:
        with pytest.raises(GraphError, match="modified in place"):
            build(fg).backward()
    else:
        build(fg).backward()


def test_leaf_that_requires_grad_is_refused_outside_no_grad():
    for m in (torch, fg):
        w = m.ones(3, requires_grad=True)
        with pytest.raises((RuntimeError, GraphError),
                           match="a leaf Variable that requires grad is being used in an "
                                 "in-place operation"):
            w.add_(1)
        with pytest.raises((RuntimeError, GraphError), match="leaf Variable"):
            w += 1
        with pytest.raises((RuntimeError, GraphError), match="leaf Variable"):
            w[0] = 2.0
        with pytest.raises((RuntimeError, GraphError), match="leaf Variable"):
            w.masked_fill_(w > 0, 0.0)


def test_no_grad_update_writes_in_place_and_keeps_the_parameter():
    p = fg.nn.Parameter(fg.ones(3))
    alias = p
    arr = p._data
    (p * fg.tensor([1.0, 2.0, 3.0])).sum().backward()
    with fg.no_grad():
        p -= 0.1 * p.grad
    assert alias is p and p._data is arr and isinstance(p, fg.nn.Parameter)
    assert p.requires_grad and p.grad_fn is None
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 0.8, 0.7])


def test_augmented_assignment_writes_in_place_without_grad():
    for m in (torch, fg):
        a = m.zeros(3)
        b = a
        a += 1
        a *= m.tensor([1.0, 2.0, 3.0])
        a -= 0.5
        a /= 2
        assert b is a
        np.testing.assert_allclose(b.numpy(), [0.25, 0.75, 1.25])
        i = m.zeros(3, dtype=m.int64)
        i += 2
        i *= 3
        assert i.tolist() == [6, 6, 6]
        with pytest.raises((RuntimeError, DTypeError), match="can't be cast"):
            i += 0.5
        with pytest.raises((RuntimeError, DTypeError), match="can't be cast"):
            i /= 2


def test_view_of_a_leaf_is_refused():
    w = fg.ones(2, 3, requires_grad=True)
    with pytest.raises(GraphError, match="view of a leaf Variable"):
        w[0].add_(1)
    with torch.no_grad():
        pass
    assert w.tolist() == [[1.0] * 3] * 2


def test_plain_list_of_modules_is_kept_unregistered():
    for nn in (torch.nn, fg.nn):
        m = nn.Module()
        m.layers = [nn.Linear(2, 2), nn.Linear(2, 2)]
        assert len(m.layers) == 2 and list(m.parameters()) == []
        assert list(m.state_dict()) == []

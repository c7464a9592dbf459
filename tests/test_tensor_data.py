"""``Tensor.data`` is PyTorch's: a detached tensor sharing the memory, with usable in-place
methods, assignable; checked side by side with torch."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.errors import DTypeError, GraphError

LOGITS = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]],
                  np.float32)
TARGET = np.array([1, 0, 1, 0])


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_data_max_gives_indices_and_accuracy_line_counts(lib):
    w = lib.ones(3, requires_grad=True)
    out = lib.tensor(LOGITS) * w
    target = lib.tensor(TARGET)
    pred = out.data.max(1)[1]
    assert pred.tolist() == [1, 0, 2, 0]
    assert pred.eq(target.data).sum().item() == 3
    assert int(pred.eq(target.data.view_as(pred)).cpu().sum()) == 3


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_data_is_detached_and_shares_memory(lib):
    p = lib.nn.Parameter(lib.ones(3))
    d = p.data
    assert type(d) is lib.Tensor and not d.requires_grad and d.grad_fn is None and d.is_leaf
    d[0] = 5.0
    assert p.tolist() == [5.0, 1.0, 1.0]
    assert np.shares_memory(p.detach().numpy(), d.numpy())
    assert p.data.data.requires_grad is False


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_data_of_a_non_leaf(lib):
    a = lib.ones(2, requires_grad=True)
    b = a * 2
    d = b.data
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert b.grad_fn is not None and b.requires_grad  # b itself is unchanged
    assert d.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_in_place_methods_through_data_write_into_the_parameter(lib):
    p = lib.nn.Parameter(lib.tensor([1.0, 2.0, 3.0]))
    p.grad = lib.tensor([1.0, 1.0, 1.0])
    p.data.add_(p.grad, alpha=-0.5)
    assert p.tolist() == [0.5, 1.5, 2.5]
    p.data.add_(-0.5 * p.grad)
    p.data.mul_(2)
    assert p.tolist() == [0.0, 2.0, 4.0]
    p.data.clamp_(1.0, 3.0)
    assert p.tolist() == [1.0, 2.0, 3.0]
    p.data.copy_(lib.tensor([7.0, 8.0, 9.0]))
    assert p.tolist() == [7.0, 8.0, 9.0]
    p.data.fill_(0)
    assert p.tolist() == [0.0, 0.0, 0.0]
    p.data.normal_(0, 0.02)
    assert 0 < float(p.data.abs().max()) < 0.2
    p.data.uniform_(-0.1, 0.1)
    assert float(p.data.abs().max()) <= 0.1
    p.data.zero_()
    assert p.tolist() == [0.0, 0.0, 0.0]
    assert p.requires_grad and p.is_leaf


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_write_through_data_is_not_seen_by_the_version_counter(lib):
    p = lib.nn.Parameter(lib.ones(3))
    loss = (p * p).sum()       # saves p
    v = p._version
    p.data.add_(1.0)           # not tracked: no "modified in place" error
    assert p._version == v
    loss.backward()            # uses the new values, as torch does
    assert p.grad.tolist() == [4.0, 4.0, 4.0]
    # the same write through the tensor itself is caught
    loss = (p * p).sum()
    with lib.no_grad():
        p.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace|modified in place"):
        loss.backward()


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_sgd_by_hand_through_data_then_backward_again(lib):
    w = lib.nn.Parameter(lib.tensor([1.0, -2.0]))
    x = lib.tensor([3.0, 4.0])
    losses = []
    for _ in range(3):
        loss = ((w * x).sum() - 1.0) ** 2
        losses.append(loss.item())
        w.grad = None
        loss.backward()
        w.data.add_(w.grad, alpha=-0.01)
    assert np.isfinite(losses).all() and losses[2] < losses[0]
    ref_w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    for _ in range(3):
        ref_w.grad = None
        (((ref_w * torch.tensor([3.0, 4.0])).sum() - 1.0) ** 2).backward()
        ref_w.data.add_(ref_w.grad, alpha=-0.01)
    np.testing.assert_allclose(w.tolist(), ref_w.tolist(), rtol=1e-6)


@pytest.mark.parametrize("lib", [fg, torch], ids=["flowgrad", "torch"])
def test_data_assignment(lib):
    t = lib.ones(3, requires_grad=True)
    src = lib.zeros(2, 2)
    t.data = src
    assert t.shape == (2, 2) and t.requires_grad and t.is_leaf
    src.add_(1.0)                                     # t shares src's memory
    assert t.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    t.data = lib.zeros(2, dtype=lib.float64)          # a float dtype change is allowed
    assert t.dtype == lib.float64 and t.requires_grad
    u = lib.zeros(2)
    u.data = lib.zeros(2, dtype=lib.int64)            # any dtype when no grad is required
    assert u.dtype == lib.int64
    a = lib.ones(2, requires_grad=True)
    b = a * 2
    b.data = lib.zeros(2)                             # a non-leaf keeps its grad_fn
    assert b.grad_fn is not None and b.tolist() == [0.0, 0.0]


def test_data_assignment_errors_match_torch():
    for lib, int_error in ((fg, DTypeError), (torch, RuntimeError)):
        t = lib.ones(2, requires_grad=True)
        with pytest.raises(int_error, match="floating point or complex"):
            t.data = lib.zeros(2, dtype=lib.int64)
        for bad in ([1.0, 2.0], np.zeros(2, np.float32)):
            with pytest.raises(TypeError, match="has to be a tensor"):
                t.data = bad
        assert t.tolist() == [1.0, 1.0]


def test_data_assignment_on_a_parameter_keeps_the_optimizer_working():
    model = fg.nn.Linear(3, 2)
    opt = fg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = fg.ones(4, 3)
    model(x).sum().backward()
    opt.step()
    model.weight.data = fg.zeros(2, 3)
    model.bias.data.fill_(0)
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
    assert model.weight.abs().sum().item() > 0  # the step wrote into the new memory
    sd = model.state_dict()
    assert isinstance(sd["weight"], fg.Tensor)
    clone = fg.nn.Linear(3, 2)
    clone.load_state_dict(sd)
    np.testing.assert_array_equal(clone.weight.data.numpy(), model.weight.data.numpy())
    np.testing.assert_array_equal(
        fg.nn.utils.parameters_to_vector(clone.parameters()).detach().numpy(),
        fg.nn.utils.parameters_to_vector(model.parameters()).detach().numpy())
    osd = opt.state_dict()
    opt2 = fg.optim.SGD(clone.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(osd)
    assert opt2.state_dict()["state"].keys() == osd["state"].keys()


def test_initialising_a_model_through_data():
    fg.manual_seed(0)
    model = fg.nn.Sequential(fg.nn.Linear(4, 8), fg.nn.ReLU(), fg.nn.Linear(8, 2))
    for m in model.modules():
        if isinstance(m, fg.nn.Linear):
            m.weight.data.normal_(0.0, 0.02)
            m.bias.data.fill_(0)
    assert all(m.bias.abs().sum().item() == 0 for m in (model[0], model[2]))
    assert 0 < model[0].weight.std().item() < 0.05
    loss = model(fg.randn(5, 4)).pow(2).mean()
    loss.backward()
    assert model[0].weight.grad is not None


def test_in_place_on_a_parameter_itself_is_still_refused():
    p = fg.nn.Parameter(fg.ones(2))
    with pytest.raises(GraphError, match="add_: a leaf Variable"):
        p.add_(1.0)
    p.data.add_(1.0)  # the .data view needs no grad
    assert p.tolist() == [2.0, 2.0]


def test_writing_a_graph_tensor_into_data_records_it_as_pytorch_does():
    p, q = fg.nn.Parameter(fg.ones(2)), fg.nn.Parameter(fg.full((2,), 3.0))
    d = p.data
    d.copy_(q * 1)  # the temporary .data tensor gets a grad_fn; p is written and stays a leaf
    assert d.requires_grad and p.requires_grad and p.tolist() == [3.0, 3.0]
    d.sum().backward()
    assert q.grad.tolist() == [1.0, 1.0] and p.grad is None
    p.data.copy_(q.data)
    with fg.no_grad():
        p.data.add_(q)
    assert p.tolist() == [6.0, 6.0]

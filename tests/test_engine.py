"""The flow-graph engine: multiple paths, accumulation, grad modes, retained and freed graphs,
hooks, in-place version checks, depth, memory, and the errors it raises."""

import gc
import sys
import weakref

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import DTypeError, GraphError, ShapeError


def test_micrograd_style_expression_matches_torch(torch):
    def f(m, a, b):
        c = a + b
        d = a * b + b ** 3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + (b + a).relu()
        d = d + 3 * d + (b - a).relu()
        e = c - d
        f_ = e ** 2
        g = f_ / 2.0
        g = g + 10.0 / f_
        return g

    a, b = fg.tensor(-4.0, dtype=fg.float64, requires_grad=True), \
        fg.tensor(2.0, dtype=fg.float64, requires_grad=True)
    ta, tb = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True), \
        torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    g, tg = f(fg, a, b), f(torch, ta, tb)
    g.backward()
    tg.backward()
    assert abs(g.item() - tg.item()) < 1e-9
    assert abs(a.grad.item() - ta.grad.item()) < 1e-9
    assert abs(b.grad.item() - tb.grad.item()) < 1e-9


def test_diamond_sums_over_both_paths():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y.exp() + y.sin()  # y has two successors
    z.sum().backward()
    xn = np.array([1.0, 2.0], dtype=np.float32)
    expected = 3 * (np.exp(3 * xn) + np.cos(3 * xn))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5)


def test_reused_operand_in_one_op():
    x = fg.tensor([1.5, -2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -4.0])


def test_leaves_accumulate_across_backward_calls():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_shared_gradient_arrays_are_not_aliased():
    x = fg.ones(3, requires_grad=True)
    y = fg.ones(3, requires_grad=True)
    (x + y).sum().backward()
    x.grad.zero_()
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 1.0, 1.0])


def test_no_grad_records_nothing_and_decorates():
    x = fg.ones(2, requires_grad=True)
    with fg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @fg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    with fg.no_grad():
        with fg.enable_grad():
            assert (x * 2).requires_grad
    with fg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert fg.is_grad_enabled()


def test_set_grad_enabled_as_function_call():
    fg.set_grad_enabled(False)
    try:
        assert not fg.is_grad_enabled()
    finally:
        fg.set_grad_enabled(True)
    assert fg.is_grad_enabled()


def test_second_backward_through_freed_graph_says_retain_graph():
    x = fg.ones(3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = fg.ones(3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.e * np.ones(3), rtol=1e-6)


def test_saved_arrays_are_released_after_backward():
    x = fg.randn(100, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._data)
    z = (h * x).sum()
    del h
    gc.collect()
    assert ref() is not None  # held by the graph (saved by Mul)
    z.backward()
    gc.collect()
    assert ref() is None


def test_retain_grad_and_hooks():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [4.0, 8.0])
    np.testing.assert_allclose(seen[0], [4.0, 8.0])
    np.testing.assert_allclose(x.grad.numpy(), [80.0, 160.0])
    handle.remove()
    x.grad = None
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_autograd_grad_leaves_dot_grad_untouched():
    x = fg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = fg.tensor([0.5, 0.5, 0.5], requires_grad=True)
    y = (x * x * w).sum()
    gx, gw = fg.autograd.grad(y, [x, w])
    np.testing.assert_allclose(gx.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 4.0, 9.0])
    assert x.grad is None and w.grad is None
    unused = fg.ones(2, requires_grad=True)
    with pytest.raises(GraphError, match="allow_unused"):
        fg.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = fg.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None


def test_autograd_grad_of_intermediate_node():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = fg.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])


def test_backward_with_explicit_gradient_and_inputs():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    w = fg.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    y.backward(fg.tensor([1.0, 0.5]), inputs=[x])
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 2.0])
    assert w.grad is None


def test_chain_of_100k_ops_at_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000
    x = fg.tensor(1.0, dtype=fg.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert abs(x.grad.item() - 1.00001 ** 100_000) < 1e-6


def test_bptt_over_10000_steps():
    """Back-prop through time (lecture: "Back-Prop in Recurrent & Recursive Nets")."""
    fg.manual_seed(0)
    w = (fg.randn(8, 8) * 0.1).requires_grad_()
    u = (fg.randn(4, 8) * 0.1).requires_grad_()
    h = fg.zeros(1, 8)
    x = fg.randn(1, 4)
    for _ in range(10_000):
        h = (h @ w + x @ u).tanh()
    h.sum().backward()
    assert w.grad.shape == (8, 8) and np.isfinite(w.grad.numpy()).all()
    assert np.abs(u.grad.numpy()).sum() > 0


def test_recursive_net_over_a_tree_shares_weights():
    """A recursive net: one composition function applied over a binary tree."""
    w = fg.randn(6, 3, dtype=fg.float64, requires_grad=True)

    def compose(a, b):
        return (fg.cat([a, b], dim=-1) @ w).tanh()

    leaves = [fg.randn(1, 3, dtype=fg.float64) for _ in range(4)]

    def tree(weights):
        old = w._data
        w._data = weights
        try:
            root = compose(compose(leaves[0], leaves[1]), compose(leaves[2], leaves[3]))
            return root.sum()
        finally:
            w._data = old

    tree(w._data).backward()
    analytic = w.grad.numpy().copy()
    eps = 1e-6
    numeric = np.zeros_like(analytic)
    for idx in np.ndindex(*analytic.shape):
        wp, wm = w._data.copy(), w._data.copy()
        wp[idx] += eps
        wm[idx] -= eps
        with fg.no_grad():
            numeric[idx] = (tree(wp).item() - tree(wm).item()) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_in_place_change_of_saved_input_is_caught():
    w = fg.ones(3, requires_grad=True)
    x = fg.tensor([1.0, 2.0, 3.0])
    y = (w * x).sum()
    x.mul_(2)
    with pytest.raises(GraphError, match=r"Mul saved its input 1 .*modified in place.*version 0 -> 1"):
        y.backward()


def test_in_place_update_of_parameter_between_forward_and_backward_is_caught():
    w = fg.ones(3, requires_grad=True)
    y = (w * fg.tensor([1.0, 2.0, 3.0])).sum()
    with fg.no_grad():
        w.sub_(0.1)
    with pytest.raises(GraphError, match="modified in place"):
        y.backward()


def test_in_place_change_of_saved_output_is_caught():
    x = fg.ones(3, requires_grad=True)
    y = x.exp()
    z = y.sum()
    with fg.no_grad():
        y.add_(1)
    with pytest.raises(GraphError, match="Exp saved its output"):
        z.backward()


def test_in_place_ops_refused_on_tensors_that_require_grad():
    w = fg.ones(3, requires_grad=True)
    with pytest.raises(GraphError, match="add_: a leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(GraphError, match="leaf Variable"):
        w[0] = 5.0
    with fg.no_grad():
        w.add_(1).mul_(2)
        w[0] = 7.0
    np.testing.assert_allclose(w.detach().numpy(), [7.0, 4.0, 4.0])
    assert w._version == 3


def test_in_place_methods_values():
    x = fg.zeros(2, 3)
    x.add_(fg.ones(3), alpha=2).sub_(0.5).mul_(4).div_(2)
    np.testing.assert_allclose(x.numpy(), np.full((2, 3), 3.0))
    x.clamp_(max=1.0)
    np.testing.assert_allclose(x.numpy(), np.ones((2, 3)))
    x.fill_(2.5)
    x[0, 1:] = fg.tensor([7.0, 8.0])
    np.testing.assert_allclose(x.numpy(), [[2.5, 7, 8], [2.5, 2.5, 2.5]])
    x.copy_(np.zeros((2, 3)))
    x.zero_()
    assert x.sum().item() == 0 and x._version == 9


def test_errors_that_teach():
    with pytest.raises(DTypeError, match="only floating-point tensors can require gradients"):
        fg.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(GraphError, match="pass a gradient"):
        (fg.ones(3, requires_grad=True) * 2).backward()
    with pytest.raises(ShapeError, match=r"matmul: cannot multiply \(2, 3\) by \(4, 5\)"):
        fg.ones(2, 3) @ fg.ones(4, 5)
    with pytest.raises(ShapeError, match=r"add: shapes \(3, 4\) and \(5,\) cannot be broadcast"):
        fg.ones(3, 4) + fg.ones(5)
    with pytest.raises(IndexError, match="gather: index 7 is out of bounds"):
        fg.ones(2, 5).gather(1, fg.tensor([[7], [0]]))
    with pytest.raises(ShapeError, match="reshape: shape"):
        fg.ones(2, 3).reshape(4, 2)
    with pytest.raises(GraphError, match="does not require grad"):
        fg.ones(2).sum().backward()


def test_mixing_devices_is_a_clear_error(monkeypatch):
    from flowgrad.autograd.op import Op

    class Fake(np.ndarray):
        pass

    a = fg.ones(2)
    b = fg.Tensor._wrap(np.ones(2).view(Fake), None, False)

    class Add(Op):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

    with pytest.raises(fg.DeviceError, match="move them to one device"):
        Add.apply(a, b)


def test_custom_function_with_tensor_io():
    class Cube(fg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            assert ctx.needs_input_grad[0]
            return grad * 3 * x ** 2

    x = fg.tensor([1.0, -2.0], dtype=fg.float64, requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is Cube
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    assert fg.autograd.gradcheck(Cube.apply, (fg.tensor([0.3, 0.7], dtype=fg.float64,
                                                         requires_grad=True),))


def test_gradcheck_reports_worst_entries():
    class Wrong(fg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 3  # wrong: should be 2

    x = fg.randn(2, 3, dtype=fg.float64, requires_grad=True)
    with pytest.raises(fg.autograd.GradcheckError, match=r"input 0 \(shape \(2, 3\)\): 6 of 6 "
                                                          r"entries differ(.|\n)*backprop"):
        fg.autograd.gradcheck(Wrong.apply, (x,))
    assert fg.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_integer_outputs_never_require_grad():
    x = fg.randn(3, 4, requires_grad=True)
    assert not x.argmax(dim=1).requires_grad
    assert not (x > 0).requires_grad
    assert not x.long().requires_grad
    values, indices = x.max(dim=1)
    assert values.requires_grad and indices.dtype == fg.int64


def test_gradcheck_on_non_contiguous_inputs():
    """The perturbation must reach transposed/sliced inputs (a flat reshape would copy)."""
    from flowgrad.autograd import gradcheck, numerical_grad

    rng = np.random.default_rng(0)
    a = fg.tensor(rng.standard_normal((4, 3))).t().detach().requires_grad_()
    b = fg.tensor(rng.standard_normal((8, 5)))[::2, 1:4].detach().requires_grad_()
    c = fg.tensor(rng.standard_normal((3, 4, 2))).permute(2, 0, 1).detach().requires_grad_()
    assert not (a._data.flags.c_contiguous or b._data.flags.c_contiguous
                or c._data.flags.c_contiguous)
    before = [t._data.copy() for t in (a, b, c)]
    assert gradcheck(lambda x, y, z: (x.sin() @ y) * z.sum(0)[:3, :3], (a, b, c))
    for t, old in zip((a, b, c), before):  # restored bit for bit
        assert np.array_equal(t._data, old)
    n = numerical_grad(lambda x: (x * x).sum(), [b])[0]
    np.testing.assert_allclose(n, 2 * b._data, rtol=1e-6, atol=1e-8)


def test_central_difference_entry_and_direction():
    from flowgrad.autograd.gradcheck import central_difference

    x = np.arange(6.0).reshape(2, 3).T  # non-contiguous
    f = lambda: float((x ** 3).sum())  # noqa: E731
    assert central_difference(f, [x], 1e-4, entry=(0, (1, 1))) == pytest.approx(3 * 16.0,
                                                                                rel=1e-6)
    assert central_difference(f, [x], 1e-4, entry=(0, 2)) == pytest.approx(3 * 1.0, rel=1e-6)
    d = np.ones_like(x)
    assert central_difference(f, [x], 1e-4, direction=[d]) == pytest.approx(
        float((3 * x ** 2).sum()), rel=1e-6)
    assert np.array_equal(x, np.arange(6.0).reshape(2, 3).T)
    calls = []
    central_difference(f, [x], 1e-4, entry=(0, 0), on_change=lambda: calls.append(1))
    assert len(calls) == 3
    with pytest.raises(TypeError):
        central_difference(f, [x], 1e-4)


def test_outer_sum_equals_the_dense_sum_of_its_terms():
    from flowgrad.autograd.lowrank import OuterSum, materialize, outer_grad

    rng = np.random.default_rng(0)
    terms = [(rng.normal(size=(3, n, 7)), rng.normal(size=(3, n, 5))) for n in (1, 2, 1)]
    dense = rng.normal(size=(3, 7, 5))
    want = dense + sum(np.swapaxes(a, -1, -2) @ b for a, b in terms)
    acc = OuterSum(*terms[0]).add(dense)
    for a, b in terms[1:]:
        acc = OuterSum(a, b).add(acc)  # the engine adds in either order
    assert acc.shape == (3, 7, 5) and acc.dtype == np.float64
    np.testing.assert_allclose(materialize(acc), want, rtol=1e-12)
    # a long loop's factors are folded into the dense part before they outgrow it 8 times
    many = OuterSum(np.ones((1, 4)), np.ones((1, 3)))
    for _ in range(30):
        many.add(OuterSum(np.ones((1, 4)), np.ones((1, 3))))
    assert many.rows * 7 <= 8 * 12 and (materialize(many) == 31).all()
    # deferred only where the factors are smaller than the product
    assert type(outer_grad(np.ones((1, 40)), np.ones((1, 30)))) is OuterSum
    wide = outer_grad(np.ones((64, 4)), np.ones((64, 3)))
    assert type(wide) is np.ndarray and wide.shape == (4, 3) and (wide == 64).all()


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_loop_weight_gradients_match_torch(torch, cell):
    """A cell called once per step at batch size 1 (its weight terms summed as factors), with
    the weight also on a second path, hooks, autograd.grad and anomaly mode all seeing the sum."""
    fg.manual_seed(0)
    m = getattr(fg.nn, cell)(6, 5, dtype=fg.float64)
    t = getattr(torch.nn, cell)(6, 5).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    xs = np.random.default_rng(1).normal(size=(7, 1, 6))

    def run(lib, mod):
        h = None
        total = 0
        for x in xs:
            out = mod(lib.tensor(x), h)
            h = out
            total = total + (out[0] if cell == "LSTMCell" else out).sum()
        return total + (mod.weight_hh * mod.weight_hh).sum()  # a dense path into the same weight

    seen = []
    m.weight_ih.register_hook(lambda g: seen.append(type(g.data)))
    with fg.autograd.detect_anomaly():
        run(fg, m).backward()
    run(torch, t).backward()
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(t.named_parameters())[name].grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    assert seen == [fg.Tensor]
    g_ih, = fg.autograd.grad(run(fg, m), [m.weight_ih])
    np.testing.assert_allclose(g_ih.numpy(), t.weight_ih.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_slices_of_one_tensor_sum_their_gradients_with_every_other_path():
    """Basic-index reads (x[0], x[1:], unbind, chunk; overlapping too) keep their gradients as
    slices until complete; summed with dense gradients and with a weight's deferred outer
    products, the result is PyTorch's."""
    import torch

    rng = np.random.default_rng(0)
    xs, ws = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))

    def run(m, x, w):
        y = (x[0].sum() * 2 + (x[1:] ** 2).sum() + x[:2, 1:3].sum() * 3 + (x @ w).sum()
             + x.unbind(0)[3].mean() + x.chunk(2, dim=1)[1].exp().sum()
             + (x[:, :2] @ w[:2]).square().sum() + w[:, 0].sum() + w.unbind(1)[2].sum())
        y.backward()
        return x.grad, w.grad

    fx = fg.tensor(xs, requires_grad=True)
    fw = fg.tensor(ws, requires_grad=True)
    tx = torch.tensor(xs, requires_grad=True)
    tw = torch.tensor(ws, requires_grad=True)
    for got, want in zip(run(fg, fx, fw), run(torch, tx, tw)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_pieces_that_tile_a_tensor_give_its_gradient_and_near_misses_add_up():
    """All of unbind's or chunk's pieces (written into an empty array) and pieces that miss
    a slice or overlap (added into zeros) both give PyTorch's gradient."""
    import torch

    from flowgrad.autograd.scattered import _tile

    rng = np.random.default_rng(1)
    xs = rng.standard_normal((3, 4, 5))
    readers = [lambda x: sum((p * (i + 1)).sum() for i, p in enumerate(x.unbind(0))),
               lambda x: sum((p ** 2).sum() for p in reversed(x.chunk(2, dim=2))),
               lambda x: (x[:, 1:].sum() + x[:, :1].exp().sum()),
               lambda x: x[0].sum() + x[2].sum(),               # misses x[1]
               lambda x: x[:, :3].sum() + x[:, 2:].sum()]       # overlaps at column 2
    for read in readers:
        fx, tx = fg.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
        read(fx).backward()
        read(tx).backward()
        np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    shape = (3, 4, 5)
    assert _tile(shape, [(2,), (0,), (1,)]) and _tile(shape, [-1, 0, 1])
    assert _tile(shape, [(slice(None), slice(None), slice(3, 5)),
                         (slice(None), slice(None), slice(0, 3))])
    assert not _tile(shape, [(0,), (2,)]) and not _tile(shape, [(0,), (0,), (1,), (2,)])
    assert not _tile(shape, [(slice(None), slice(0, 3)), (slice(None), slice(2, 4))])
    assert not _tile(shape, [(0,), (slice(None), slice(None), 1)])   # two axes
    assert not _tile(shape, [(slice(0, 3, 2),), (1,)]) and not _tile(shape, [(Ellipsis, 0)])


def test_gradient_of_pieces_of_a_permuted_view_keeps_the_view_layout():
    """unbind of a permuted view (heads split from one projection): the pieces' gradient is
    laid out as the view was, so the permutation's backward hands on a contiguous array."""
    from flowgrad.autograd.scattered import memory_layout

    rng = np.random.default_rng(2)
    base = fg.tensor(rng.standard_normal((2, 5, 3, 4)), requires_grad=True)
    view = base.permute(2, 0, 3, 1)                      # (3, 2, 4, 5), not contiguous
    assert memory_layout(view.detach().numpy()) == (1, 3, 0, 2)
    seen = {}
    view.register_hook(lambda g: seen.setdefault("grad", g))
    q, k, v = view.unbind(0)
    ((q * 2).sum() + (k * k).sum() + v.exp().sum()).backward()
    want = np.stack([np.full((2, 4, 5), 2.0), 2 * view.detach().numpy()[1],
                     np.exp(view.detach().numpy()[2])])
    np.testing.assert_allclose(seen["grad"].numpy(), want, rtol=1e-12)
    assert memory_layout(seen["grad"].numpy()) == (1, 3, 0, 2)
    assert base.grad.numpy().flags.c_contiguous
    np.testing.assert_allclose(base.grad.numpy(), want.transpose(1, 3, 0, 2), rtol=1e-12)

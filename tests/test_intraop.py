"""Intra-op threads (flowgrad.intraop, fg.set_num_threads): ops cut into row blocks on several
threads give what they give on one, exceptions in a block reach the caller, and a forked
child starts its own pool. Blocks are forced on small arrays by lowering MIN_ELEMENTS."""

import multiprocessing
import sys

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import intraop
from flowgrad.ops import conv as conv_ops


@pytest.fixture
def blocks(monkeypatch):
    """Every op over 8 numbers or more cut into up to 3 blocks; counts the blocked runs."""
    monkeypatch.setattr(intraop, "MIN_ELEMENTS", 8)
    monkeypatch.setattr(intraop, "_threads", 3)
    counted = {"blocked": 0}
    run = intraop.run

    def counting(kernel, ranges):
        counted["blocked"] += len(ranges) > 1
        return run(kernel, ranges)
    monkeypatch.setattr(intraop, "run", counting)
    return counted


def _run_all(seed=0):
    """Forward and every gradient of a small graph that reaches each blocked kernel."""
    rng = np.random.default_rng(seed)
    x = fg.tensor(rng.standard_normal((6, 5, 8)), requires_grad=True)
    w = fg.tensor(rng.standard_normal(8), requires_grad=True)
    b = fg.tensor(rng.standard_normal(8), requires_grad=True)
    q = fg.tensor(rng.standard_normal((6, 2, 5, 4)), requires_grad=True)
    keep = fg.tensor(rng.random((5, 5)) > 0.4)
    fg.manual_seed(1)
    h = F.layer_norm(x, (8,), w, b)
    h = F.relu(h * x + w) - x * 0.5                    # Mul, Add (broadcast), Sub, ReLU
    h = F.linear(h, w.unsqueeze(0).expand(8, 8) * 0.1 + x[0, :, :].T @ x[0, :, :], b)
    a = F.scaled_dot_product_attention(q, q, q, attn_mask=keep, dropout_p=0.3)
    t = x.transpose(0, 1).reshape(5, 48)                   # a reshape that copies
    target = fg.tensor(rng.integers(0, 8, 30))
    ce = F.cross_entropy(h.reshape(30, 8), target) + F.cross_entropy(
        h.reshape(30, 8), target, label_smoothing=0.1)
    sm = (F.softmax(h, -1) * x).sum() + (F.log_softmax(h, -1) * x).sum()
    sm = sm + (q @ q.transpose(-1, -2) @ q).sum() + (x @ w).sum()
    sm = sm + (F.gelu(h) * x).sum() + (F.gelu(h, approximate="tanh") * x).sum()
    running = fg.zeros(5, dtype=fg.float64), fg.ones(5, dtype=fg.float64)
    bn = F.batch_norm(x, *running, w[:5], b[:5], training=True)            # (N, C, L) = x
    kernel = x.reshape(-1)[:36].reshape(2, 2, 3, 3)
    conv = F.conv2d(q, kernel, b[:2], stride=2, padding=1)                 # col2im in backward
    up = F.conv_transpose2d(q, kernel, b[:2], stride=2, padding=1)         # col2im forward
    sm = sm + (bn * x).sum() + (F.leaky_relu(h, 0.2) * x).sum() + (conv * conv).sum() + (up * up).sum()
    loss = (h * h).sum() + (a * a).sum() + (h + h).mean() + (t * t.detach()).sum() + ce + sm
    grads = fg.autograd.grad(loss, (x, w, b, q))
    return [h.detach().numpy(), a.detach().numpy()] + [r.numpy() for r in running] + [
        g.numpy() for g in grads]


def test_spans_cover_the_rows_once(monkeypatch):
    monkeypatch.setattr(intraop, "_threads", 3)
    assert intraop.spans(10, 10) == [(0, 10)]                     # small: one block
    monkeypatch.setattr(intraop, "MIN_ELEMENTS", 4)
    spans = intraop.spans(10, 100)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert intraop.spans(2, 100) == [(0, 1), (1, 2)]              # no more blocks than rows


def test_blocked_ops_give_what_one_thread_gives(blocks, monkeypatch):
    monkeypatch.setattr(conv_ops, "LAYOUT", "nhwc")  # the layout whose copies are blocked
    monkeypatch.setattr(conv_ops, "SHARED_BLOCK", 1)
    many = _run_all()
    # layer and batch norm, ReLU, products, sums, a bias and its gradient, attention,
    # convolutions: both ways
    assert blocks["blocked"] >= 10
    monkeypatch.setattr(intraop, "_threads", 1)
    one = _run_all()
    for got, want in zip(many, one):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_binary_broadcasts_either_operand_into_the_blocks(blocks):
    rng = np.random.default_rng(2)
    full = rng.standard_normal((7, 4, 3)).astype(np.float32)
    for other in (rng.standard_normal((4, 3)), rng.standard_normal((1, 4, 3)),
                  rng.standard_normal((7, 1, 3)), rng.standard_normal(3)):
        other = other.astype(np.float32)
        for x, y in ((full, other), (other, full)):
            np.testing.assert_array_equal(fg.backend.binary(np, np.subtract, x, y), x - y)


def test_an_exception_in_a_block_reaches_the_caller(blocks):
    def kernel(lo, hi):
        if lo > 0:
            raise RuntimeError(f"block {lo}:{hi} failed")
        return lo
    with pytest.raises(RuntimeError, match="block"):
        intraop.for_rows(kernel, 9, 900)


def test_set_num_threads_checks_and_sets():
    before = fg.get_num_threads()
    with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
        fg.set_num_threads(0)
    with pytest.raises(RuntimeError, match="set_num_threads expects an int, but got float"):
        fg.set_num_threads(1.5)
    with pytest.raises(RuntimeError, match="expects an int, but got bool"):
        fg.set_num_threads(True)
    try:
        fg.set_num_threads(before + 1)
        assert fg.get_num_threads() == before + 1
    finally:
        fg.set_num_threads(before)


def _child(queue):
    queue.put(float(_run_all()[0].sum()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_runs_blocked_ops(blocks):
    _run_all()  # the parent's pool exists before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(float(_run_all()[0].sum()))


def test_limit_threads_caps_the_intra_op_threads_inside_its_block(monkeypatch):
    from flowgrad.utils.threads import limit_threads

    monkeypatch.setattr(intraop, "_threads", 3)
    with limit_threads(1):
        assert fg.get_num_threads() == 1
    assert fg.get_num_threads() == 3
    with limit_threads(None):
        assert fg.get_num_threads() == 3


@pytest.mark.parametrize("make", [
    lambda w: fg.optim.Adam([w], lr=0.1), lambda w: fg.optim.Adam([w], lr=0.1, amsgrad=True),
    lambda w: fg.optim.SGD([w], lr=0.01, momentum=0.9, nesterov=True),
    lambda w: fg.optim.SGD([w], lr=0.01)])
def test_optimizers_share_a_large_parameter_among_the_threads_and_update_it_the_same(
        blocks, monkeypatch, make):
    from flowgrad.optim import optimizer, sgd

    monkeypatch.setattr(optimizer, "UPDATE_CHUNK", 7)  # 6 chunks of the 40 numbers
    monkeypatch.setattr(sgd, "_CHUNKED_ABOVE", 8)

    def steps():
        rng = np.random.default_rng(4)
        w = fg.tensor(rng.standard_normal((5, 8)), requires_grad=True)
        opt = make(w)
        for _ in range(3):
            opt.zero_grad()
            ((w - 1.0) ** 3).sum().backward()
            opt.step()
        return w.detach().numpy()

    many = steps()
    assert blocks["blocked"] > 0
    monkeypatch.setattr(intraop, "_threads", 1)
    np.testing.assert_array_equal(many, steps())


def _attention_case(seed=0):
    """Attention's forward and gradients with a float mask that masks whole rows (-inf), a
    bool mask broadcast over the batch and dropout, on q, k, v of shared batch dims."""
    rng = np.random.default_rng(seed)
    q, k, v = (fg.tensor(rng.standard_normal((5, 3, 6, 4)), requires_grad=True)
               for _ in range(3))
    bias = rng.standard_normal((5, 1, 6, 6))
    bias[1, 0, 2] = -np.inf                                  # a row that attends nowhere
    keep = fg.tensor(rng.random((6, 6)) > 0.3)
    fg.manual_seed(2)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=fg.tensor(bias), dropout_p=0.2)
    b = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=0.3)
    loss = (a * a).sum() + (b * b.detach()).sum()
    return [a.detach().numpy(), b.detach().numpy()] + [
        g.numpy() for g in fg.autograd.grad(loss, (q, k, v))]


def test_attention_in_tiles_on_several_threads_gives_what_one_thread_gives(blocks, monkeypatch):
    from flowgrad.ops import attention

    monkeypatch.setattr(attention, "TILE", 40)  # chunks of one batch row: several per block
    tiled = _attention_case()
    assert blocks["blocked"] > 0
    assert np.isnan(tiled[0]).sum() == 0 and np.all(tiled[0][1, :, 2] == 0)
    monkeypatch.setattr(intraop, "_threads", 1)
    monkeypatch.setattr(attention, "TILE", 1 << 18)
    for got, want in zip(tiled, _attention_case()):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_blas_single_holds_the_blas_to_one_thread_and_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
              if lib["user_api"] == "blas"]
    if not intraop.blas_single_available():
        pytest.skip("threadpoolctl found no BLAS library")
    with intraop.blas_single():
        with intraop.blas_single():  # overlapping blocks: the last one out restores
            pass
        inside = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas"]
        assert set(inside) == {1}
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
             if lib["user_api"] == "blas"]
    assert after == before


@pytest.mark.parametrize("make, shared", [
    (lambda ps: fg.optim.Adam(ps, lr=0.1), True),
    (lambda ps: fg.optim.Adam([{"params": ps[:3]}, {"params": ps[3:], "weight_decay": 0.1}],
                              lr=0.1, amsgrad=True), True),
    # the direction is in a scratch buffer the next parameter reuses: updated one by one
    (lambda ps: fg.optim.AdamW(ps, lr=0.1, maximize=True), False),
    (lambda ps: fg.optim.SGD(ps, lr=0.01, momentum=0.9), True),
    (lambda ps: fg.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1, nesterov=True),
     False)])
def test_optimizers_share_small_parameters_among_the_threads_and_update_them_the_same(
        blocks, monkeypatch, make, shared):
    def steps():
        rng = np.random.default_rng(5)
        ps = [fg.tensor(rng.standard_normal(s), requires_grad=True)
              for s in [(3,), (2, 2), (5,), (7,), (), (5, 8), (1, 6)]]
        opt = make(ps)
        for _ in range(3):
            opt.zero_grad()
            sum(((p - 1.0) ** 3).sum() for p in ps).backward()
            opt.step()
        return [p.detach().numpy() for p in ps]

    many = steps()
    assert (blocks["blocked"] > 0) == shared
    monkeypatch.setattr(intraop, "_threads", 1)
    for got, want in zip(many, steps()):
        np.testing.assert_array_equal(got, want)


def test_attention_without_a_blas_limit_runs_its_tiles_on_one_thread(blocks, monkeypatch):
    """Without threadpoolctl, the products of several threads would queue at the BLAS: the
    tiles then run on the calling thread, with the same results."""
    from flowgrad.ops import attention

    monkeypatch.setattr(attention, "TILE", 40)
    monkeypatch.setattr(intraop, "_blas", False)
    assert not intraop.blas_single_available()
    with intraop.blas_single():  # no limit to set: a plain block
        pass
    q = np.zeros((5, 3, 6, 4))
    assert attention._plan(np, q, q, q, (5, 3, 6, 6)) == ([(0, 5)], 1)
    one = _attention_case(seed=3)
    monkeypatch.setattr(intraop, "_threads", 1)
    for got, want in zip(one, _attention_case(seed=3)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(intraop, "_blas", None)  # found again on the next use
    assert attention._plan(np, q, q, q, (5, 3, 6, 6))[0] == [(0, 5)]  # one thread now

"""Recurrent Independent Mechanisms (flowgrad.modular): the block-diagonal LSTM/GRU cells against
K separate torch.nn.LSTMCell/GRUCell; RIMCell's mechanisms pinned exactly (k_A active units per
step, inactive (h, c) bit-identical, top-k on the null attention, the official gradient rule for
inactive units, every switch); finite differences; state_dict round trip; bad input; a tiny
RIM that learns a copy task."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.debug import check_model_grads
from flowgrad.errors import ShapeError
from flowgrad.modular import RIM, BlockGRUCell, BlockLSTMCell, RIMCell, SharedWorkspace
from flowgrad.tensor import where

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=2e-5, rtol=1e-4), "float64": dict(atol=1e-10, rtol=1e-8)}


# --- block cells ----------------------------------------------------------------------------


def _block_vs_torch(kind: str, dtype: str, bias: bool = True):
    """BlockLSTMCell / BlockGRUCell against K torch cells built from the weight slices: outputs,
    and gradients of the input, the states and every parameter."""
    b, k, n_in, u = 3, 4, 5, 6
    fg_cls, t_cls = {"lstm": (BlockLSTMCell, torch.nn.LSTMCell),
                     "gru": (BlockGRUCell, torch.nn.GRUCell)}[kind]
    cell = fg_cls(n_in, u, k, bias=bias).to(getattr(fg, dtype))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, k, n_in)).astype(dtype)
    states = [rng.standard_normal((b, k, u)).astype(dtype) for _ in range(2 if kind == "lstm"
                                                                             else 1)]
    weights = [rng.standard_normal((b, k, u)).astype(dtype) for _ in states]

    xf = fg.tensor(x, requires_grad=True)
    sf = [fg.tensor(s, requires_grad=True) for s in states]
    out = cell(xf, tuple(sf) if kind == "lstm" else sf[0])
    outs = out if kind == "lstm" else (out,)
    sum(((o * fg.tensor(w)).sum() for o, w in zip(outs, weights)), fg.tensor(0.0,
                                                                            dtype=xf.dtype)
        ).backward()

    tt = getattr(torch, dtype)
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    cells = []
    total = 0
    for j in range(k):
        tc = t_cls(n_in, u, bias=bias).to(tt)
        with torch.no_grad():
            tc.weight_ih.copy_(torch.tensor(cell.weight_ih.detach().numpy()[j].T))
            tc.weight_hh.copy_(torch.tensor(cell.weight_hh.detach().numpy()[j].T))
            if bias:
                tc.bias_ih.copy_(torch.tensor(cell.bias_ih.detach().numpy()[j]))
                tc.bias_hh.copy_(torch.tensor(cell.bias_hh.detach().numpy()[j]))
        cells.append(tc)
        o = tc(xt[:, j], tuple(s[:, j] for s in st) if kind == "lstm" else st[0][:, j])
        o = o if kind == "lstm" else (o,)
        for oj, w, of in zip(o, weights, outs):
            total = total + (oj * torch.tensor(w[:, j])).sum()
            np.testing.assert_allclose(of.detach().numpy()[:, j], oj.detach().numpy(), **TOL[dtype])
    total.backward()
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    for a, t in zip(sf, st):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), **TOL[dtype])
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    for name in names:
        g = getattr(cell, name).grad.numpy()
        for j, tc in enumerate(cells):
            tg = getattr(tc, name).grad.numpy()
            np.testing.assert_allclose(g[j], tg.T if name.startswith("weight") else tg,
                                       **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_block_cell_equals_separate_torch_cells(kind, dtype):
    _block_vs_torch(kind, dtype)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_block_cell_without_bias(kind):
    _block_vs_torch(kind, "float64", bias=False)


@pytest.mark.parametrize("cls", [BlockLSTMCell, BlockGRUCell])
def test_block_cell_gradcheck(cls):
    cell = cls(3, 2, 3).double()
    x = fg.randn(2, 3, 3, dtype=fg.float64, requires_grad=True)
    h = fg.randn(2, 3, 2, dtype=fg.float64, requires_grad=True)
    if cls is BlockLSTMCell:
        c = fg.randn(2, 3, 2, dtype=fg.float64, requires_grad=True)
        fg.autograd.gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c,
                                                                   *cell.parameters()])
    else:
        fg.autograd.gradcheck(lambda x, h, *p: cell(x, h), [x, h, *cell.parameters()])


def test_block_cell_parameter_shapes_and_errors():
    cell = BlockLSTMCell(5, 3, 4)
    assert tuple(cell.weight_ih.shape) == (4, 5, 12)
    assert tuple(cell.weight_hh.shape) == (4, 3, 12)
    assert tuple(cell.bias_ih.shape) == (4, 12)
    assert tuple(BlockGRUCell(5, 3, 4).weight_ih.shape) == (4, 5, 9)
    with pytest.raises(ShapeError, match=r"input_size_per_unit=5"):
        cell(fg.randn(2, 4, 6))
    with pytest.raises(ShapeError, match=r"state of shape"):
        cell(fg.randn(2, 4, 5), (fg.zeros(2, 4, 2), fg.zeros(2, 4, 3)))
    with pytest.raises(ValueError, match="num_units"):
        BlockLSTMCell(5, 3, 0)


# --- RIMCell: mechanisms pinned exactly --------------------------------------------------------

SMALL = dict(input_key_size=4, input_value_size=6, comm_key_size=3, comm_value_size=5,
             comm_heads=2)


def _cell(k_active=2, cell="lstm", **kwargs):
    return RIMCell(5, 12, 4, k_active, cell=cell, **{**SMALL, **kwargs})


def _random_state(b=6, hidden=12, lstm=True, dtype=np.float32):
    rng = np.random.default_rng(3)
    h = fg.tensor(rng.standard_normal((b, hidden)).astype(dtype))
    if not lstm:
        return h
    return h, fg.tensor(rng.standard_normal((b, hidden)).astype(dtype))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_exactly_k_active_and_inactive_state_bit_identical(cell):
    rim = _cell(cell=cell)
    rng = np.random.default_rng(0)
    state = _random_state(lstm=cell == "lstm")
    for _ in range(6):
        x = fg.tensor(rng.standard_normal((6, 5)).astype(np.float32))
        old = [s.detach().numpy().reshape(6, 4, 3) for s in (state if cell == "lstm" else (state,))]
        h, state = rim(x, state)
        new = [s.detach().numpy().reshape(6, 4, 3) for s in (state if cell == "lstm" else (state,))]
        mask = rim.last_mask
        assert mask.dtype == bool and mask.shape == (6, 4)
        assert (mask.sum(1) == 2).all()
        for o, n in zip(old, new):
            assert np.array_equal(o[~mask], n[~mask])          # bit-identical
            assert not np.array_equal(o[mask], n[mask])
        np.testing.assert_array_equal(h.detach().numpy(), new[0].reshape(6, 12))


def test_topk_deactivates_the_units_most_attending_to_null():
    rim = _cell(k_active=2)
    rng = np.random.default_rng(1)
    state = _random_state()
    for _ in range(4):
        _, state = rim(fg.tensor(rng.standard_normal((6, 5)).astype(np.float32)), state)
        null = rim.last_attn[..., 0]
        mask = rim.last_mask
        np.testing.assert_allclose(rim.last_attn.sum(-1), 1.0, rtol=1e-6)
        for b in range(6):
            assert null[b][~mask[b]].min() >= null[b][mask[b]].max()
            order = np.argsort(null[b], kind="stable")
            assert set(np.flatnonzero(mask[b])) == set(order[:2])


def test_ties_in_null_attention_go_to_the_lower_index():
    rim = _cell(k_active=3)
    rim(fg.randn(2, 5))                  # zero state: every query is 0, all null weights 1/2
    np.testing.assert_allclose(rim.last_attn, 0.5)
    assert rim.last_mask.tolist() == [[True, True, True, False]] * 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rim_sequence_masks_and_attns(cell):
    rim = RIM(5, 12, 4, 3, cell=cell, **SMALL)
    out, state = rim(fg.randn(7, 2, 5))
    assert tuple(out.shape) == (7, 2, 12)
    assert rim.masks.shape == (7, 2, 4) and rim.masks.dtype == bool
    assert (rim.masks.sum(-1) == 3).all()
    assert rim.attns.shape == (7, 2, 4, 2)
    h = state[0] if cell == "lstm" else state
    np.testing.assert_array_equal(h.detach().numpy(), out.detach().numpy()[-1])
    bf = RIM(5, 12, 4, 3, cell=cell, batch_first=True, **SMALL)
    bf.load_state_dict(rim.state_dict())
    x = fg.randn(7, 2, 5)
    np.testing.assert_allclose(bf(x.transpose(0, 1))[0].detach().numpy(),
                               rim(x)[0].detach().numpy().transpose(1, 0, 2), rtol=1e-6, atol=1e-7)


def test_switches():
    x = fg.randn(3, 5)
    state = _random_state(b=3)
    # no input attention: x goes to every unit, all active
    rim = _cell(input_attention=False)
    assert rim.input_attention is None and rim.cell.input_size_per_unit == 5
    h, _ = rim(x, state)
    assert rim.last_mask.all() and rim.last_attn is None
    h3 = state[0].reshape(3, 4, 3)
    c3 = state[1].reshape(3, 4, 3)
    hn, _ = rim.cell(x.unsqueeze(1).expand(3, 4, 5), (h3, c3))
    np.testing.assert_allclose(h.detach().numpy(), rim.communication(hn).detach().numpy().reshape(3, 12),
                               rtol=1e-6, atol=1e-7)
    # no communication: active units are exactly the block cell's step
    rim = _cell(communication=False)
    assert rim.communication is None
    h, (_, c) = rim(x, state)
    values, _ = rim.input_attention(x, h3)
    hn, cn = rim.cell(values, (h3, c3))
    m = rim.last_mask
    np.testing.assert_array_equal(h.detach().numpy().reshape(3, 4, 3)[m], hn.detach().numpy()[m])
    np.testing.assert_array_equal(c.detach().numpy().reshape(3, 4, 3)[m], cn.detach().numpy()[m])
    # k_active = num_units: every unit active, the input still weighted by attention
    rim = _cell(k_active=4)
    rim(x, state)
    assert rim.last_mask.all() and rim.last_attn.shape == (3, 4, 2)


# --- the official gradient rule for inactive units ----------------------------------------------


def _grads(rim, x, state, weights):
    xs = fg.tensor(x.detach().numpy(), requires_grad=True)
    st = tuple(fg.tensor(s.detach().numpy(), requires_grad=True) for s in state)
    rim.zero_grad()
    _, new = rim(xs, st)
    sum((n * fg.tensor(w)).sum() for n, w in zip(new, weights)).backward()
    return xs, st


def test_inactive_units_pass_the_state_gradient_through_unchanged():
    rim = _cell().double()
    x = fg.randn(4, 5, dtype=fg.float64)
    state = _random_state(b=4, dtype=np.float64)
    rng = np.random.default_rng(2)
    weights = [rng.standard_normal((4, 12)) for _ in range(2)]
    _, st = _grads(rim, x, state, weights)
    m = np.repeat(rim.last_mask, 3, axis=1)
    for s, w in zip(st, weights):
        assert np.array_equal(s.grad.numpy()[~m], w[~m])       # exactly the identity path


def test_inactive_unit_parameters_get_no_gradient():
    rim = _cell(k_active=2).double()
    x = fg.randn(1, 5, dtype=fg.float64)
    state = _random_state(b=1, dtype=np.float64)
    _grads(rim, x, state, [np.ones((1, 12)), np.ones((1, 12))])
    off = ~rim.last_mask[0]
    assert off.sum() == 2
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        g = getattr(rim.cell, name).grad.numpy()
        assert (g[off] == 0).all() and (np.abs(g[~off]).sum(axis=tuple(range(1, g.ndim))) >
                                         0).all()
    q = rim.input_attention.query_weight.grad.numpy()
    assert (q[off] == 0).all() and (np.abs(q[~off]) > 0).any()


def _blocked_surrogate(rim, base_x, base_state):
    """The step as a function in which the inactive units' new states, read by the
    communication, are constants (computed once): its true derivative is the official rule."""
    b, k, u = base_x.shape[0], rim.num_units, rim.unit_size
    with fg.no_grad():
        rim(base_x, base_state)
        mask = fg.tensor(rim.last_mask)
        values, _ = rim.input_attention(base_x, base_state[0].reshape(b, k, u))
        h_const, _ = rim.cell(values, tuple(s.reshape(b, k, u) for s in base_state))
        h_const = fg.tensor(h_const.detach().numpy())
    m = mask.unsqueeze(-1)

    def step(x, h, c, *_params):
        h3, c3 = h.reshape(b, k, u), c.reshape(b, k, u)
        values, _ = rim.input_attention(x, h3)
        hn, cn = rim.cell(values, (h3, c3))
        h_in = where(m, hn, h_const)
        hc = where(m, h_in + rim.communication.attend(h_in), hn)
        return where(m, hc, h3).reshape(b, -1), where(m, cn, c3).reshape(b, -1)

    return step


def test_gradient_rule_against_finite_differences_of_the_blocked_step():
    """Backprop through RIMCell (k_A < k_T, communication on) equals finite differences of
    the step with the communication's reads of inactive units held constant."""
    rim = _cell(k_active=2).double()
    rng = np.random.default_rng(5)
    x = fg.tensor(rng.standard_normal((2, 5)), requires_grad=True)
    h = fg.tensor(rng.standard_normal((2, 12)), requires_grad=True)
    c = fg.tensor(rng.standard_normal((2, 12)), requires_grad=True)
    # the parameters on every path: the inactive units' query and recurrent weights, the
    # communication's projections (the others follow the same paths)
    params = [rim.input_attention.query_weight, rim.cell.weight_hh, rim.cell.bias_ih,
              rim.communication.qkv_weight, rim.communication.output.weight]
    step = _blocked_surrogate(rim, x.detach(), (h.detach(), c.detach()))
    weights = [rng.standard_normal((2, 12)) for _ in range(2)]
    numerical = fg.autograd.numerical_grad(step, [x, h, c, *params], weights=weights)
    rim.zero_grad()
    _, (hn, cn) = rim(x, (h, c))
    ((hn * fg.tensor(weights[0])).sum() + (cn * fg.tensor(weights[1])).sum()).backward()
    for t, n in zip([x, h, c, *params], numerical):
        np.testing.assert_allclose(t.grad.numpy(), n, rtol=1e-5, atol=1e-7)
    # the rule is not the true derivative: finite differences of the real step differ
    true = fg.autograd.numerical_grad(lambda x: rim(x, (h, c))[1], [x], weights=weights)[0]
    assert not np.allclose(x.grad.numpy(), true, rtol=1e-4, atol=1e-6)


def _fd_check(model, inputs, call, n_entries=6):
    """Finite differences: every entry of the inputs (fg.autograd.gradcheck) and ``n_entries``
    sampled entries of every parameter (flowgrad.debug.check_model_grads), float64."""
    fg.autograd.gradcheck(lambda *a: call(model, *a), inputs)
    outs = call(model, *inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    rng = np.random.default_rng(9)
    weights = [fg.tensor(rng.standard_normal(tuple(o.shape))) for o in outs]

    class Wrapped(fg.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *a):
            out = call(self.model, *a)
            return out if isinstance(out, tuple) else (out,)

    def loss(out, w):
        return sum(((o * wi).sum() for o, wi in zip(out, w)), fg.tensor(0.0, dtype=fg.float64))

    report = check_model_grads(Wrapped(), tuple(t.detach() for t in inputs), weights, loss,
                               n_entries=n_entries)
    assert report.ok, str(report)


@pytest.mark.parametrize("kwargs", [dict(k_active=2, communication=False),
                                    dict(k_active=4), dict(k_active=2, cell="gru",
                                                           communication=False),
                                    dict(k_active=4, cell="gru"),
                                    dict(input_attention=False)])
def test_rim_cell_gradcheck(kwargs):
    """Where no gradient is blocked (no communication, or every unit active), backprop is the
    true derivative: finite differences of the inputs and of every parameter."""
    rim = _cell(**kwargs).double()
    rng = np.random.default_rng(6)
    x = fg.tensor(rng.standard_normal((2, 5)), requires_grad=True)
    h = fg.tensor(rng.standard_normal((2, 12)), requires_grad=True)
    if rim.cell_type == "lstm":
        c = fg.tensor(rng.standard_normal((2, 12)), requires_grad=True)
        _fd_check(rim, [x, h, c], lambda m, x, h, c: m(x, (h, c))[1])
    else:
        _fd_check(rim, [x, h], lambda m, x, h: m(x, h)[1])


def test_rim_with_workspace_carries_memory_and_keeps_inactive_states():
    ws = SharedWorkspace(3, num_slots=2, slot_size=4, num_heads=2, topk=2)
    rim = _cell(workspace=ws)
    state = _random_state(b=3)
    h, state = rim(fg.randn(3, 5), state)
    assert len(state) == 3 and tuple(state[2].shape) == (3, 2, 4)
    old = state
    h, state = rim(fg.randn(3, 5), state)
    m = rim.last_mask
    for o, n in zip(old[:2], state[:2]):
        assert np.array_equal(o.detach().numpy().reshape(3, 4, 3)[~m], n.detach().numpy().reshape(3, 4, 3)[~m])
    out, st = RIM(5, 12, 4, 2, workspace=SharedWorkspace(3, 2, 4, 2), **SMALL)(fg.randn(4, 3, 5))
    assert tuple(out.shape) == (4, 3, 12) and len(st) == 3
    with pytest.raises(ValueError, match="unit_size=5"):
        _cell(workspace=SharedWorkspace(5, num_heads=1))


def test_rim_gradcheck_over_a_sequence_with_workspace():
    rim = RIM(5, 12, 4, 4, workspace=SharedWorkspace(3, 2, 4, 2, topk=2), **SMALL).double()
    x = fg.randn(2, 2, 5, dtype=fg.float64, requires_grad=True)
    _fd_check(rim, [x], lambda m, x: m(x)[0], n_entries=2)


# --- state_dict, errors, learning ---------------------------------------------------------------


def test_state_dict_round_trip(tmp_path):
    rim = RIM(5, 12, 4, 2, **SMALL)
    sd = rim.state_dict()
    assert "cell.input_attention.query_weight" in sd
    assert tuple(sd["cell.cell.weight_ih"].shape) == (4, 6, 12)
    assert tuple(sd["cell.communication.qkv_weight"].shape) == (4, 3, 2 * (2 * 3 + 5))
    other = RIM(5, 12, 4, 2, **SMALL)
    path = tmp_path / "rim.safetensors"
    fg.save(sd, str(path))
    other.load_state_dict(fg.load(str(path)))
    x = fg.randn(5, 2, 5)
    np.testing.assert_array_equal(rim(x)[0].detach().numpy(), other(x)[0].detach().numpy())
    np.testing.assert_array_equal(rim.masks, other.masks)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"k_active=5 is larger than num_units=4"):
        RIMCell(5, 12, 4, 5)
    with pytest.raises(ValueError, match=r"k_active=0"):
        RIMCell(5, 12, 4, 0)
    with pytest.raises(ValueError, match=r"hidden_size=10 is not divisible by num_units=4"):
        RIMCell(5, 10, 4, 2)
    with pytest.raises(ValueError, match="cell='rnn'"):
        RIMCell(5, 12, 4, 2, cell="rnn")
    rim = _cell()
    with pytest.raises(ShapeError, match=r"last size 6 differs from input_size=5"):
        rim(fg.randn(3, 6))
    with pytest.raises(ShapeError, match=r"expected \(batch, hidden_size\)"):
        rim(fg.randn(3, 5), (fg.zeros(3, 10), fg.zeros(3, 10)))
    with pytest.raises(ShapeError, match="input_size=5"):
        RIM(5, 12, 4, 2, **SMALL)(fg.randn(4, 3, 6))


def _copy_batch(rng, batch, digits=3, delay=2, symbols=4):
    """Copy task: ``digits`` one-hot symbols, ``delay`` blanks, a marker, then reproduce the
    symbols. Input channels: symbols + blank + marker; targets: blank (class symbols) until
    the recall phase."""
    length = 2 * digits + delay + 1
    seq = rng.integers(0, symbols, size=(batch, digits))
    x = np.zeros((length, batch, symbols + 2), dtype=np.float32)
    y = np.full((length, batch), symbols, dtype=np.int64)
    for t in range(digits):
        x[t, np.arange(batch), seq[:, t]] = 1
    x[digits:digits + delay, :, symbols] = 1
    x[digits + delay, :, symbols + 1] = 1
    x[digits + delay + 1:, :, symbols] = 1
    y[digits + delay + 1:] = seq.T
    return fg.tensor(x), fg.tensor(y.reshape(-1))


def test_tiny_rim_learns_a_copy_task():
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    rim = RIM(6, 32, 4, 2, input_key_size=8, input_value_size=16, comm_key_size=8,
              comm_value_size=8, comm_heads=2)
    head = fg.nn.Linear(32, 5)
    params = list(rim.parameters()) + list(head.parameters())
    opt = fg.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(40):
        x, y = _copy_batch(rng, 32)
        out, _ = rim(x)
        loss = fg.nn.functional.cross_entropy(head(out).reshape(-1, 5), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses

"""SCOFF (object files and schemata, Goyal et al. 2020, arXiv 2006.16225): the Gumbel-softmax
selection against torch.nn.functional.gumbel_softmax; one schema per object file per step
under hard selection (exactly one-hot, the update equal to that schema's GRU/LSTM cell alone,
checked against torch's cells); straight-through gradients into the selection attention;
exactly k active object files and inactive ones bit-identical; every gradient against finite
differences in float64; num_schemata=1 against a RIM with shared modules; bad input;
state_dict round trip; a tiny SCOFF learning a toy task."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.autograd.gradcheck import central_difference
from flowgrad.errors import ShapeError
from flowgrad.modular import scoff as scoff_module
from flowgrad.modular.scoff import SCOFF, SCOFFCell, gumbel_softmax

torch = pytest.importorskip("torch")

SMALL = dict(input_key_size=3, input_value_size=4, comm_key_size=2, comm_value_size=2,
             comm_heads=2, schema_key_size=3)


def _cell(cell="gru", n_f=3, n_s=2, k=2, hidden=6, input_size=3, seed=0, **kw):
    fg.manual_seed(seed)
    return SCOFFCell(input_size, hidden, n_f, n_s, k, cell=cell, **{**SMALL, **kw}).double()


def _state(cell, batch, hidden, rng):
    h = fg.tensor(rng.standard_normal((batch, hidden)))
    return (h, fg.tensor(rng.standard_normal((batch, hidden)))) if cell == "lstm" else h


# --- the selection ------------------------------------------------------------------------------

@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_gumbel_softmax_matches_torch(hard, tau):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    w = rng.standard_normal((5, 4))
    torch.manual_seed(3)
    noise = -torch.empty(5, 4, dtype=torch.float64).exponential_().log()
    torch.manual_seed(3)  # the same draw inside torch's gumbel_softmax
    tl = torch.tensor(logits, requires_grad=True)
    ty = torch.nn.functional.gumbel_softmax(tl, tau=tau, hard=hard)
    (ty * torch.tensor(w)).sum().backward()
    fl = fg.tensor(logits, requires_grad=True)
    fy = gumbel_softmax(fl, tau=tau, hard=hard, noise=fg.tensor(noise.detach().numpy()))
    (fy * fg.tensor(w)).sum().backward()
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), atol=1e-15, rtol=1e-12)
    np.testing.assert_allclose(fl.grad.detach().numpy(), tl.grad.detach().numpy(), atol=1e-14, rtol=1e-12)
    if hard:  # exactly one-hot in value, not one ulp off
        y = fy.detach().numpy()
        assert set(np.unique(y)) <= {0.0, 1.0} and (y.sum(-1) == 1.0).all()
        assert (y.argmax(-1) == (logits + noise.detach().numpy()).argmax(-1)).all()


def test_gumbel_softmax_bad_input():
    with pytest.raises(ValueError, match="tau must be positive, got 0"):
        gumbel_softmax(fg.zeros(2, 3), tau=0)
    with pytest.raises(ShapeError, match=r"noise shape \(3,\) differs"):
        gumbel_softmax(fg.zeros(2, 3), noise=fg.zeros(3))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_one_schema_per_object_file_equals_that_schema_alone(cell):
    """Hard selection while training: the weights are exactly one-hot and each active OF's new
    state is, bit for bit, its chosen schema's candidate; that candidate is torch's GRUCell /
    LSTMCell with the schema's parameters applied to the OF's attended input and state."""
    n_f, n_s, k, hidden, batch = 4, 3, 3, 8, 5
    m = _cell(cell, n_f=n_f, n_s=n_s, k=k, hidden=hidden, communication=False)
    rng = np.random.default_rng(1)
    x = fg.tensor(rng.standard_normal((batch, 3)))
    state = _state(cell, batch, hidden, rng)
    captured = {}
    orig = m._candidates

    def spy(inputs, states):
        captured["inputs"], captured["cand"] = inputs, orig(inputs, states)
        return captured["cand"]

    m._candidates = spy
    fg.manual_seed(7)
    h, new_state = m(x, state)
    sel = m.last_selection.detach().numpy()
    assert set(np.unique(sel)) == {0.0, 1.0} and (sel.sum(-1) == 1.0).all()
    schema = sel.argmax(-1)
    mask = m.last_mask
    assert mask.sum() == batch * k
    np.testing.assert_array_equal(m.last_schema, np.where(mask, schema, -1))
    u = hidden // n_f
    news = new_state if cell == "lstm" else (new_state,)
    olds = state if cell == "lstm" else (state,)
    cands = [c.detach().numpy() for c in captured["cand"]]
    inputs = captured["inputs"].detach().numpy()
    p = {name: t.detach().numpy() for name, t in m.schema_cell.named_parameters()}
    torch_cell = torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell
    for b in range(batch):
        for f in range(n_f):
            j = schema[b, f]
            for new, old, cand in zip(news, olds, cands):
                got = new.detach().numpy().reshape(batch, n_f, u)[b, f]
                before = old.detach().numpy().reshape(batch, n_f, u)[b, f]
                if mask[b, f]:
                    np.testing.assert_array_equal(got, cand[b, f, j])
                else:
                    np.testing.assert_array_equal(got, before)
            if not mask[b, f]:
                continue
            tc = torch_cell(inputs.shape[-1], u).double()
            tc.load_state_dict({"weight_ih": torch.tensor(p["weight_ih"][j].T),
                                "weight_hh": torch.tensor(p["weight_hh"][j].T),
                                "bias_ih": torch.tensor(p["bias_ih"][j]),
                                "bias_hh": torch.tensor(p["bias_hh"][j])})
            tx = torch.tensor(inputs[b, f][None])
            th = [torch.tensor(o.detach().numpy().reshape(batch, n_f, u)[b, f][None]) for o in olds]
            ref = tc(tx, tuple(th)) if cell == "lstm" else (tc(tx, th[0]),)
            for new, r in zip(news, ref):
                np.testing.assert_allclose(new.detach().numpy().reshape(batch, n_f, u)[b, f],
                                           r.detach().numpy()[0], atol=1e-14, rtol=1e-12)


def test_schema_choice_varies_and_parameters_are_shared():
    """The schemata's parameters have a leading axis of num_schemata whatever the number of
    object files, and different OFs do pick different schemata."""
    for n_f in (2, 4, 6):
        m = _cell(n_f=n_f, n_s=3, k=2, hidden=2 * n_f)
        assert tuple(m.schema_cell.weight_ih.shape) == (3, 4, 6)
    m = _cell(n_f=6, n_s=3, k=6, hidden=12)
    rng = np.random.default_rng(2)
    fg.manual_seed(0)
    m(fg.tensor(rng.standard_normal((16, 3))), _state("gru", 16, 12, rng))
    assert len(np.unique(m.last_schema)) == 3


def test_straight_through_gradient_reaches_selection_logits(monkeypatch):
    """Hard selection: the selection logits receive the relaxed softmax's gradient,
    d/dlogits = J_softmax((logits + g) / tau)^T dL/dy / tau, with dL/dy[s] = <dL/dh, cand_s>,
    and from them the selection attention's parameters get a nonzero gradient."""
    m = _cell(n_f=3, n_s=3, k=3, communication=False, tau=0.7)
    rng = np.random.default_rng(3)
    x = fg.tensor(rng.standard_normal((4, 3)))
    h0 = _state("gru", 4, 6, rng)
    seen = {}
    draw = scoff_module.sample_gumbel

    def spy_noise(shape, like):
        seen["g"] = draw(shape, like)
        return seen["g"]

    monkeypatch.setattr(scoff_module, "sample_gumbel", spy_noise)
    cand_fn, attn_fn = m._candidates, m.schema_attention.forward

    def spy_candidates(inputs, states):
        seen["cand"] = cand_fn(inputs, states)
        seen["cand"][0].retain_grad()
        return seen["cand"]

    def spy_logits(h, candidates):
        seen["logits"] = attn_fn(h, candidates)
        seen["logits"].retain_grad()
        return seen["logits"]

    m._candidates = spy_candidates
    m.schema_attention.forward = spy_logits
    h, _ = m(x, h0)
    upstream = rng.standard_normal((4, 6))
    (h * fg.tensor(upstream)).sum().backward()
    logits = seen["logits"].detach().numpy()
    z = (logits + seen["g"].detach().numpy()) / 0.7
    y_soft = np.exp(z - z.max(-1, keepdims=True))
    y_soft /= y_soft.sum(-1, keepdims=True)
    cand = seen["cand"][0].detach().numpy()                      # (B, n_f, n_s, U)
    d_y = (cand * upstream.reshape(4, 3, 1, 2)).sum(-1)          # dL/dy (B, n_f, n_s)
    expected = y_soft * (d_y - (y_soft * d_y).sum(-1, keepdims=True)) / 0.7
    np.testing.assert_allclose(seen["logits"].grad.detach().numpy(), expected, rtol=1e-10,
                               atol=1e-14)
    assert np.abs(expected).max() > 1e-3
    for p in m.schema_attention.parameters():
        g = p.grad.detach().numpy()
        assert np.isfinite(g).all() and np.abs(g).max() > 1e-6


def test_eval_is_deterministic_argmax():
    m = _cell(n_f=3, n_s=3, k=2)
    rng = np.random.default_rng(4)
    x = fg.tensor(rng.standard_normal((6, 3)))
    h0 = _state("gru", 6, 6, rng)
    m.eval()
    fg.manual_seed(0)
    a, _ = m(x, h0)
    sel_a = m.last_selection.detach().numpy()
    fg.manual_seed(99)
    b, _ = m(x, h0)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    logits = m.schema_attention(h0.reshape(6, 3, 2), m._candidates(
        m.input_attention(x, h0.reshape(6, 3, 2))[0], [h0.reshape(6, 3, 2)])[0]).detach().numpy()
    np.testing.assert_array_equal(sel_a.argmax(-1), logits.argmax(-1))
    soft = _cell(n_f=3, n_s=3, k=2, hard=False, tau=0.7).eval()
    fg.manual_seed(0)
    soft(x, h0)
    e = np.exp((logits - logits.max(-1, keepdims=True)) / 0.7)
    np.testing.assert_allclose(soft.last_selection.detach().numpy(), e / e.sum(-1, keepdims=True),
                               rtol=1e-12)


# --- top-k activation --------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_exactly_k_active_and_inactive_bit_identical(cell):
    """Every step: exactly k OFs active, the k least attending to the null slot; the others'
    h (and c) bit-identical to the previous step, communication included."""
    n_f, k, hidden, batch, steps = 5, 2, 10, 7, 6
    fg.manual_seed(0)
    m = SCOFF(3, hidden, n_f, 3, k, cell=cell, **SMALL).double()
    rng = np.random.default_rng(5)
    x = fg.tensor(rng.standard_normal((steps, batch, 3)))
    state = _state(cell, batch, hidden, rng)
    fg.manual_seed(0)
    prev, masks = state, []
    for t in range(steps):
        _, new = m.cell(x[t], prev)
        mask = m.cell.last_mask
        assert mask.dtype == bool and (mask.sum(-1) == k).all()
        null = m.cell.last_attn[..., 0]
        expected = np.zeros_like(mask)
        np.put_along_axis(expected, np.argsort(null, -1, kind="stable")[:, :k], True, -1)
        np.testing.assert_array_equal(mask, expected)
        pairs = zip(new, prev) if cell == "lstm" else [(new, prev)]
        for a, b in pairs:
            a = a.detach().numpy().reshape(batch, n_f, -1)
            b = b.detach().numpy().reshape(batch, n_f, -1)
            np.testing.assert_array_equal(a[~mask], b[~mask])
            assert (a[mask] != b[mask]).any(axis=-1).all()
        masks.append(mask)
        prev = new
    fg.manual_seed(0)  # the same run through the sequence wrapper
    m(x, state)
    np.testing.assert_array_equal(m.masks, np.stack(masks))
    assert ((m.schemata >= 0) == m.masks).all()


def test_sequence_wrapper_batch_first_and_cell_loop():
    fg.manual_seed(0)
    m = SCOFF(3, 6, 3, 2, 2, **SMALL).double()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5, 3))
    fg.manual_seed(11)
    out, h = m(fg.tensor(x))
    fg.manual_seed(11)
    state, outs = None, []
    for t in range(4):
        y, state = m.cell(fg.tensor(x[t]), state)
        outs.append(y.detach().numpy())
    np.testing.assert_array_equal(out.detach().numpy(), np.stack(outs))
    np.testing.assert_array_equal(h.detach().numpy(), state.detach().numpy())
    m.batch_first = True
    fg.manual_seed(11)
    out_bf, _ = m(fg.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_array_equal(out_bf.detach().numpy(), out.detach().numpy().transpose(1, 0, 2))
    assert m.schemata.shape == (4, 5, 3)


# --- gradients ---------------------------------------------------------------------------------

def _gradient_check(m, x, state, seed):
    """Backprop against central differences for every parameter, the input and the initial
    state (all entries, or 12 of the larger tensors), the Gumbel noise fixed by reseeding
    before each pass."""
    rng = np.random.default_rng(8)
    w = None

    def loss():
        nonlocal w
        fg.manual_seed(seed)
        out, st = m(x, state)
        h = st[1] if isinstance(st, tuple) else st
        if w is None:
            w = (fg.tensor(rng.standard_normal(tuple(out.shape))),
                 fg.tensor(rng.standard_normal(tuple(h.shape))))
        return (out * w[0]).sum() + (h * w[1]).sum()

    leaves = dict(m.named_parameters())
    leaves["x"] = x
    states = state if isinstance(state, tuple) else (state,)
    for i, s in enumerate(states):
        leaves[f"state{i}"] = s
    for t in leaves.values():
        t.grad = None
    loss().backward()
    checked = 0
    for name, t in leaves.items():
        analytic = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().numpy()

        def f():
            with fg.no_grad():
                return float(loss().item())

        entries = list(np.ndindex(*t.shape))
        if len(entries) > 12:  # a fixed sample of the larger tensors
            entries = [entries[i] for i in rng.choice(len(entries), 12, replace=False)]
        for index in entries:
            num = central_difference(f, [t._data], 1e-6, entry=(0, index))
            assert abs(num - analytic[index]) <= 1e-7 + 1e-5 * abs(num), (name, index, num,
                                                                          analytic[index])
            checked += 1
    return checked


@pytest.mark.parametrize("cell,hard,k,comm", [("gru", True, 1, False), ("lstm", False, 1, False),
                                              ("gru", False, 2, True), ("lstm", True, 2, True)])
def test_gradients_match_finite_differences(cell, hard, k, comm):
    """float64, 2 steps, every parameter, the input and the initial state, the Gumbel noise
    fixed by a seed. Finite differences see the true gradient, so the two rules that depart
    from it on purpose are kept apart: in hard mode the straight-through path is cut for the
    check (the one-hot weights detached: the same forward value, and the selection attention's
    true gradient is exactly 0), and the communication (whose RIMs rule blocks the gradient into
    inactive OFs) is checked with every OF active."""
    fg.manual_seed(0)
    m = SCOFF(2, 4, 2, 2, k, cell=cell, hard=hard, communication=comm, input_key_size=2,
              input_value_size=2, comm_key_size=2, comm_value_size=2, comm_heads=1,
              schema_key_size=2).double()
    rng = np.random.default_rng(9)
    x = fg.tensor(rng.standard_normal((2, 2, 2)), requires_grad=True)
    state = tuple(fg.tensor(rng.standard_normal((2, 4)), requires_grad=True)
                  for _ in range(2 if cell == "lstm" else 1))
    state = state if cell == "lstm" else state[0]
    if hard:
        fg.manual_seed(5)
        with_st = m(x, state)[0].detach().numpy()
        select = m.cell.select
        m.cell.select = lambda logits: select(logits).detach()
        fg.manual_seed(5)
        np.testing.assert_array_equal(m(x, state)[0].detach().numpy(), with_st)
    checked = _gradient_check(m, x, state, seed=5)
    assert checked > 80


# --- num_schemata = 1 --------------------------------------------------------------------------

def test_one_schema_is_a_rim_with_shared_modules():
    rims = pytest.importorskip("flowgrad.modular.rims")
    n_f, hidden, k = 3, 6, 2
    fg.manual_seed(0)
    s = SCOFFCell(3, hidden, n_f, 1, k, **SMALL).double()
    kw = {key: v for key, v in SMALL.items() if key != "schema_key_size"}
    r = rims.RIMCell(3, hidden, n_f, k, cell="gru", **kw).double()
    sd = s.state_dict()
    mapped = {}
    for name, value in r.state_dict().items():
        if name.startswith("input_attention.") or name.startswith("communication."):
            mapped[name] = sd[name]
        else:  # the block cell: every module gets the single schema's parameters
            leaf = name.split(".")[-1]
            mapped[name] = np.broadcast_to(sd[f"schema_cell.{leaf}"], value.shape).copy()
    r.load_state_dict(mapped)
    rng = np.random.default_rng(10)
    h_s = h_r = _state("gru", 4, hidden, rng)
    for _ in range(4):
        x = fg.tensor(rng.standard_normal((4, 3)))
        fg.manual_seed(0)
        h_s, _ = s(x, h_s)
        h_r, _ = r(x, h_r)
        np.testing.assert_array_equal(s.last_mask, r.last_mask)
        np.testing.assert_allclose(h_s.detach().numpy(), h_r.detach().numpy(), atol=1e-13, rtol=1e-12)
        assert (s.last_schema[s.last_mask] == 0).all()


# --- bad input, state_dict ---------------------------------------------------------------------

def test_bad_input():
    with pytest.raises(ValueError, match="num_schemata=0"):
        SCOFFCell(3, 6, 3, 0, 2)
    with pytest.raises(ValueError, match="k_active=4"):
        SCOFFCell(3, 6, 3, 2, 4)
    with pytest.raises(ValueError, match="k_active=0"):
        SCOFFCell(3, 6, 3, 2, 0)
    with pytest.raises(ValueError, match="hidden_size=7 is not divisible by num_object_files=3"):
        SCOFFCell(3, 7, 3, 2, 2)
    with pytest.raises(ValueError, match="tau must be positive"):
        SCOFFCell(3, 6, 3, 2, 2, tau=0.0)
    with pytest.raises(ValueError, match="cell must be one of"):
        SCOFFCell(3, 6, 3, 2, 2, cell="rnn")
    with pytest.raises(ValueError, match="k_active must equal num_object_files=3"):
        SCOFFCell(3, 6, 3, 2, 2, input_attention=False)
    m = SCOFFCell(3, 6, 3, 2, 2, **SMALL)
    with pytest.raises(ShapeError, match=r"input_size=3\), got \(2, 4\)"):
        m(fg.zeros(2, 4))
    with pytest.raises(ShapeError, match=r"hidden_size=6\), got \(2, 5\)"):
        m(fg.zeros(2, 3), fg.zeros(2, 5))
    with pytest.raises(ShapeError, match="expected x of shape"):
        SCOFF(3, 6, 3, 2, 2, **SMALL)(fg.zeros(4, 2, 5))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_state_dict_round_trip(cell, tmp_path):
    a = _cell(cell, seed=0)
    b = _cell(cell, seed=1)
    keys = list(a.state_dict())
    assert "schema_cell.weight_ih" in keys and "schema_attention.query.weight" in keys
    assert any(k.startswith("input_attention.") for k in keys)
    assert any(k.startswith("communication.") for k in keys)
    rng = np.random.default_rng(12)
    x = fg.tensor(rng.standard_normal((3, 3)))
    fg.manual_seed(4)
    ya, _ = a(x)
    path = tmp_path / "scoff.safetensors"
    fg.save(a.state_dict(), str(path))
    b.load_state_dict(fg.load(str(path)))
    fg.manual_seed(4)
    yb, _ = b(x)
    np.testing.assert_array_equal(ya.detach().numpy(), yb.detach().numpy())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_no_input_attention_and_no_communication():
    m = _cell(n_f=3, n_s=2, k=3, input_attention=False, communication=False)
    assert m.input_attention is None and m.communication is None
    fg.manual_seed(0)
    h, _ = m(fg.tensor(np.random.default_rng(0).standard_normal((2, 3))))
    assert m.last_mask.all() and m.last_attn is None and h.shape == (2, 6)


# --- learning ---------------------------------------------------------------------------------

def test_tiny_scoff_learns_a_toy_task():
    """A running sum (half the sum of the inputs so far, read out at every step from the
    second): within 60 Adam steps the MSE falls below a fifth of the targets' variance (the
    constant predictor's error); measured 0.047 of it with this seed (0.13 and 0.06 with seeds
    1 and 2), a GRU of the same width 0.155."""
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = SCOFF(2, 16, 4, 2, 3, cell="gru", input_key_size=8, input_value_size=8,
                  comm_key_size=4, comm_value_size=4, comm_heads=2, schema_key_size=4)
    head = fg.nn.Linear(16, 1)
    opt = fg.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=0.02)
    losses, variances = [], []
    for _ in range(60):
        values = rng.uniform(0, 1, (5, 64))
        x = np.stack([values, np.zeros_like(values)], -1).astype(np.float32)
        y = (np.cumsum(values, 0)[1:] / 2)[..., None].astype(np.float32)
        out, _ = model(fg.tensor(x))
        loss = ((head(out[1:]) - fg.tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        variances.append(float(y.var()))
    ratio = np.mean(losses[-10:]) / np.mean(variances)
    assert ratio < 0.2, (ratio, losses)
    assert losses[-1] < 0.1 * losses[0]

"""Long-term dependencies: the Jacobian probe against PyTorch's autograd.functional.jacobian and
finite differences, Hochreiter's bound, the latching and adding tasks, gradient clipping, and
the recipe's short variant."""

import json
import math

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.datasets import sequence_tasks
from flowgrad.debug.long_term import (
    SequenceClassifier,
    clipping_demo,
    jacobian_norms,
    plot_clipping,
    plot_jacobian_norms,
    set_spectral_radius,
    step_jacobians,
)

DT = {"float32": (fg.float32, torch.float32), "float64": (fg.float64, torch.float64)}
TOL = {"float32": 2e-4, "float64": 1e-10}


def _pair(kind, dtype, input_size=3, hidden=5, seed=0, **kwargs):
    """The same module in torch and flowgrad (torch's weights copied through state_dict)."""
    torch.manual_seed(seed)
    tm = getattr(torch.nn, kind)(input_size, hidden, **kwargs).to(DT[dtype][1])
    with torch.no_grad():  # larger weights than the default, so the products are not trivial
        for p in tm.parameters():
            p.mul_(2.0)
    fm = getattr(fg.nn, kind)(input_size, hidden, dtype=DT[dtype][0], **kwargs)
    fm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, fm


def _torch_flow(tm, kind, x, layers, hidden):
    """s_t -> s_T in torch over x[t:], on flat states (h, then c for the LSTM)."""
    lstm = kind.startswith("LSTM")
    cell = kind.endswith("Cell")
    n_h = layers * hidden

    def flow(s, xs):
        h = s[:n_h]
        c = s[n_h:] if lstm else None
        for t in range(xs.shape[0]):
            if cell:
                xt = xs[t:t + 1]
                if lstm:
                    h, c = tm(xt, (h.view(1, hidden), c.view(1, hidden)))
                    h, c = h.reshape(-1), c.reshape(-1)
                else:
                    h = tm(xt, h.view(1, hidden)).reshape(-1)
            else:
                xt = xs[t:t + 1].unsqueeze(0 if tm.batch_first else 1)
                shaped = h.view(layers, 1, hidden)
                if lstm:
                    _, (h, c) = tm(xt, (shaped, c.view(layers, 1, hidden)))
                    h, c = h.reshape(-1), c.reshape(-1)
                else:
                    h = tm(xt, shaped)[1].reshape(-1)
        return torch.cat([h, c]) if lstm else h

    return flow


def _torch_states(flow, s0, x):
    states = [s0]
    for t in range(x.shape[0]):
        states.append(flow(states[-1], x[t:t + 1]).detach())
    return states


CASES = [("RNN", {}), ("LSTM", {}), ("GRU", {}), ("RNN", {"batch_first": True}),
         ("LSTM", {"num_layers": 2, "batch_first": True}), ("GRU", {"num_layers": 2}),
         ("RNN", {"nonlinearity": "relu"}), ("RNNCell", {}), ("LSTMCell", {}), ("GRUCell", {})]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,kwargs", CASES)
def test_products_match_torch_jacobian(kind, kwargs, dtype):
    tm, fm = _pair(kind, dtype, **kwargs)
    layers = kwargs.get("num_layers", 1)
    T, hidden = 7, 5
    x = np.random.default_rng(1).normal(size=(T, 3))
    xt = torch.tensor(x, dtype=DT[dtype][1])
    flow = _torch_flow(tm, kind, xt, layers, hidden)
    n = layers * hidden * (2 if kind.startswith("LSTM") else 1)
    s0 = torch.zeros(n, dtype=DT[dtype][1])
    states = _torch_states(flow, s0, xt)
    r = jacobian_norms(fm, x, norm="fro", keep_products=True)
    assert r.jacobians.shape == (T, n, n) and r.products.shape == (T, n, n)
    np.testing.assert_allclose(r.states, torch.stack(states).numpy(), atol=TOL[dtype] * 10)
    for t in range(T):
        if t in (0, 3, T - 1):
            want = torch.autograd.functional.jacobian(lambda s, t=t: flow(s, xt[t:]),
                                                      states[t])
            k = T - t  # the distance T - t
            np.testing.assert_allclose(r.products[k - 1], want.numpy(), atol=TOL[dtype] * 10,
                                       rtol=TOL[dtype] * 10)
            assert r.log_norms[k - 1] == pytest.approx(
                math.log(torch.linalg.norm(want).item()), abs=TOL[dtype] * 20)
        one = torch.autograd.functional.jacobian(lambda s, t=t: flow(s, xt[t:t + 1]),
                                                 states[t]).numpy()
        np.testing.assert_allclose(r.jacobians[t], one, atol=TOL[dtype] * 10)
        assert r.spectral_radius[t] == pytest.approx(np.abs(np.linalg.eigvals(one)).max(),
                                                     rel=TOL[dtype] * 100)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_batch_first_batch_of_one_and_initial_state(kind):
    tm, fm = _pair(kind, "float64", batch_first=True)
    x = np.random.default_rng(2).normal(size=(1, 6, 3))
    h0 = np.random.default_rng(3).normal(size=(1, 1, 5)) * 0.5
    hx = (h0, h0 * 2) if kind == "LSTM" else h0
    a = jacobian_norms(fm, x, hx=hx)
    b = jacobian_norms(fm, x[0], hx=(h0[:, 0], 2 * h0[:, 0]) if kind == "LSTM" else h0[:, 0])
    np.testing.assert_array_equal(a.log_norms, b.log_norms)
    assert a.states[0, :5] == pytest.approx(h0.reshape(-1))
    c = jacobian_norms(fm, x)  # zeros: a different trajectory
    assert not np.allclose(a.log_norms, c.log_norms)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "LSTMCell"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_finite_differences_agree(kind, dtype):
    _, fm = _pair(kind, dtype, seed=4)
    x = np.random.default_rng(5).normal(size=(9, 3))
    exact, states = step_jacobians(fm, x)
    fd, states_fd = step_jacobians(fm, x, method="finite_differences")
    np.testing.assert_array_equal(states, states_fd)
    np.testing.assert_allclose(fd, exact, atol=1e-7 if dtype == "float64" else 2e-3)


def test_spectral_norm_and_h_block_for_lstm():
    tm, fm = _pair("LSTM", "float64")
    x = np.random.default_rng(6).normal(size=(6, 3))
    full = jacobian_norms(fm, x, keep_products=True)
    h = jacobian_norms(fm, x, state="h", keep_products=True)
    assert full.state == "(h, c)" and h.state == "h"
    assert h.products.shape == (6, 5, 5) and h.jacobians.shape == (6, 5, 5)
    np.testing.assert_allclose(h.products, full.products[:, :5, :5], atol=1e-12)
    for k in range(6):
        assert full.log_norms[k] == pytest.approx(
            math.log(np.linalg.norm(full.products[k], 2)), abs=1e-10)
    # d h_T / d h_t with c_t fixed, by torch
    xt = torch.tensor(x)
    flow = _torch_flow(tm, "LSTM", xt, 1, 5)
    states = _torch_states(flow, torch.zeros(10, dtype=torch.float64), xt)
    c2 = states[2][5:]
    want = torch.autograd.functional.jacobian(
        lambda hh: flow(torch.cat([hh, c2]), xt[2:])[:5], states[2][:5])
    np.testing.assert_allclose(h.products[6 - 2 - 1], want.numpy(), atol=1e-10)


def test_hochreiter_bound_holds_for_random_tanh_rnns():
    """||prod_{m=1}^q W F'(net)||_2 <= ||W||_2^q for all q <= 100 (max tanh' = 1)."""
    rng = np.random.default_rng(7)
    for scale in (0.5, 1.0, 3.0):
        fg.manual_seed(int(scale * 10))
        rnn = fg.nn.RNN(2, 8, dtype=fg.float64)
        with fg.no_grad():
            rnn.weight_hh_l0.mul_(scale * 4)
        w = np.linalg.norm(rnn.weight_hh_l0.detach().numpy(), 2)
        r = jacobian_norms(rnn, rng.normal(size=(100, 2)))
        bound = r.distance * math.log(w)
        assert np.all(r.log_norms <= bound + 1e-9), (scale, (r.log_norms - bound).max())
        assert np.all(r.step_norms <= w + 1e-12)


def test_decay_rate_is_log_of_spectral_radius():
    """W with spectral radius 0.9, near the origin (tanh' ~ 1): slope of ln||ds_T/ds_t|| per
    step ~ ln 0.9 (the lecture's exponential decay)."""
    fg.manual_seed(0)
    rnn = fg.nn.RNN(1, 16, dtype=fg.float64)
    with fg.no_grad():
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    set_spectral_radius(rnn, 0.9)
    x = 1e-3 * np.random.default_rng(0).normal(size=(150, 1))
    r = jacobian_norms(rnn, x)
    assert r.spectral_radius == pytest.approx(np.full(150, 0.9), abs=1e-3)
    assert abs(r.slope(start=30) - math.log(0.9)) < 0.05
    assert r.norms[-1] < 1e-4
    set_spectral_radius(rnn, 1.2)  # and growth above 1
    assert jacobian_norms(rnn, x).slope(start=30) > 0


def test_probe_leaves_the_module_alone_and_reports():
    _, fm = _pair("GRU", "float32", dropout=0.0)
    fm.train()
    before = {k: v.detach().numpy().copy() for k, v in fm.state_dict().items()}
    r = jacobian_norms(fm, np.ones((12, 3)))
    assert fm.training and all(p.grad is None for p in fm.parameters())
    for k, v in fm.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k])
    text = str(r)
    assert "spectral norm" in text and "T = 12" in text
    assert r.norms.shape == (12,) and r.distance[0] == 1 and r.distance[-1] == 12


def test_probe_errors():
    with pytest.raises(ValueError, match="bidirectional"):
        jacobian_norms(fg.nn.GRU(2, 3, bidirectional=True), np.ones((4, 2)))
    with pytest.raises(TypeError, match="expected fg.nn.RNN"):
        jacobian_norms(fg.nn.Linear(2, 3), np.ones((4, 2)))
    with pytest.raises(ValueError, match="one sequence"):
        jacobian_norms(fg.nn.RNN(2, 3), np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="norm must be"):
        jacobian_norms(fg.nn.RNN(2, 3), np.ones((4, 2)), norm="nuc")
    with pytest.raises(ValueError, match="method must be"):
        step_jacobians(fg.nn.RNN(2, 3), np.ones((4, 2)), method="forward")


def test_plots_write_png(tmp_path):
    reports = {name: jacobian_norms(getattr(fg.nn, name)(1, 4), np.ones((10, 1)))
               for name in ("RNN", "LSTM", "GRU")}
    path = plot_jacobian_norms(reports, tmp_path / "jac.png", title="t")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_clipping_tames_exploding_gradients(tmp_path):
    x, y = sequence_tasks.latching(512, 20, seed=1)
    r = clipping_demo(x, y, hidden_size=16, radius=3.0, steps=100, lr=0.5, max_norm=1.0)
    s = r.summary()
    assert len(r.loss["clipped"]) == len(r.grad_norm["unclipped"]) == 100
    # the same first step (same weights, same batch), then the runs part
    assert r.grad_norm["clipped"][0] == pytest.approx(r.grad_norm["unclipped"][0], rel=1e-5)
    assert s["unclipped_max_grad_norm"] > 10 * r.max_norm
    # one run's outcome is chaotic (radius 3, lr 0.5: an unclipped run sometimes recovers, a
    # clipped one sometimes stalls, and which depends on the machine's rounding); over five
    # initialisations the median clipped run ends far lower than the median unclipped one
    finals = [r] + [clipping_demo(x, y, hidden_size=16, radius=3.0, steps=100, lr=0.5,
                                  max_norm=1.0, seed=seed) for seed in (1, 2, 3, 4)]
    clipped = np.median([f.summary()["clipped_final_loss"] for f in finals])
    unclipped = np.median([f.summary()["unclipped_final_loss"] for f in finals])
    assert clipped < 0.1 < 1.0 < unclipped
    assert "clipped:" in str(r)
    assert plot_clipping(r, tmp_path / "clip.png").read_bytes()[:4] == b"\x89PNG"


def test_sequence_classifier_and_spectral_radius():
    fg.manual_seed(0)
    m = SequenceClassifier("gru", 1, 6)
    assert m(fg.randn(4, 9, 1)).shape == (4, 2)
    rnn = SequenceClassifier("rnn", 1, 6).rnn
    set_spectral_radius(rnn, 2.5)
    w = rnn.weight_hh_l0.detach().numpy()
    assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(2.5, rel=1e-5)
    with pytest.raises(ValueError, match="cell must be"):
        SequenceClassifier("transformer", 1, 4)


# --- tasks --------------------------------------------------------------------------------------

def test_latching_task():
    x, y = sequence_tasks.latching(400, 30, L=3, noise=0.2, seed=3)
    assert x.shape == (400, 30, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1} and 0.35 < y.mean() < 0.65
    sign = np.where(y == 1, 1.0, -1.0)
    assert np.all(np.abs(x[:, :3, 0] - sign[:, None]) <= 0.2 + 1e-6)  # the bit, for L steps
    assert np.abs(x[:, 3:]).max() <= 0.2 and np.abs(x[:, 3:]).max() > 0.19  # bounded noise
    x2, y2 = sequence_tasks.latching(400, 30, L=3, noise=0.2, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(sequence_tasks.latching(400, 30, seed=4)[0][:, 0], x[:, 0])
    xs, ys = sequence_tasks.latching(300, 10, signal="sign", noise=0.0, seed=0)
    np.testing.assert_array_equal(ys, (xs[:, 0, 0] > 0).astype(np.int64))
    assert np.all(xs[:, 1:] == 0)
    xg, _ = sequence_tasks.latching(2000, 5, noise=0.3, noise_kind="gaussian", seed=0)
    assert np.std(xg[:, 1:]) == pytest.approx(0.3, rel=0.05)
    for kwargs in ({"T": 3, "L": 4}, {"T": 5, "noise": -1.0}, {"T": 5, "signal": "x"},
                   {"T": 5, "noise_kind": "laplace"}):
        with pytest.raises(ValueError, match="latching"):
            sequence_tasks.latching(10, **kwargs)


def test_latching_splits_are_independent():
    tr, va, te = sequence_tasks.latching_splits(12, n_train=50, n_valid=40, n_test=30, seed=9)
    assert [len(s[0]) for s in (tr, va, te)] == [50, 40, 30]
    assert not np.allclose(tr[0][:30], te[0])
    assert np.array_equal(sequence_tasks.latching_splits(12, 50, 40, 30, seed=9)[2][0], te[0])


def test_adding_task():
    x, y = sequence_tasks.adding(500, 40, seed=1)
    assert x.shape == (500, 40, 2) and y.shape == (500,)
    assert np.all(x[:, :, 1].sum(1) == 2)
    first = x[:, :, 1].argmax(1)
    assert np.all(first < 20)
    np.testing.assert_allclose(y, (x[:, :, 0] * x[:, :, 1]).sum(1), rtol=1e-6)
    with pytest.raises(ValueError, match="adding"):
        sequence_tasks.adding(5, 1)


# --- the recipe's short variant -----------------------------------------------------------------

def test_recipe_quick_variant(tmp_path):
    from flowgrad import recipes

    name = "long_term_dependencies"
    assert name in recipes.RECIPES
    module = recipes.get(name)
    s = module.run(out=str(tmp_path), quick=True, progress=False)
    assert s["command"] == f"flowgrad train {name} --quick"
    md, js = tmp_path / f"{name}.md", tmp_path / f"{name}.json"
    assert md.exists() and js.exists()
    assert json.loads(js.read_text())["command"] == s["command"]
    text = md.read_text()
    assert f"Command: `{s['command']}`" in text and "Bengio, Simard & Frasconi" in text
    for fig in ("latching_success.png", "jacobian_norms.png", "clipping.png"):
        assert (tmp_path / fig).read_bytes()[:4] == b"\x89PNG"
    # it learns: every model latches the bit over the shortest length
    shortest = min(s["lengths"])
    for model in ("rnn", "lstm", "gru"):
        assert s["success_rate"][model][str(shortest)] == 1.0, s["success_rate"]
    clip = s["clipping"]  # the mean over 3 initialisations
    assert clip["seeds"] == 3 and clip["clipped_final_loss"] < clip["unclipped_final_loss"]


def test_log_norms_survive_products_beyond_float64_range():
    """At the fixed point 0 of a tanh RNN with zero input, J_t = W: ||W^q|| ~ 2^q with
    spectral radius 2, past 1e308 for q = 1100, yet the logarithms stay exact."""
    fg.manual_seed(1)
    rnn = fg.nn.RNN(1, 6, bias=False, dtype=fg.float64)
    set_spectral_radius(rnn, 2.0)
    r = jacobian_norms(rnn, np.zeros((1100, 1)))
    assert np.all(np.isfinite(r.log_norms)) and np.isinf(r.norms[-1])
    assert abs(r.slope(start=100) - math.log(2.0)) < 1e-3
    w = rnn.weight_hh_l0.detach().numpy()
    assert r.log_norms[29] == pytest.approx(math.log(np.linalg.norm(
        np.linalg.matrix_power(w, 30), 2)), rel=1e-9)

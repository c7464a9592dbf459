"""fg.nn.RNN / LSTM / GRU and the cells against torch.nn: weights moved through state_dict, then
outputs, final states and the gradients of every parameter, of the input and of the initial
states; state_dict both ways; finite differences; dropout between layers; BPTT over long
sequences and truncated BPTT; bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=1e-5, rtol=1e-4), "float64": dict(atol=1e-10, rtol=1e-8)}
KINDS = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}), "rnn_relu": ("RNN", {"nonlinearity":
                                                                             "relu"}),
         "lstm": ("LSTM", {}), "gru": ("GRU", {})}
# (batch_first, bias, initial state): each value of each flag, in both combinations with others
FLAGS = [(False, True, True), (True, False, True), (False, False, False), (True, True, False)]


def _pair(kind, dtype, *args, **kwargs):
    """The same layer in torch and flowgrad, torch's weights loaded into flowgrad."""
    name, extra = KINDS[kind]
    tm = getattr(torch.nn, name)(*args, **extra, **kwargs).to(getattr(torch, dtype))
    fm = getattr(fg.nn, name)(*args, **extra, **kwargs, dtype=getattr(fg, dtype))
    fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    return tm, fm


def _run(lib, module, x, states, lstm: bool, dtype: str, seed: int = 1):
    """Forward, a random weighted sum of every output, backward; returns the outputs and the
    gradients of the input, the states and the parameters (in named_parameters order)."""
    xt = lib.tensor(x, requires_grad=True)
    st = [lib.tensor(s, requires_grad=True) for s in states]
    hx = None if not st else (tuple(st) if lstm else st[0])
    out, hn = module(xt, hx)
    outs = [out, *hn] if lstm else [out, hn]
    rng = np.random.default_rng(seed)
    total = None
    for o in outs:
        term = (o * lib.tensor(rng.standard_normal(tuple(o.shape)).astype(dtype))).sum()
        total = term if total is None else total + term
    total.backward()
    grads = [xt.grad] + [s.grad for s in st] + [p.grad for _, p in module.named_parameters()]
    return ([o.detach().numpy() for o in outs],
            [None if g is None else g.detach().numpy() for g in grads])


def _compare(a, b, dtype):
    (oa, ga), (ob, gb) = a, b
    assert len(oa) == len(ob) and len(ga) == len(gb)
    for u, v in zip(oa, ob):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, **TOL[dtype])
    for k, (u, v) in enumerate(zip(ga, gb)):
        assert (u is None) == (v is None), f"gradient {k}"
        if u is not None:
            np.testing.assert_allclose(u, v, **TOL[dtype], err_msg=f"gradient {k}")


def _inputs(kind, layers, directions, batch_first, init, dtype, steps=5, batch=3, size=4,
            hidden=3, batched=True):
    rng = np.random.default_rng(0)
    shape = ((batch, steps, size) if batch_first else (steps, batch, size)) if batched \
        else (steps, size)
    x = rng.standard_normal(shape).astype(dtype)
    sshape = (layers * directions, batch, hidden) if batched else (layers * directions, hidden)
    n_states = (2 if kind == "lstm" else 1) if init else 0
    return x, [rng.standard_normal(sshape).astype(dtype) for _ in range(n_states)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_first,bias,init", FLAGS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_matches_torch(kind, layers, bidirectional, batch_first, bias, init, dtype):
    tm, fm = _pair(kind, dtype, 4, 3, layers, bias=bias, batch_first=batch_first,
                   bidirectional=bidirectional)
    x, states = _inputs(kind, layers, 2 if bidirectional else 1, batch_first, init, dtype)
    lstm = kind == "lstm"
    _compare(_run(fg, fm, x, states, lstm, dtype), _run(torch, tm, x, states, lstm, dtype), dtype)


@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input_matches_torch(kind, init):
    tm, fm = _pair(kind, "float64", 4, 3, 2, bidirectional=True, batch_first=True)
    x, states = _inputs(kind, 2, 2, False, init, "float64", batched=False)
    lstm = kind == "lstm"
    a, b = _run(fg, fm, x, states, lstm, "float64"), _run(torch, tm, x, states, lstm, "float64")
    assert a[0][0].shape == (5, 6) and a[0][1].shape == (4, 3)
    _compare(a, b, "float64")


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_round_trip_and_surface(kind):
    name, extra = KINDS[kind]
    fm = getattr(fg.nn, name)(5, 4, 2, **extra, bidirectional=True, dtype=fg.float64)
    tm = getattr(torch.nn, name)(5, 4, 2, **extra, bidirectional=True).double()
    sd = fm.state_dict()
    assert list(sd) == list(tm.state_dict())
    assert all(tuple(sd[k].shape) == tuple(v.shape) for k, v in tm.state_dict().items())
    # flowgrad -> torch (strict), then both compute the same thing
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd.items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((3, 2, 5))
    out_f = fm(fg.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(out_f, tm(torch.tensor(x))[0].detach().numpy(), atol=1e-12)
    # torch -> flowgrad into a fresh module
    fresh = getattr(fg.nn, name)(5, 4, 2, **extra, bidirectional=True, dtype=fg.float64)
    fresh.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    np.testing.assert_allclose(fresh(fg.tensor(x))[0].detach().numpy(), out_f, atol=1e-12)
    # the rest of PyTorch's surface
    assert repr(fm) == repr(tm)
    assert [[p.shape for p in ws] for ws in fm.all_weights] == \
        [[tuple(p.shape) for p in ws] for ws in tm.all_weights]
    assert fm.all_weights[1][0] is fm.weight_ih_l0_reverse
    assert fm.flatten_parameters() is None


def test_repr_of_every_option():
    for kw in ({"num_layers": 3, "bias": False, "batch_first": True, "dropout": 0.25,
                "bidirectional": True}, {}):
        assert repr(fg.nn.LSTM(3, 4, **kw)) == repr(torch.nn.LSTM(3, 4, **kw))
    assert repr(fg.nn.RNN(3, 4, nonlinearity="relu")) == repr(torch.nn.RNN(3, 4,
                                                                          nonlinearity="relu"))
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        assert repr(getattr(fg.nn, name)(3, 4, bias=False)) == \
            repr(getattr(torch.nn, name)(3, 4, bias=False))
    assert repr(fg.nn.RNNCell(3, 4, nonlinearity="relu")) == \
        repr(torch.nn.RNNCell(3, 4, nonlinearity="relu"))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_default_init_is_uniform_over_one_over_sqrt_hidden(name):
    fg.manual_seed(0)
    m = getattr(fg.nn, name)(30, 25)
    bound = 1 / np.sqrt(25)
    for p in m.parameters():
        a = p.detach().numpy()
        assert np.abs(a).max() <= bound
        assert np.abs(a).max() > 0.9 * bound and abs(a.mean()) < 0.1 * bound


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck_finite_differences(kind):
    _, fm = _pair(kind, "float64", 3, 2, 2, bidirectional=True)
    x, states = _inputs(kind, 2, 2, False, True, "float64", steps=3, batch=2, size=3, hidden=2)
    inputs = [fg.tensor(a, requires_grad=True) for a in [x, *states]]
    params = list(fm.parameters())

    def f(x, *st):
        out, hn = fm(x, tuple(st) if kind == "lstm" else st[0])
        return (out, *hn) if kind == "lstm" else (out, hn)

    assert fg.autograd.gradcheck(f, inputs)
    # the parameters: run the module's weights as inputs of the check
    names = [n for n, _ in fm.named_parameters()]

    def g(*ws):
        for n, w in zip(names, ws):
            fm._parameters[n] = w
        return f(*[t.detach() for t in inputs])

    try:
        assert fg.autograd.gradcheck(g, [fg.tensor(p.detach().numpy(), requires_grad=True)
                                         for p in params])
    finally:
        for n, p in zip(names, params):
            fm._parameters[n] = p


def test_dropout_between_layers():
    fg.manual_seed(0)
    m = fg.nn.LSTM(4, 8, 3, dropout=0.5, dtype=fg.float64)
    plain = fg.nn.LSTM(4, 8, 3, dtype=fg.float64)
    plain.load_state_dict(m.state_dict())
    x = fg.tensor(np.random.default_rng(0).standard_normal((6, 2, 4)))
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), plain(x)[0].detach().numpy())
    m.train()
    out, (h, c) = m(x)
    assert not np.allclose(out.detach().numpy(), plain(x)[0].detach().numpy())
    # the first layer's final state is computed before any dropout
    np.testing.assert_array_equal(h[0].detach().numpy(), plain(x)[1][0][0].detach().numpy())
    (out.sum() + c.sum()).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), n
        assert np.abs(p.grad.numpy()).sum() > 0, n


def test_dropout_warning_and_range():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        fg.nn.GRU(3, 4, dropout=0.2)
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        fg.nn.GRU(3, 4, 2, dropout=1.5)


# --- cells ---------------------------------------------------------------------------------------

CELLS = {"rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}),
         "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}), "lstm": ("LSTMCell", {}),
         "gru": ("GRUCell", {})}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batched,init,bias", [(True, True, True), (True, False, False),
                                               (False, True, False), (False, False, True)])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(kind, batched, init, bias, dtype):
    name, extra = CELLS[kind]
    tm = getattr(torch.nn, name)(4, 3, bias=bias, **extra).to(getattr(torch, dtype))
    fm = getattr(fg.nn, name)(4, 3, bias=bias, **extra, dtype=getattr(fg, dtype))
    fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    lead = (5,) if batched else ()
    x = rng.standard_normal(lead + (4,)).astype(dtype)
    states = [rng.standard_normal(lead + (3,)).astype(dtype)
              for _ in range((2 if kind == "lstm" else 1) if init else 0)]

    def run(lib, m):
        xt = lib.tensor(x, requires_grad=True)
        st = [lib.tensor(s, requires_grad=True) for s in states]
        out = m(xt, (tuple(st) if kind == "lstm" else st[0]) if st else None)
        outs = list(out) if kind == "lstm" else [out]
        w = np.random.default_rng(1)
        total = sum((o * lib.tensor(w.standard_normal(tuple(o.shape)).astype(dtype))).sum()
                    for o in outs)
        total.backward()
        grads = [xt.grad] + [s.grad for s in st] + [p.grad for p in m.parameters()]
        return [o.detach().numpy() for o in outs], [g.detach().numpy() for g in grads]

    _compare(run(fg, fm), run(torch, tm), dtype)


def test_cell_loop_equals_layer():
    """A custom loop over LSTMCell computes what nn.LSTM does, gradients included."""
    cell = fg.nn.LSTMCell(3, 4, dtype=fg.float64)
    layer = fg.nn.LSTM(3, 4, dtype=fg.float64)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    xa, xb = fg.tensor(x, requires_grad=True), fg.tensor(x, requires_grad=True)
    h = c = fg.zeros(2, 4, dtype=fg.float64)
    outs = []
    for t in range(6):
        h, c = cell(xa[t], (h, c))
        outs.append(h)
    loop = fg.stack(outs)
    out, (hn, cn) = layer(xb)
    np.testing.assert_allclose(loop.detach().numpy(), out.detach().numpy(), atol=1e-14)
    (loop.sum() + c.sum()).backward()
    (out.sum() + cn.sum()).backward()
    np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(cell.weight_hh.grad.numpy(), layer.weight_hh_l0.grad.numpy(),
                               atol=1e-12)


# --- long sequences and truncated BPTT -----------------------------------------------------------

def test_long_sequence_backward():
    m = fg.nn.LSTM(2, 3, dtype=fg.float64)
    x = fg.tensor(np.random.default_rng(0).standard_normal((2000, 1, 2)), requires_grad=True)
    out, (h, c) = m(x)
    h.sum().backward()
    assert np.isfinite(x.grad.numpy()).all() and np.abs(x.grad.numpy()[-1]).sum() > 0
    cell = fg.nn.GRUCell(2, 3, dtype=fg.float64)
    h = None
    for t in range(2000):
        h = cell(x[t].detach(), h)
    h.sum().backward()  # 2000 recorded steps: the engine is iterative
    assert np.isfinite(cell.weight_hh.grad.numpy()).all()


def test_truncated_bptt_with_detach():
    m = fg.nn.GRU(2, 3, dtype=fg.float64)
    rng = np.random.default_rng(0)
    x1 = fg.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    x2 = fg.tensor(rng.standard_normal((4, 2, 2)))
    _, h = m(x1)
    out, _ = m(x2, h.detach())
    out.sum().backward()
    assert x1.grad is None
    g_truncated = m.weight_hh_l0.grad.numpy().copy()
    m.zero_grad()
    out2, _ = m(x2, fg.tensor(h.detach().numpy()))
    out2.sum().backward()
    np.testing.assert_allclose(g_truncated, m.weight_hh_l0.grad.numpy(), atol=1e-14)


def test_no_grad_and_carried_state_without_grad():
    m = fg.nn.LSTM(2, 3)
    with fg.no_grad():
        out, (h, c) = m(fg.zeros(4, 1, 2))
    assert not out.requires_grad and not h.requires_grad
    out, (h, c) = m(fg.zeros(4, 1, 2), (h, c))
    assert out.requires_grad and out.dtype == fg.float32


# --- bad input -----------------------------------------------------------------------------------

def _torch_error(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn()
        except Exception as e:  # the message to find in flowgrad's
            return str(e)
    raise AssertionError("torch accepted the input")


def _z(lib, *shape, dtype="float32"):
    return lib.zeros(*shape, dtype=getattr(lib, dtype))


BAD = {
    "feature_size": lambda lib, m: m(_z(lib, 5, 2, 6)),
    "feature_size_unbatched": lambda lib, m: m(_z(lib, 5, 6)),
    "rank_1": lambda lib, m: m(_z(lib, 5)),
    "rank_4": lambda lib, m: m(_z(lib, 1, 5, 2, 3)),
    "h0_batch": lambda lib, m: m(_z(lib, 5, 2, 3), _states(lib, m, (2, 3, 4), (2, 2, 4))),
    "h0_layers": lambda lib, m: m(_z(lib, 5, 2, 3), _states(lib, m, (1, 2, 4), (2, 2, 4))),
    "c0_shape": lambda lib, m: m(_z(lib, 5, 2, 3), _states(lib, m, (2, 2, 4), (2, 2, 5))),
    "h0_rank_unbatched": lambda lib, m: m(_z(lib, 5, 3), _states(lib, m, (2, 2, 4), (2, 4))),
    "h0_rank_batched": lambda lib, m: m(_z(lib, 5, 2, 3), _states(lib, m, (2, 4), (2, 4))),
}


def _states(lib, m, h_shape, c_shape):
    if type(m).__name__ == "LSTM":
        return _z(lib, *h_shape), _z(lib, *c_shape)
    return _z(lib, *h_shape)


@pytest.mark.parametrize("name,case", [(n, c) for n in ("RNN", "LSTM", "GRU") for c in BAD
                                       if c != "c0_shape" or n == "LSTM"])
def test_bad_input_raises_with_torchs_message(name, case):
    expected = _torch_error(lambda: BAD[case](torch, getattr(torch.nn, name)(3, 4, 2)))
    with pytest.raises((ShapeError, ValueError, RuntimeError)) as info:
        BAD[case](fg, getattr(fg.nn, name)(3, 4, 2))
    assert expected in str(info.value)


def test_feature_mismatch_names_the_shapes():
    with pytest.raises(ShapeError, match=r"Expected 3, got 6 \(LSTM: input shape \(5, 2, 6\)"):
        fg.nn.LSTM(3, 4)(fg.zeros(5, 2, 6))
    with pytest.raises(ShapeError, match=r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 3, 4\]"):
        fg.nn.LSTM(3, 4)(fg.zeros(5, 2, 3), (fg.zeros(1, 3, 4), fg.zeros(1, 2, 4)))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_dtype_mismatch_raises_as_linear(name):
    m = getattr(fg.nn, name)(3, 4)
    x = fg.zeros(*((5, 2, 3) if "Cell" not in name else (2, 3)), dtype=fg.float64)
    with pytest.raises(DTypeError, match="expected input and weight to have the same dtype, got "
                                         "float64 and float32"):
        m(x)


CELL_BAD = {
    "feature_size": lambda lib, m: m(_z(lib, 2, 6)),
    "rank_3": lambda lib, m: m(_z(lib, 2, 2, 3)),
    "hx_batch": lambda lib, m: m(_z(lib, 2, 3), _cell_states(lib, m, (3, 4), (2, 4))),
    "hx_size": lambda lib, m: m(_z(lib, 2, 3), _cell_states(lib, m, (2, 5), (2, 4))),
    "cx_size": lambda lib, m: m(_z(lib, 2, 3), _cell_states(lib, m, (2, 4), (2, 5))),
}


def _cell_states(lib, m, h_shape, c_shape):
    if type(m).__name__ == "LSTMCell":
        return _z(lib, *h_shape), _z(lib, *c_shape)
    return _z(lib, *h_shape)


@pytest.mark.parametrize("name,case", [(n, c) for n in ("RNNCell", "LSTMCell", "GRUCell")
                                       for c in CELL_BAD if c != "cx_size" or n == "LSTMCell"])
def test_cell_bad_input_raises_with_torchs_message(name, case):
    expected = _torch_error(lambda: CELL_BAD[case](torch, getattr(torch.nn, name)(3, 4)))
    with pytest.raises((ShapeError, ValueError, RuntimeError)) as info:
        CELL_BAD[case](fg, getattr(fg.nn, name)(3, 4))
    assert expected in str(info.value)


def test_cell_unbatched_input_with_batched_state_is_refused():
    with pytest.raises(ShapeError, match=r"hidden of shape \(2, 4\) does not fit input of "
                                         r"shape \(3,\): expected \(4,\)"):
        fg.nn.GRUCell(3, 4)(fg.zeros(3), fg.zeros(2, 4))


def test_constructor_errors():
    with pytest.raises(NotImplementedError, match="proj_size"):
        fg.nn.LSTM(3, 4, proj_size=2)
    for bad, match in [(lambda m: m.nn.RNN(3, 4, nonlinearity="sigmoid"), "Unknown nonlinearity"),
                       (lambda m: m.nn.GRU(3, 4, proj_size=2), "only supported for LSTM"),
                       (lambda m: m.nn.LSTM(3, 0), "hidden_size must be greater than zero"),
                       (lambda m: m.nn.LSTM(3, 4, 0), "num_layers must be greater than zero")]:
        expected = _torch_error(lambda bad=bad: bad(torch))
        assert match in expected
        with pytest.raises(ValueError) as info:
            bad(fg)
        assert expected in str(info.value)



def test_state_dtype_mismatch_names_the_state():
    with pytest.raises(DTypeError, match="expected hidden state and weight to have the same "
                                         "dtype, got float64 and float32"):
        fg.nn.GRU(3, 4)(fg.zeros(5, 2, 3), fg.zeros(1, 2, 4, dtype=fg.float64))
    with pytest.raises(DTypeError, match="expected hidden1 and weight to have the same dtype"):
        fg.nn.LSTMCell(3, 4)(fg.zeros(2, 3), (fg.zeros(2, 4), fg.zeros(2, 4, dtype=fg.float64)))

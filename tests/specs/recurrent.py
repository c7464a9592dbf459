"""Op table, recurrent layers: the fused LSTM, GRU and Elman ops of flowgrad.ops.recurrent
against PyTorch's functional ``torch.lstm``/``torch.gru``/``torch.rnn_tanh``/``torch.rnn_relu``
(padded and packed, one and both directions) and its cells ``torch.lstm_cell``,
``torch.gru_cell``, ``torch.rnn_tanh_cell``, ``torch.rnn_relu_cell``."""

import numpy as np

import flowgrad as fg
from flowgrad.nn.functional import recurrent as FR
from flowgrad.ops import recurrent as R

from opspec import OpSpec

T, B, IN, H = 4, 2, 3, 2
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}
BATCH_SIZES = (2, 2, 1)  # packed: lengths 3 and 2


def _shapes(kind: str, n_rows: tuple, directions: int = 1) -> tuple:
    """Inputs, states, then per direction weight_ih, weight_hh, bias_ih, bias_hh."""
    g = GATES[kind] * H
    states = ((directions, B, H),) * (2 if kind == "lstm" else 1)
    return (n_rows,) + states + ((g, IN), (g, H), (g,), (g,)) * directions


def _sequence(kind: str, packed: bool, directions: int):
    """fn(m, x, h0[, c0], *weights[, batch_sizes]) for either library."""
    lstm = kind == "lstm"

    def fn(m, x, *rest):
        if packed:
            *rest, batch_sizes = rest
        states, weights = (rest[:2], rest[2:]) if lstm else (rest[:1], rest[1:])
        if m is not fg:
            hx = tuple(states) if lstm else states[0]
            if packed:
                out, *hn = getattr(m, kind)(x, batch_sizes, hx, list(weights), True, 1, 0.0,
                                            False, directions == 2)
            else:
                out, *hn = getattr(m, kind)(x, hx, list(weights), True, 1, 0.0, False,
                                            directions == 2, False)
            return [out, *hn]
        sizes = tuple(int(s) for s in batch_sizes.numpy()) if packed else None
        rows = x if packed else x.reshape(-1, IN)
        outs, hs, cs = [], [], []
        for d in range(directions):
            w = weights[4 * d:4 * d + 4]
            c0 = states[1][d] if lstm else None
            out, h_n, c_n = FR.recurrent_layer(MODES[kind], rows, states[0][d], c0, *w, sizes,
                                               d == 1)
            outs.append(out)
            hs.append(h_n)
            cs.append(c_n)
        out = outs[0] if directions == 1 else fg.cat(outs, dim=1)
        if not packed:
            out = out.reshape(T, B, -1)
        return [out, fg.stack(hs)] + ([fg.stack(cs)] if lstm else [])

    return fn


def _cell(kind: str):
    def fn(m, x, *rest):
        f = getattr(m if m is not fg else FR, f"{kind}_cell")
        if kind == "lstm":
            h, c, *w = rest
            return list(f(x, (h, c), *w))
        h, *w = rest
        return f(x, h, *w)

    return fn


_COVERS = {"lstm": (R.LSTMLayer,), "gru": (R.GRULayer,), "rnn_tanh": (R.RNNLayer,),
           "rnn_relu": (R.RNNLayer,)}
_PACKED = lambda rng: (np.asarray(BATCH_SIZES, dtype=np.int64),)  # noqa: E731

SPECS = []
for _kind in GATES:
    _tol = dict(tol32=(2e-5, 2e-4))
    SPECS += [
        OpSpec(f"recurrent.{_kind}", _sequence(_kind, False, 1),
               shapes=_shapes(_kind, (T, B, IN)), low=-1.0, high=1.0,
               covers=_COVERS[_kind], **_tol),
        OpSpec(f"recurrent.{_kind}_bidirectional_packed", _sequence(_kind, True, 2),
               shapes=_shapes(_kind, (sum(BATCH_SIZES), IN), 2), low=-1.0, high=1.0,
               consts=_PACKED, covers=_COVERS[_kind], **_tol),
        OpSpec(f"recurrent.{_kind}_cell", _cell(_kind),
               shapes=_shapes(_kind, (B, IN))[:1]
               + tuple(s[1:] for s in _shapes(_kind, (B, IN))[1:3 if _kind == "lstm" else 2])
               + _shapes(_kind, (B, IN))[3 if _kind == "lstm" else 2:],
               low=-1.0, high=1.0, covers=_COVERS[_kind], **_tol),
    ]

"""fg.onnx.export of recurrent layers: nn.LSTM / GRU / RNN and the cells become ONNX's LSTM / GRU
/ RNN nodes (gates reordered from PyTorch's layout), and onnxruntime matches flowgrad."""

from __future__ import annotations

import io

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class Tagger(nn.Module):
    def __init__(self, kind, **kw):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = getattr(nn, kind)(8, 6, **kw)
        self.out = nn.Linear(6 * (2 if kw.get("bidirectional") else 1), 5)

    def forward(self, x):
        y, _ = self.rnn(self.emb(x))
        return self.out(y)


def _session(model, args, input_names):
    f = io.BytesIO()
    fg.onnx.export(model, args, f, input_names=input_names, output_names=["y"])
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto)
    return proto, ort.InferenceSession(f.getvalue())


@pytest.mark.parametrize("kind,kw", [
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("LSTM", {"bias": False}),
    ("GRU", {"num_layers": 2}),
    ("GRU", {"bidirectional": True, "batch_first": True}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    ("RNN", {"num_layers": 2}),
])
def test_recurrent_layers_run_in_onnxruntime(kind, kw):
    fg.manual_seed(0)
    model = Tagger(kind, **kw).eval()
    x = fg.randint(0, 20, (3, 7))
    proto, sess = _session(model, (x,), ["x"])
    assert kind in {n.op_type for n in proto.graph.node}
    names = {i.name for i in proto.graph.initializer}
    assert "rnn.weight_ih_l0" in names and "rnn.weight_hh_l0" in names  # state_dict names kept
    got = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_given_initial_state_is_a_graph_input():
    fg.manual_seed(1)
    lstm = nn.LSTM(4, 5)

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x, h, c):
            y, (hn, cn) = self.lstm(x, (h, c))
            return y.sum(0) + hn[0] + cn[0]

    x, h, c = fg.randn(6, 2, 4), fg.randn(1, 2, 5), fg.randn(1, 2, 5)
    _, sess = _session(WithState(), (x, h, c), ["x", "h", "c"])
    got = sess.run(None, {"x": x.numpy(), "h": h.numpy(), "c": c.numpy()})[0]
    np.testing.assert_allclose(got, WithState()(x, h, c).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_run_in_onnxruntime(cell):
    fg.manual_seed(2)
    m = getattr(nn, cell)(4, 3)
    x = fg.randn(2, 4)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = m

        def forward(self, x):
            out = self.cell(x)
            return out[0] if isinstance(out, tuple) else out

    _, sess = _session(Step(), (x,), ["x"])
    got = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, Step()(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_packed_sequence_is_refused_naming_the_op():
    lstm = nn.LSTM(3, 4)

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, data):  # steps of 2, 2 and 1 sequences, packed by hand
            packed = nn.utils.rnn.PackedSequence(data, fg.tensor([2, 2, 1]))
            return self.lstm(packed)[1][0]

    with pytest.raises(NotImplementedError, match="LSTMLayer.*PackedSequence"):
        fg.onnx.export(Packed(), (fg.randn(5, 3),), io.BytesIO())

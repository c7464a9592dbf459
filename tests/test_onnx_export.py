"""fg.onnx.export: each exported file runs in onnxruntime and matches flowgrad's forward."""

from __future__ import annotations

import io

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _run(model, x, tmp_path=None, batches=(3, 5), make=None, **kw):
    """Export with a dynamic batch, check the model, compare onnxruntime with flowgrad."""
    make = make or (lambda n: fg.randn(n, *x.shape[1:]))
    kw.setdefault("input_names", ["x"])
    kw.setdefault("output_names", ["y"])
    kw.setdefault("dynamic_axes", {"x": {0: "batch"}, "y": {0: "batch"}})
    if tmp_path is None:
        f = io.BytesIO()
        fg.onnx.export(model, x, f, **kw)
        data = f.getvalue()
    else:
        path = tmp_path / "model.onnx"
        fg.onnx.export(model, x, str(path), **kw)
        data = path.read_bytes()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == kw["input_names"]
    assert [o.name for o in sess.get_outputs()] == kw["output_names"]
    model.eval()
    for n in batches:
        xb = make(n)
        (got,) = sess.run(None, {kw["input_names"][0]: xb.numpy()})
        with fg.no_grad():
            want = model(xb).numpy()
        assert got.shape == want.shape
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return proto


def test_mlp_to_a_path(tmp_path):
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 16),
                          nn.Sigmoid(), nn.Linear(16, 4), nn.LeakyReLU(0.1),
                          nn.LogSoftmax(dim=1))
    proto = _run(model, fg.randn(3, 8), tmp_path)
    inits = {i.name for i in proto.graph.initializer}
    assert {"0.weight", "0.bias", "3.weight", "5.bias"} <= inits
    assert model.training is False  # _run put it in eval; export restores what it found
    model.train()
    fg.onnx.export(model, fg.randn(3, 8), io.BytesIO())
    assert model.training and model[2].training


def test_small_cnn():
    fg.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, stride=2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 5))
    model.train()
    for _ in range(2):  # give the running statistics something to hold
        model(fg.randn(4, 3, 12, 12))
    model.eval()
    proto = _run(model, fg.randn(2, 3, 12, 12), batches=(2, 7))
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "MaxPool", "AveragePool", "Relu", "Gemm"} <= ops
    inits = {i.name for i in proto.graph.initializer}
    assert {"1.running_mean", "1.running_var", "1.weight"} <= inits


def test_conv1d_maps_to_conv():
    fg.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.GELU(), nn.MaxPool1d(2),
                          nn.Flatten(), nn.Linear(16, 3))
    _run(model, fg.randn(2, 2, 8))


def test_lenet5():
    from flowgrad.models.lenet import LeNet5

    fg.manual_seed(3)
    model = LeNet5()
    _run(model, fg.rand(2, 1, 28, 28), batches=(2, 4))  # padded to 32x32 inside the graph


class _Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, idx):
        return self.out(self.emb(idx).mean(dim=1))


def test_embedding_mean():
    fg.manual_seed(4)
    model = _Bag()
    _run(model, fg.randint(0, 20, (2, 5)), make=lambda n: fg.randint(0, 20, (n, 5)),
         input_names=["tokens"], output_names=["logits"],
         dynamic_axes={"tokens": [0, 1], "logits": [0]})


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = nn.functional.gelu(self.fc(self.norm(x)))
        h = fg.cat([h, x * 2.0 - 1.0], dim=-1).transpose(1, 2)   # (N, 16, T)
        a = (h.permute(0, 2, 1) @ h).sum(dim=-1) / 4.0           # (N, T)
        return nn.functional.softmax(a, dim=-1)


def test_layer_norm_gelu_softmax():
    fg.manual_seed(5)
    for opset in (13, 17, 20):
        _run(_Block(), fg.randn(2, 4, 8), opset_version=opset)


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("affine", [{"elementwise_affine": False}, {"bias": False}, {}])
def test_layer_norm_over_two_dims_with_and_without_its_affine_terms(opset, affine):
    fg.manual_seed(6)
    norm = nn.LayerNorm((3, 4), eps=1e-3, **affine)
    if norm.weight is not None:
        norm.weight.data[...] = fg.randn(3, 4)
    _run(norm, fg.randn(2, 5, 3, 4) * 3 + 1, opset_version=opset)


class _Odd(nn.Module):
    def forward(self, x):
        return fg.cumsum(x, dim=1)


def test_unsupported_op_is_named():
    with pytest.raises(NotImplementedError,
                       match=r"no ONNX mapping for op 'Cumsum' \(flowgrad\.ops\.reduction\.Cumsum\)"):
        fg.onnx.export(_Odd(), fg.randn(2, 3), io.BytesIO())


def test_default_names_and_static_shapes():
    model = nn.Linear(3, 2)
    proto = fg.onnx.export(model, (fg.randn(4, 3),), io.BytesIO())
    assert [i.name for i in proto.graph.input] == ["input_0"]
    assert [o.name for o in proto.graph.output] == ["output_0"]
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 3]


def test_transformer_encoder_with_a_causal_mask():
    """A two-layer pre-norm encoder under a causal mask (the GPT block): attention, layer
    norm and GELU exported as primitive ops, run in onnxruntime with other batch sizes."""

    class Causal(fg.nn.Module):
        def __init__(self):
            super().__init__()
            layer = fg.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu",
                                                  batch_first=True, norm_first=True)
            self.encoder = fg.nn.TransformerEncoder(layer, 2)

        def forward(self, x):
            mask = fg.nn.Transformer.generate_square_subsequent_mask(x.shape[1])
            return self.encoder(x, mask=mask, is_causal=True)

    _run(Causal(), fg.randn(2, 6, 16))


def test_multihead_attention_outputs_and_weights():
    mha = fg.nn.MultiheadAttention(16, 2, batch_first=True)
    x = fg.randn(2, 5, 16)
    f = io.BytesIO()
    fg.onnx.export(mha, (x, x, x), f, input_names=["q", "k", "v"],
                   output_names=["out", "weights"])
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"q": x.numpy(), "k": x.numpy(), "v": x.numpy()})
    with fg.no_grad():
        want = [t.numpy() for t in mha.eval()(x, x, x)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)

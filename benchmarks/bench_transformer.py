"""Transformer-encoder training throughput: flowgrad against PyTorch.

The workload: tokens (batch 16, sequence 128) through an embedding of 1000 x 256, a
2-layer ``nn.TransformerEncoder`` (d_model 256, 4 heads, feed-forward 1024, dropout 0,
batch_first), mean-pooled over the sequence, a linear layer to 10 classes, cross-entropy,
backward and an Adam step. The work is GEMMs and the softmax of attention. Each library runs
in its own process on 2 threads, alternating (``harness.py``); both start from the same
weights (NumPy, seed 0) and their first two losses are compared.

    python benchmarks/bench_transformer.py           # 3 rounds
    python benchmarks/bench_transformer.py --quick   # 2 rounds, short timings
    python benchmarks/bench_transformer.py --profile # cProfile flowgrad's steps, top 25

Only the PyTorch worker imports torch, never the library.
"""

from __future__ import annotations

import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402

VOCAB, D_MODEL, HEADS, FFN, LAYERS, SEQ, BATCH, CLASSES = 1000, 256, 4, 1024, 2, 128, 16, 10
LR = 1e-4


def _arrays(model_keys: dict):
    """Weights for every state_dict entry (uniform ±1/sqrt(fan-in), LayerNorm at 1 and 0) and
    one batch, from seed 0, so both libraries start from the same point."""
    rng = np.random.default_rng(0)
    weights = {}
    for key, shape in sorted(model_keys.items()):
        if key.endswith(("norm1.weight", "norm2.weight")):
            weights[key] = np.ones(shape, np.float32)
        elif key.endswith(("norm1.bias", "norm2.bias")):
            weights[key] = np.zeros(shape, np.float32)
        else:
            bound = 1 / np.sqrt(shape[-1])
            weights[key] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    tokens = rng.integers(0, VOCAB, size=(BATCH, SEQ)).astype(np.int64)
    labels = rng.integers(0, CLASSES, size=(BATCH,)).astype(np.int64)
    return weights, tokens, labels


def transformer(lib: str):
    """The model and one training step, written the same way in either library."""
    if lib == "flowgrad":
        import flowgrad as m
    else:
        import torch as m
    nn = m.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, D_MODEL)
            layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.head = nn.Linear(D_MODEL, CLASSES)

        def forward(self, tokens):
            return self.head(self.encoder(self.embed(tokens)).mean(1))

    model = Model()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights, x, y = _arrays(shapes)
    model.load_state_dict({k: m.tensor(v) for k, v in weights.items()})
    opt = m.optim.Adam(model.parameters(), lr=LR)
    xt, yt = m.tensor(x), m.tensor(y)
    cross_entropy = nn.functional.cross_entropy

    def step():
        loss = cross_entropy(model(xt), yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


WORKLOADS = {"transformer": transformer}
SPECS = {"transformer": (f"Transformer encoder: embedding {VOCAB}x{D_MODEL}, {LAYERS} layers "
                         f"(d_model {D_MODEL}, {HEADS} heads, FFN {FFN}, dropout 0), sequence "
                         f"{SEQ}, batch {BATCH}, mean-pool, linear {D_MODEL}->{CLASSES}, "
                         f"cross-entropy, Adam lr {LR}", BATCH, 0.9)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--profile"]:
        harness.limit_threads("flowgrad")
        harness.profile(transformer("flowgrad"), "transformer", seconds=3.0)
        sys.exit(0)
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

"""LSTM language-model training throughput: flowgrad against PyTorch's fused LSTM.

The PTB-like workload of Zaremba et al. (2014)'s small model: embedding 10000x200, 2-layer
LSTM 200, unroll 35, batch 20, linear 200 -> 10000, cross-entropy, backward, clip_grad_norm_ 5,
SGD; the hidden state is carried from step to step and detached (truncated BPTT). Each library
runs in its own process on 2 threads, alternating (``harness.py``); both start from the same
weights (NumPy, seed 0) and their first two losses are compared. The rate printed as
samples/s is tokens/s (35 * 20 tokens per step).

    python benchmarks/bench_lstm.py           # 3 rounds
    python benchmarks/bench_lstm.py --quick   # 2 rounds, short timings
    python benchmarks/bench_lstm.py --profile # cProfile flowgrad's steps, top 25

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

VOCAB, EMBED, HIDDEN, LAYERS, STEPS, BATCH = 10000, 200, 200, 2, 35, 20
LR, CLIP = 1.0, 5.0
TOKENS = STEPS * BATCH


def _arrays():
    """Initial weights (PyTorch's default ranges) and one batch of tokens, from seed 0."""
    rng = np.random.default_rng(0)
    k = 1 / np.sqrt(HIDDEN)
    w = {"encoder.weight": rng.standard_normal((VOCAB, EMBED)).astype(np.float32)}
    for layer in range(LAYERS):
        fan = EMBED if layer == 0 else HIDDEN
        for name, shape in ((f"weight_ih_l{layer}", (4 * HIDDEN, fan)),
                            (f"weight_hh_l{layer}", (4 * HIDDEN, HIDDEN)),
                            (f"bias_ih_l{layer}", (4 * HIDDEN,)),
                            (f"bias_hh_l{layer}", (4 * HIDDEN,))):
            w[f"rnn.{name}"] = rng.uniform(-k, k, size=shape).astype(np.float32)
    w["decoder.weight"] = rng.uniform(-k, k, size=(VOCAB, HIDDEN)).astype(np.float32)
    w["decoder.bias"] = rng.uniform(-k, k, size=(VOCAB,)).astype(np.float32)
    tokens = rng.integers(0, VOCAB, size=(STEPS + 1, BATCH)).astype(np.int64)
    return w, tokens[:-1], tokens[1:]


def ptb_lstm(lib: str):
    """The model and one training step, written the same way in either library."""
    if lib == "flowgrad":
        import flowgrad as m
    else:
        import torch as m
    nn = m.nn
    weights, x, y = _arrays()

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(VOCAB, EMBED)
            self.rnn = nn.LSTM(EMBED, HIDDEN, LAYERS)
            self.decoder = nn.Linear(HIDDEN, VOCAB)

        def forward(self, tokens, hidden):
            out, hidden = self.rnn(self.encoder(tokens), hidden)
            return self.decoder(out.reshape(-1, HIDDEN)), hidden

    model = Model()
    model.load_state_dict({k: m.tensor(v) for k, v in weights.items()})
    opt = m.optim.SGD(model.parameters(), lr=LR)
    params = list(model.parameters())
    xt, yt = m.tensor(x), m.tensor(y.reshape(-1))
    zeros = m.zeros(LAYERS, BATCH, HIDDEN)
    state = {"hidden": (zeros, zeros)}
    cross_entropy, clip = nn.functional.cross_entropy, nn.utils.clip_grad_norm_

    def step():
        h, c = state["hidden"]
        logits, hidden = model(xt, (h.detach(), c.detach()))
        state["hidden"] = hidden
        loss = cross_entropy(logits, yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip(params, CLIP)
        opt.step()
        return loss

    return step


WORKLOADS = {"ptb_lstm": ptb_lstm}
SPECS = {"ptb_lstm": (f"PTB-like LSTM LM: embedding {VOCAB}x{EMBED}, {LAYERS}-layer LSTM "
                      f"{HIDDEN}, unroll {STEPS}, batch {BATCH}, linear {HIDDEN}->{VOCAB}, "
                      f"cross-entropy, clip_grad_norm_ {CLIP}, SGD lr {LR} (samples/s = "
                      "tokens/s)", TOKENS, 0.8)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--profile"]:
        harness.limit_threads("flowgrad")
        harness.profile(ptb_lstm("flowgrad"), "ptb_lstm", seconds=3.0)
        sys.exit(0)
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

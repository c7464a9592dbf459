"""Recurrent Independent Mechanisms training throughput: flowgrad's RIMCell against the same
module written with PyTorch in this file.

The workload is the official configuration of the RIMs copying and sequential-MNIST experiments
(Goyal et al. 2019, Table 1): k_T = 6 modules, k_A = 4 active, hidden 600 (6 LSTM modules of
100 units), input attention with d_k 64 and values 400 (4 x the module size), communication with
4 heads, d_k = d_v = 32; batch 64, input size 32. One training step runs the cell over
``STEPS`` time steps, a linear readout 600 -> 10 at every step, cross-entropy, backward and an
Adam update. The PyTorch module below has the same parameter names and layouts as flowgrad's, so
both start from the same weights (NumPy, seed 0) and their first two losses are compared.

Each library runs in its own process (``harness.py``), alternating, limited to
``RIMS_BENCH_THREADS`` threads (default 1).

    python benchmarks/bench_rims.py --quick
    python benchmarks/bench_rims.py --profile   # cProfile flowgrad's steps, top 25

Only the PyTorch worker imports torch, never the library.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import bench_train  # noqa: E402
import harness  # noqa: E402

harness.THREADS = int(os.environ.get("RIMS_BENCH_THREADS", "1"))

UNITS, ACTIVE, HIDDEN, BATCH, INPUT, CLASSES, STEPS = 6, 4, 600, 64, 32, 10, 10
KEY_IN, VALUE_IN, KEY_COMM, VALUE_COMM, HEADS_COMM = 64, 400, 32, 32, 4


def _fg_model():
    import flowgrad as fg
    from flowgrad.modular import RIMCell

    class Model(fg.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = RIMCell(INPUT, HIDDEN, UNITS, ACTIVE, input_key_size=KEY_IN,
                                input_value_size=VALUE_IN, comm_key_size=KEY_COMM,
                                comm_value_size=VALUE_COMM, comm_heads=HEADS_COMM)
            self.readout = fg.nn.Linear(HIDDEN, CLASSES)

        def forward(self, x):
            state, logits = None, []
            for t in range(x.shape[0]):
                h, state = self.cell(x[t], state)
                logits.append(self.readout(h))
            return fg.stack(logits).reshape(-1, CLASSES)

    return Model()


def _torch_model():
    import torch
    from torch import nn

    u = HIDDEN // UNITS

    def group(x, w):  # x (B, K, in), w (K, in, out): one product per module, batched
        return (x.transpose(0, 1) @ w).transpose(0, 1)

    class InputAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query_weight = nn.Parameter(torch.empty(UNITS, u, KEY_IN))
            self.key = nn.Linear(INPUT, KEY_IN, bias=False)
            self.value = nn.Linear(INPUT, VALUE_IN, bias=False)

        def forward(self, x, h):
            score = (group(h, self.query_weight) * self.key(x)[:, None]).sum(-1) \
                / math.sqrt(KEY_IN)
            return score.sigmoid()[..., None] * self.value(x)[:, None], (-score).sigmoid()

    class BlockLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight_ih = nn.Parameter(torch.empty(UNITS, VALUE_IN, 4 * u))
            self.weight_hh = nn.Parameter(torch.empty(UNITS, u, 4 * u))
            self.bias_ih = nn.Parameter(torch.empty(UNITS, 4 * u))
            self.bias_hh = nn.Parameter(torch.empty(UNITS, 4 * u))

        def forward(self, x, h, c):
            g = (group(x, self.weight_ih) + group(h, self.weight_hh) + self.bias_ih
                 + self.bias_hh)
            i, f, gg, o = g.chunk(4, -1)
            c = f.sigmoid() * c + i.sigmoid() * gg.tanh()
            return o.sigmoid() * c.tanh(), c

    class Communication(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv_weight = nn.Parameter(torch.empty(UNITS, u, HEADS_COMM * (2 * KEY_COMM
                                                                           + VALUE_COMM)))
            self.output = nn.Linear(HEADS_COMM * VALUE_COMM, 2 * u)

        def forward(self, h, mask):
            b = h.shape[0]
            m = mask[..., None].to(h.dtype)
            hb = h * m + (h * (1 - m)).detach()  # the official blocked_grad
            qkv = group(hb, self.qkv_weight).reshape(b, UNITS, HEADS_COMM, -1).transpose(1, 2)
            q, k, v = qkv.split([KEY_COMM, KEY_COMM, VALUE_COMM], -1)
            a = (q @ k.transpose(-2, -1) / math.sqrt(KEY_COMM)).softmax(-1)
            o = (a @ v).transpose(1, 2).reshape(b, UNITS, -1)
            cand, gate = self.output(o).chunk(2, -1)
            return torch.where(mask[..., None], hb + gate.sigmoid() * cand.tanh(), h)

    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_attention = InputAttention()
            self.cell = BlockLSTM()
            self.communication = Communication()

        def forward(self, x, state):
            b = x.shape[0]
            if state is None:
                z = x.new_zeros(b, HIDDEN)
                state = (z, z)
            h, c = (s.reshape(b, UNITS, u) for s in state)
            values, null = self.input_attention(x, h)
            # the k_A least attending to null; ties to the lower index, as flowgrad's topk_mask
            active = torch.sort(null, dim=1, stable=True).indices[:, :ACTIVE]
            mask = torch.zeros(b, UNITS, dtype=torch.bool).scatter_(1, active, True)
            h_new, c_new = self.cell(values, h, c)
            h_new = self.communication(h_new, mask)
            h = torch.where(mask[..., None], h_new, h).reshape(b, HIDDEN)
            c = torch.where(mask[..., None], c_new, c).reshape(b, HIDDEN)
            return h, (h, c)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = Cell()
            self.readout = nn.Linear(HIDDEN, CLASSES)

        def forward(self, x):
            state, logits = None, []
            for t in range(x.shape[0]):
                h, state = self.cell(x[t], state)
                logits.append(self.readout(h))
            return torch.stack(logits).reshape(-1, CLASSES)

    return Model()


def _weights(names_shapes):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights from seed 0, fan_in the second-to-last size
    (the last one for PyTorch-layout Linear weights, which are (out, in))."""
    rng = np.random.default_rng(0)
    out = {}
    for name, shape in names_shapes:
        fan = shape[-1] if name.endswith(("key.weight", "value.weight", "output.weight",
                                          "readout.weight")) else shape[-2] if len(shape) > 1 \
            else shape[-1]
        bound = 1 / math.sqrt(fan)
        out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return out


def rims_step(lib: str):
    """The model and one training step, the same way in either library."""
    if lib == "flowgrad":
        import flowgrad as m
        model = _fg_model()
    else:
        import torch as m
        model = _torch_model()
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    model.load_state_dict({k: m.tensor(v) for k, v in _weights(sorted(shapes)).items()})
    rng = np.random.default_rng(1)
    x = m.tensor(rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32))
    y = m.tensor(rng.integers(0, CLASSES, size=STEPS * BATCH).astype(np.int64))
    opt = m.optim.Adam(model.parameters(), lr=1e-3)
    return bench_train.sgd_step(opt, lambda: m.nn.functional.cross_entropy(model(x), y))


WORKLOADS = {"rims_step": rims_step}
SPECS = {"rims_step": (f"RIMs: k_T {UNITS}, k_A {ACTIVE}, hidden {HIDDEN} (LSTM modules), "
                       f"input attention d_k {KEY_IN} d_v {VALUE_IN}, communication "
                       f"{HEADS_COMM} heads d_k=d_v={KEY_COMM}; batch {BATCH}, input {INPUT}, "
                       f"{STEPS} time steps per training step, readout + cross-entropy, "
                       "backward, Adam (samples/s = sequences/s)", BATCH, 0.8)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--profile"]:
        harness.limit_threads("flowgrad")
        harness.profile(rims_step("flowgrad"), "rims_step", seconds=3.0)
        sys.exit(0)
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

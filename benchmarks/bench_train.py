"""Training-step throughput and memory: flowgrad against PyTorch, each in its own process.

Each workload runs the same training step (forward, loss, backward, ``optim.SGD`` step with
``zero_grad(set_to_none=True)``) in both libraries from the same initial weights (NumPy arrays
made from one seed in each process), 2 threads each, one process per library and round,
alternating (see ``harness.py``). It prints steps/s, the flowgrad/PyTorch ratio, each library's
peak memory during the steps, and the machine (CPU, BLAS, thread pools).

    python benchmarks/bench_train.py                  # all workloads, 3 rounds
    python benchmarks/bench_train.py --quick          # 2 rounds, short timings
    python benchmarks/bench_train.py --only mlp,tiny  # some workloads
    python benchmarks/bench_train.py --profile cnn    # cProfile flowgrad's steps, top 25

Workloads: ``mlp`` (784-1024-1024-10 ReLU, batch 128, cross-entropy), ``cnn`` (2 conv3x3 +
max-pool, 2 linear, batch 64), ``tiny`` (2-16-16-1 tanh, batch 8, MSE: per-op overhead),
``depthwise`` (depthwise-separable block: 3x3 depthwise conv on 64 channels, 1x1 pointwise
conv, batch 32, 28x28). The library never imports torch; only the PyTorch worker does.
"""

from __future__ import annotations

import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402

LR = 0.01


# --- the same initial weights in both processes ---------------------------------------------------

def uniform(rng, shape, fan_in):
    """PyTorch's default init range for Linear and Conv2d, float32."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def linear_params(rng, sizes):
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out.append(uniform(rng, (fan_out, fan_in), fan_in))
        out.append(uniform(rng, (fan_out,), fan_in))
    return out


def tensors(lib: str, arrays, params=()):
    """The arrays as tensors of ``lib``; those at indices ``params`` require grad."""
    if lib == "flowgrad":
        import flowgrad as fg

        return [fg.tensor(a.copy(), requires_grad=i in params) for i, a in enumerate(arrays)]
    import torch

    return [torch.tensor(a.copy(), requires_grad=i in params) for i, a in enumerate(arrays)]


def modules(lib: str):
    """(library, its functional module, its optim module)."""
    if lib == "flowgrad":
        import flowgrad as fg
        import flowgrad.nn.functional as F

        return fg, F, fg.optim
    import torch
    import torch.nn.functional as F

    return torch, F, torch.optim


def sgd_step(opt, forward):
    """One training step as users write it, for either library."""
    def step():
        opt.zero_grad(set_to_none=True)
        loss = forward()
        loss.backward()
        opt.step()
        return loss

    return step


# --- workloads --------------------------------------------------------------------------------

def mlp(lib: str, batch: int = 128, sizes=(784, 1024, 1024, 10)):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    t = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
    arrays = linear_params(rng, list(sizes))
    _, F, optim = modules(lib)
    xt, tt, *params = tensors(lib, [x, t, *arrays], range(2, 2 + len(arrays)))
    opt = optim.SGD(params, lr=LR)

    def forward():
        h = xt
        for i in range(0, len(params) - 2, 2):
            h = F.linear(h, params[i], params[i + 1]).relu()
        return F.cross_entropy(F.linear(h, params[-2], params[-1]), tt)

    step = sgd_step(opt, forward)
    if lib == "flowgrad":
        step.gemms_only = _gemms(x, arrays)
    return step


def _gemms(x, arrays):
    """The MLP step's GEMMs alone in NumPy (forward x @ W.T; backward g @ W and g.T @ h): the
    GEMM-bound ceiling of a step on this machine."""
    weights = arrays[0::2]
    hs = [x]
    for w in weights[:-1]:
        hs.append(np.maximum(hs[-1] @ w.T, 0))
    gs = [np.ones((x.shape[0], w.shape[0]), np.float32) for w in weights]

    def run():
        for h, w in zip(hs, weights):
            h @ w.T
        for i, (h, w, g) in enumerate(zip(hs, weights, gs)):
            g.T @ h
            if i:
                g @ w

    return run


def cnn(lib: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, size=64).astype(np.int64)
    arrays = [uniform(rng, (32, 1, 3, 3), 9), uniform(rng, (32,), 9),
              uniform(rng, (64, 32, 3, 3), 32 * 9), uniform(rng, (64,), 32 * 9)]
    arrays += linear_params(rng, [64 * 7 * 7, 128, 10])
    _, F, optim = modules(lib)
    xt, tt, *params = tensors(lib, [x, t, *arrays], range(2, 2 + len(arrays)))
    c1, cb1, c2, cb2, w1, b1, w2, b2 = params
    opt = optim.SGD(params, lr=LR)

    def forward():
        h = F.max_pool2d(F.conv2d(xt, c1, cb1, padding=1).relu(), 2)
        h = F.max_pool2d(F.conv2d(h, c2, cb2, padding=1).relu(), 2)
        h = F.linear(h.reshape(64, -1), w1, b1).relu()
        return F.cross_entropy(F.linear(h, w2, b2), tt)

    return sgd_step(opt, forward)


def tiny(lib: str):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(8, 2)).astype(np.float32)
    t = (np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:])).astype(np.float32)
    arrays = linear_params(rng, [2, 16, 16, 1])
    _, F, optim = modules(lib)
    xt, tt, w1, b1, w2, b2, w3, b3 = tensors(lib, [x, t, *arrays], range(2, 8))
    opt = optim.SGD([w1, b1, w2, b2, w3, b3], lr=LR)

    def forward():
        h = F.linear(xt, w1, b1).tanh()
        h = F.linear(h, w2, b2).tanh()
        return F.mse_loss(F.linear(h, w3, b3), tt)

    return sgd_step(opt, forward)


def depthwise(lib: str):
    rng = np.random.default_rng(0)
    C, O = 64, 128
    x = rng.standard_normal((32, C, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, size=32).astype(np.int64)
    arrays = [uniform(rng, (C, 1, 3, 3), 9), uniform(rng, (C,), 9),
              uniform(rng, (O, C, 1, 1), C), uniform(rng, (O,), C)]
    arrays += linear_params(rng, [O, 10])
    _, F, optim = modules(lib)
    xt, tt, *params = tensors(lib, [x, t, *arrays], range(2, 2 + len(arrays)))
    dw, db, pw, pb, w, b = params
    opt = optim.SGD(params, lr=LR)

    def forward():
        h = F.conv2d(xt, dw, db, padding=1, groups=C).relu()
        h = F.conv2d(h, pw, pb).relu()
        h = F.adaptive_avg_pool2d(h, 1).reshape(32, O)
        return F.cross_entropy(F.linear(h, w, b), tt)

    return sgd_step(opt, forward)


WORKLOADS = {"mlp": mlp, "cnn": cnn, "tiny": tiny, "depthwise": depthwise}
SPECS = {
    "mlp": ("MLP 784-1024-1024-10 ReLU, batch 128, cross-entropy, optim.SGD lr 0.01", 128, 1.1),
    "cnn": ("CNN 1x28x28: conv3x3 32 > ReLU > maxpool2 > conv3x3 64 > ReLU > maxpool2 > "
            "linear 3136-128 > ReLU > linear 128-10, batch 64, cross-entropy, optim.SGD", 64, 0.8),
    "tiny": ("tiny MLP 2-16-16-1 tanh, batch 8, MSE, optim.SGD lr 0.01", 8, 2.0),
    "depthwise": ("depthwise-separable: 64x28x28 > depthwise conv3x3 (groups 64) > ReLU > "
                  "conv1x1 64-128 > ReLU > global avg pool > linear 128-10, batch 32, "
                  "optim.SGD", 32, 0.8),
}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--profile":
        harness.limit_threads("flowgrad")
        harness.profile(WORKLOADS[sys.argv[2]]("flowgrad"), sys.argv[2])
        sys.exit(0)
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

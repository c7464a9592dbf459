"""Layer-API training throughput: what users write, in flowgrad and PyTorch, each in its own
process (see ``harness.py``).

Where ``bench_train.py`` times functional models, this script times ``nn.Sequential`` of ``nn``
layers, ``nn.CrossEntropyLoss``, ``optim.SGD``/``optim.Adam`` with ``zero_grad(set_to_none=True)``,
and (``mnist_epoch``) a whole epoch over MNIST through each library's own ``DataLoader``, with the
DataLoader's share of the epoch timed alone. Both models start from the same weights (NumPy
arrays from one seed, in PyTorch's default init ranges). 2 threads each.

    python benchmarks/bench_layers.py                      # all workloads
    python benchmarks/bench_layers.py --quick              # 2 rounds, short timings
    python benchmarks/bench_layers.py --only mnist_epoch   # one workload (or a comma list)

Workloads: ``mlp_layers`` (784-1024-1024-10 ReLU, batch 128, SGD momentum 0.9), ``cnn_layers``
(2 conv3x3 + max-pool, 2 linear, batch 64, SGD momentum 0.9), ``mnist_epoch`` (784-800-800-10
ReLU, Adam 1e-3, batch 128, one shuffled epoch over the 60,000 MNIST training images).
"""

from __future__ import annotations

import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402

LR, MOMENTUM, ADAM_LR, EPOCH_BATCH = 0.01, 0.9, 1e-3, 128


def _library(lib: str):
    """(library, its nn module)."""
    if lib == "flowgrad":
        import flowgrad as fg

        return fg, fg.nn
    import torch

    return torch, torch.nn


def _mlp(nn, sizes):
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def _cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def _load_same_weights(lib, model, seed: int = 0) -> None:
    """Overwrite every parameter with NumPy draws in PyTorch's default range (bound
    1/sqrt(fan_in) of the layer, for weight and bias alike), the same in both libraries."""
    rng = np.random.default_rng(seed)
    state, fan_in = {}, 1
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if len(shape) > 1:
            fan_in = int(np.prod(shape[1:]))
        bound = 1.0 / np.sqrt(fan_in)
        state[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    mod, _ = _library(lib)
    model.load_state_dict({k: mod.from_numpy(v) for k, v in state.items()})


def _user_step(model, opt, loss_fn, x, t):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return loss

    return step


def _layers(build, in_shape, batch):
    def workload(lib: str):
        mod, nn = _library(lib)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
        t = rng.integers(0, 10, size=batch).astype(np.int64)
        model = build(nn)
        _load_same_weights(lib, model)
        opt = mod.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        return _user_step(model, opt, nn.CrossEntropyLoss(), mod.from_numpy(x),
                          mod.from_numpy(t))

    return workload


def mnist_epoch(lib: str):
    """One shuffled epoch of MNIST through the library's DataLoader (the step); the loss check
    runs the first two batches in order; ``loader alone`` times the DataLoader's epoch."""
    from flowgrad.datasets import MNIST  # finds and checks the files; NumPy only

    mod, nn = _library(lib)
    ds = MNIST(train=True, download=False)
    x = ds.data.numpy().reshape(len(ds), 784).astype(np.float32) / np.float32(255)
    t = ds.targets.numpy().astype(np.int64)
    xt, tt = mod.from_numpy(x), mod.from_numpy(t)
    model = _mlp(nn, [784, 800, 800, 10])
    _load_same_weights(lib, model)
    opt = mod.optim.Adam(model.parameters(), lr=ADAM_LR)
    loss_fn = nn.CrossEntropyLoss()
    data = mod.utils.data
    loader = data.DataLoader(data.TensorDataset(xt, tt), batch_size=EPOCH_BATCH, shuffle=True,
                             generator=mod.Generator().manual_seed(0))
    batches = iter([(xt[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH],
                     tt[i * EPOCH_BATCH:(i + 1) * EPOCH_BATCH]) for i in range(8)])

    def epoch():
        loss = None
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return loss

    def check():
        xb, yb = next(batches)
        return _user_step(model, opt, loss_fn, xb, yb)()

    def loader_alone():
        for _ in loader:
            pass

    epoch.steps_per_repeat = loader_alone.steps_per_repeat = 1
    epoch.check = check
    epoch.extras = {"DataLoader_alone": loader_alone}
    return epoch


WORKLOADS = {
    "mlp_layers": _layers(lambda nn: _mlp(nn, [784, 1024, 1024, 10]), (784,), 128),
    "cnn_layers": _layers(_cnn, (1, 28, 28), 64),
    "mnist_epoch": mnist_epoch,
}
SPECS = {
    "mlp_layers": ("nn.Sequential MLP 784-1024-1024-10 ReLU, batch 128, nn.CrossEntropyLoss, "
                   f"optim.SGD lr {LR} momentum {MOMENTUM}", 128, 1.1),
    "cnn_layers": ("nn.Sequential CNN 1x28x28: Conv2d 32 > ReLU > MaxPool2d > Conv2d 64 > ReLU > "
                   "MaxPool2d > Flatten > Linear 3136-128 > ReLU > Linear 128-10, batch 64, "
                   f"nn.CrossEntropyLoss, optim.SGD lr {LR} momentum {MOMENTUM}", 64, 0.8),
    "mnist_epoch": ("one shuffled epoch of MNIST train (60,000 images, float32 in [0, 1]), each "
                    "library's DataLoader over a TensorDataset, batch 128; MLP 784-800-800-10 "
                    f"ReLU, nn.CrossEntropyLoss, Adam lr {ADAM_LR} (a step = an epoch)",
                    60000, 1.0),
}

if __name__ == "__main__":
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

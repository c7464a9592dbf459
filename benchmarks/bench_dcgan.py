"""DCGAN training step and transposed convolution: flowgrad against PyTorch.

``dcgan``: one training step of a DCGAN on 28x28 single-channel images, batch 64 (Radford et al.
2016's guidelines, as ``flowgrad.models.dcgan`` with latent 100 and base width 64): the generator
projects z (100) to 128 x 7 x 7 (linear without bias, BatchNorm1d, ReLU), then a 5x5 transposed
convolution of stride 2 to 64 x 14 x 14 (BatchNorm2d, ReLU) and one to 1 x 28 x 28 (tanh); the
discriminator is a 5x5 convolution of stride 2 to 64 x 14 x 14 (LeakyReLU 0.2), one to 128 x 7 x
7 (BatchNorm2d, LeakyReLU 0.2) and a linear unit on the 6272 features. The step is a
discriminator update (BCE with logits on a real batch and a generated one, detached) then a
generator update (the non-saturating loss), each with its own Adam(2e-4, betas (0.5, 0.999)).

``conv_transpose``: the generator's first transposed convolution alone (128 -> 64 channels,
5x5, stride 2, padding 2, output padding 1; 7x7 -> 14x14, batch 64): forward, a weighted sum
of the output, backward, an SGD step.

Each library runs in its own process on 2 threads, alternating (``harness.py``); both start
from the same weights (NumPy, seed 0: N(0, 0.02) weights, batch-norm gains N(1, 0.02), zero
biases) and the same data, and their first two losses are compared.

    python benchmarks/bench_dcgan.py           # 3 rounds
    python benchmarks/bench_dcgan.py --quick   # 2 rounds, short timings
    python benchmarks/bench_dcgan.py --profile # cProfile flowgrad's DCGAN steps, top 25

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

BATCH, LATENT, BASE, SIZE, START = 64, 100, 64, 28, 7
LR, BETAS = 2e-4, (0.5, 0.999)


def _weights(shapes: dict, rng) -> dict:
    """DCGAN's initialisation for every state_dict entry, in sorted key order."""
    out = {}
    for key, (shape, is_norm) in sorted(shapes.items()):
        if key.endswith("running_mean") or key.endswith(".bias"):
            out[key] = np.zeros(shape, np.float32)
        elif key.endswith("running_var"):
            out[key] = np.ones(shape, np.float32)
        elif key.endswith("num_batches_tracked"):
            out[key] = np.zeros(shape, np.int64)
        else:
            out[key] = rng.normal(1.0 if is_norm else 0.0, 0.02, size=shape).astype(np.float32)
    return out


def _load(m, model, rng) -> None:
    norms = tuple(name for name, mod in model.named_modules()
                  if type(mod).__name__.startswith("BatchNorm"))
    shapes = {k: (tuple(v.shape), k.rsplit(".", 1)[0] in norms)
              for k, v in model.state_dict().items()}
    model.load_state_dict({k: m.tensor(v) for k, v in _weights(shapes, rng).items()})


def _modules(m):
    nn = m.nn

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(LATENT, 2 * BASE * START * START, bias=False)
            self.project_norm = nn.BatchNorm1d(2 * BASE * START * START)
            self.up = nn.ConvTranspose2d(2 * BASE, BASE, 5, 2, 2, output_padding=1, bias=False)
            self.norm = nn.BatchNorm2d(BASE)
            self.out = nn.ConvTranspose2d(BASE, 1, 5, 2, 2, output_padding=1)

        def forward(self, z):
            h = self.project_norm(self.project(z)).relu()
            h = self.norm(self.up(h.reshape(z.shape[0], 2 * BASE, START, START))).relu()
            return self.out(h).tanh()

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Conv2d(1, BASE, 5, 2, 2)
            self.down = nn.Conv2d(BASE, 2 * BASE, 5, 2, 2, bias=False)
            self.norm = nn.BatchNorm2d(2 * BASE)
            self.act = nn.LeakyReLU(0.2)
            self.out = nn.Linear(2 * BASE * START * START, 1)

        def forward(self, x):
            h = self.act(self.norm(self.down(self.act(self.first(x)))))
            return self.out(h.reshape(x.shape[0], -1)).reshape(-1)

    return Generator, Discriminator


def _library(lib: str):
    if lib == "flowgrad":
        import flowgrad as m
    else:
        import torch as m
    return m


def dcgan(lib: str):
    """The DCGAN models and one training step (D then G), the same way in either library."""
    m = _library(lib)
    Generator, Discriminator = _modules(m)
    rng = np.random.default_rng(0)
    g, d = Generator(), Discriminator()
    _load(m, g, rng)
    _load(m, d, rng)
    real = m.tensor(np.tanh(rng.normal(size=(BATCH, 1, SIZE, SIZE))).astype(np.float32))
    z = m.tensor(rng.uniform(-1, 1, size=(BATCH, LATENT)).astype(np.float32))
    ones, zeros = m.ones(BATCH), m.zeros(BATCH)
    opt_g = m.optim.Adam(g.parameters(), lr=LR, betas=BETAS)
    opt_d = m.optim.Adam(d.parameters(), lr=LR, betas=BETAS)
    bce = m.nn.functional.binary_cross_entropy_with_logits

    def step():
        fake = g(z)
        d_loss = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = bce(d(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return d_loss.item() + g_loss.item()

    return step


def conv_transpose(lib: str):
    """The generator's 128 -> 64 transposed convolution: forward, backward, SGD step."""
    m = _library(lib)
    rng = np.random.default_rng(0)
    layer = m.nn.ConvTranspose2d(2 * BASE, BASE, 5, 2, 2, output_padding=1)
    _load(m, layer, rng)
    x = m.tensor(rng.normal(size=(BATCH, 2 * BASE, START, START)).astype(np.float32))
    w = m.tensor(rng.normal(size=(BATCH, BASE, 2 * START, 2 * START)).astype(np.float32))
    opt = m.optim.SGD(layer.parameters(), lr=0.01)

    def step():
        loss = (layer(x) * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


WORKLOADS = {"dcgan": dcgan, "conv_transpose": conv_transpose}
SPECS = {
    "dcgan": (f"DCGAN step on 1x{SIZE}x{SIZE}, batch {BATCH}: G z{LATENT} -> {2 * BASE}x7x7 -> "
              f"convT5x5/2 {BASE}x14x14 -> convT5x5/2 1x28x28 (BatchNorm, ReLU, tanh); D conv5x5/2 "
              f"{BASE} -> conv5x5/2 {2 * BASE} (BatchNorm, LeakyReLU 0.2) -> linear; a D update "
              f"then a G update, Adam lr {LR} betas {BETAS}", BATCH, 0.7),
    "conv_transpose": (f"ConvTranspose2d {2 * BASE}->{BASE}, 5x5, stride 2, padding 2, output "
                       f"padding 1, {BATCH}x{2 * BASE}x7x7 -> 14x14: forward, backward, SGD",
                       BATCH, 0.7),
}


if __name__ == "__main__":
    if sys.argv[1:] == ["--profile"]:
        harness.limit_threads("flowgrad")
        harness.profile(dcgan("flowgrad"), "dcgan", seconds=3.0)
        sys.exit(0)
    sys.exit(harness.main(os.path.abspath(__file__), WORKLOADS, SPECS, doc=__doc__))

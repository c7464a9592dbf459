"""Goodfellow et al. (2014)'s MNIST adversarial pair as their code defines it
(github.com/goodfeli/adversarial, ``mnist.yaml`` and ``__init__.py``; pylearn2 layers).

Generator: noise z (100-d; the code's default noise is Gaussian N(0, I), its ``uniform`` option
is U(−√3, √3)) → 1200 ReLU → 1200 ReLU → 784 sigmoid; weights U(−0.05, 0.05) (``irange``),
biases 0, except the output bias, set from the training pixels' marginals,
logit(clip(mean, 1e-7, 1 − 1e-7)) (``init_sigmoid_bias_from_marginals``).

Discriminator: maxout 240 units × 5 pieces → maxout 240 × 5 → one sigmoid unit; weights
U(−0.005, 0.005), biases 0; dropout on each layer's input, kept with probability 0.8 at the
first layer and 0.5 at the others, kept units scaled by 1/0.8 = 1.25 and 1/0.5 = 2 (the
``discriminator_input_include_probs``/``input_scales`` of the yaml: inverted dropout). The
module returns the logit; the sigmoid lives in the loss (binary cross-entropy with logits).
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn

__all__ = ["GoodfellowMNISTGenerator", "GoodfellowMNISTDiscriminator", "marginal_logits",
           "uniform_init"]


def uniform_init(module, irange: float) -> None:
    """pylearn2's ``irange`` initialisation of every Linear and Maxout in ``module``: weights
    U(−irange, irange), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Maxout)):
            nn.init.uniform_(m.weight, -irange, irange)
            nn.init.zeros_(m.bias)


def marginal_logits(x: np.ndarray) -> np.ndarray:
    """logit of each pixel's mean over ``x`` (N, 784), clipped to [1e-7, 1 − 1e-7]."""
    mean = np.clip(np.asarray(x, dtype=np.float64).mean(axis=0), 1e-7, 1 - 1e-7)
    return np.log(mean / (1 - mean)).astype(np.float32)


class GoodfellowMNISTGenerator(nn.Module):
    """z (N, latent_dim) → images (N, 784) in (0, 1)."""

    def __init__(self, latent_dim: int = 100, hidden: int = 1200, out_features: int = 784,
                 irange: float = 0.05, output_bias=None) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_features), nn.Sigmoid())
        uniform_init(self, irange)
        if output_bias is not None:
            bias = np.asarray(output_bias, dtype=np.float32).reshape(-1)
            if bias.shape != (out_features,):
                raise ValueError(f"GoodfellowMNISTGenerator: output_bias must have "
                                 f"{out_features} values, got shape {bias.shape}")
            with fg.no_grad():
                self.net[4].bias.copy_(fg.from_numpy(bias))

    def forward(self, z):
        return self.net(z)


class GoodfellowMNISTDiscriminator(nn.Module):
    """x (N, 784) → logit (N,): dropout, maxout, dropout, maxout, dropout, linear."""

    def __init__(self, in_features: int = 784, units: int = 240, pieces: int = 5,
                 irange: float = 0.005, input_keep: float = 0.8,
                 hidden_keep: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(1 - input_keep), nn.Maxout(in_features, units, pieces),
                                 nn.Dropout(1 - hidden_keep), nn.Maxout(units, units, pieces),
                                 nn.Dropout(1 - hidden_keep), nn.Linear(units, 1))
        uniform_init(self, irange)

    def forward(self, x):
        return self.net(x).reshape(-1)

"""Probability distributions with PyTorch's ``torch.distributions`` API, on flowgrad Tensors.

``log_prob``, ``entropy``, ``rsample`` and ``kl_divergence`` are built from flowgrad ops, so
they differentiate through the flow graph w.r.t. the parameters::

    d = fg.distributions.Normal(mu, sigma)
    loss = -d.log_prob(x).sum()          # trains mu and sigma
"""

from __future__ import annotations

from . import constraints
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .independent import Independent
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform
from .utils import broadcast_all

__all__ = ["Bernoulli", "Categorical", "Distribution", "Independent", "Normal", "Uniform",
           "broadcast_all", "constraints", "kl_divergence", "register_kl"]

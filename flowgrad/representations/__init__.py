"""Learning representations (the lecture's first third): the log-likelihood losses with a
predicted variance and with missing targets ("Log-Likelihood for Neural Nets", "Multiple Output
Variables"), linear regions and the exponential advantage of depth (Montúfar, Pascanu, Cho &
Bengio 2014) with the composed tent map, distributed against local codes, concept detectors in
hidden units, maps between modalities, multitask learning and relational embeddings."""
# ruff: noqa: F401  (this file re-exports; __all__ is computed below)

from .attributes import *  # noqa: F403
from .dissection import *  # noqa: F403
from .fusion import *  # noqa: F403
from .joint_embedding import *  # noqa: F403
from .likelihood import (
    GaussianHead,
    gaussian_nll_from_log_var,
    masked_binary_cross_entropy_with_logits,
    masked_cross_entropy,
    masked_gaussian_nll_loss,
    masked_mse_loss,
    multi_output_loss,
    observed_mask,
)
from .multitask import *  # noqa: F403
from .regions import (
    Regions1D,
    Regions2D,
    count_linear_regions,
    linear_regions_1d,
    linear_regions_2d,
    montufar_lower_bound,
    pattern_image,
    shallow_max_regions,
)
from .relational import *  # noqa: F403
from .tent_map import folding_network, tent_map, tent_network

__all__ = sorted(k for k, v in dict(globals()).items()
                 if not k.startswith("_") and getattr(v, "__module__", "").startswith(__name__))

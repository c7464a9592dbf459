"""Generative models from classifiers (the lecture's slides "Classifiers for modeling
distributions", "Generative Adversarial Networks" and "Convolutional GANs"): noise-contrastive
estimation (Gutmann & Hyvärinen 2010, 2012), generative adversarial nets (Goodfellow et al. 2014),
convolutional and conditional GANs (Radford et al. 2015; Mirza & Osindero 2014), and the
evaluation measures of their papers (Parzen-window log-likelihood, classifier-feature scores,
mode coverage on a ring of Gaussians)."""
# ruff: noqa: F401  (this file re-exports; __all__ is computed below)

from .gan import GANTrainer, discriminator_loss, generator_loss, save_image_grid
from .metrics import (
    FeatureClassifier,
    classifier_score,
    conditional_accuracy,
    frechet_distance,
    load_or_train_classifier,
    mode_coverage,
    ring_centres,
    ring_of_gaussians,
)
from .nce import GaussianNoise, MLPLogDensity, NCEDensity, UnnormalizedGaussian, nce_loss
from .parzen import parzen_evaluate, parzen_log_likelihood, select_parzen_sigma

__all__ = sorted(k for k, v in dict(globals()).items()
                 if not k.startswith("_") and getattr(v, "__module__", "").startswith(__name__))

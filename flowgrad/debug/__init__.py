"""The lecture's practice as tools (slides "Debugging", "Validate and Analyze" and the
optimisation slides): each check is one call on any flowgrad model and data, returning a
report with a verdict a person can act on, a table (``str(report)``) and, where it helps, a
figure.

Debugging: ``seed_everything``, ``check_determinism``, ``check_model_grads``,
``overfit_small``, ``detect_anomaly``, ``to_dot``/``draw_graph``/``print_graph``,
``TrainingMonitor``/``layer_statistics``, ``diagnose_curves``/``plot_curves``.
Validate and Analyze: ``capacity_sweep``, ``learning_curve``, ``classification_report``,
``worst_examples``, ``compare_with_baselines``, ``wilson_interval``, ``bootstrap_interval``,
``mcnemar``, ``compare_models``.
Optimisation: ``hessian_vector_product``, ``hessian_eigs``, ``critical_point_report``,
``gradient_cost``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "reproducibility": ("seed_everything", "check_determinism", "DeterminismReport"),
    "gradcheck": ("check_model_grads", "ModelGradcheckReport"),
    "overfit": ("overfit_small", "OverfitReport"),
    "anomaly": ("detect_anomaly", "AnomalyError", "is_anomaly_enabled"),
    "graph": ("to_dot", "draw_graph", "print_graph", "format_graph", "unreached_parameters"),
    "stats": ("TrainingMonitor", "layer_statistics", "StatsReport"),
    "curves": ("diagnose_curves", "plot_curves", "CurveReport"),
    "significance": ("wilson_interval", "bootstrap_interval", "mcnemar", "compare_models",
                     "required_test_size"),
    "analysis": ("capacity_sweep", "learning_curve", "classification_report", "worst_examples"),
    "baselines": ("compare_with_baselines",),
    "hessian": ("hessian_vector_product", "hessian_eigs", "critical_point_report"),
    "cost": ("gradient_cost",),
    "embeddings": ("nearest_neighbors", "embedding_map", "EmbeddingMap"),
    "long_term": ("jacobian_norms", "step_jacobians", "plot_jacobian_norms", "clipping_demo",
                  "plot_clipping"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """Import a tool's module on first use (scikit-learn, SciPy and matplotlib load lazily)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flowgrad.debug' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__

"""Causal structure from interventions (the lecture's closing causal slides): causal graphs and
discrete Bayesian networks, structural causal models over categorical variables, the
meta-transfer objective (Bengio et al. 2019, arXiv 1901.10912), SDI — structure discovery from
interventions (Ke et al. 2019, arXiv 1910.01075) — and the baselines of its Table 1.

Convention: an adjacency matrix ``adj`` has ``adj[i, j] == 1`` for the edge i -> j."""
# ruff: noqa: F401  (this file re-exports; __all__ is computed below)

from .baselines import causallearn_to_adjacency, ges, notears_linear, pc
from .bayesnet import BayesianNetwork, BIFError, load_bif, read_bif
from .graphs import (
    adjacency_to_edges,
    check_dag,
    edges_to_adjacency,
    graph_family,
    parents,
    plot_graph_comparison,
    structural_hamming_distance,
    topological_order,
)
from .meta_transfer import BivariateStructuralModel, GraphStructuralModel, meta_learn_bivariate
from .sdi import CategoricalSCM, InterventionalData, SDIConfig, SDIResult, fit_sdi

__all__ = sorted(k for k, v in dict(globals()).items()
                 if not k.startswith("_") and getattr(v, "__module__", "").startswith(__name__))

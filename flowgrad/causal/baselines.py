"""Library baselines for structure learning: the PC algorithm (Spirtes, Glymour & Scheines 2000;
constraint-based) and greedy equivalence search, GES (Chickering 2002; score-based), both from
causal-learn (Zheng et al. 2024, JMLR 25(60)), returned in flowgrad.causal's adjacency
convention.

Both return an estimate of the Markov equivalence class (a CPDAG): edges whose direction the
data determine are directed, the others are undirected. Conversion of causal-learn's endpoint
matrix G (``G[i, j]`` is the mark at i of the edge between i and j: -1 tail, 1 arrowhead,
2 circle; 0 no edge):

- i -> j  (G[i, j] = -1, G[j, i] = 1)   becomes  adj[i, j] = 1, adj[j, i] = 0;
- i -- j  (undirected, both tails)      becomes  adj[i, j] = adj[j, i] = 1;
- i <-> j (bidirected, both arrowheads: PC's conflicting v-structures) becomes
  adj[i, j] = adj[j, i] = 1 as well (the edge is there, its direction is not determined);
- circle marks (not produced by PC or GES) count as "could be a tail": i o-> j gives i -> j,
  i o-o j gives both directions.

In short, adj[i, j] = 1 when i and j are adjacent and the mark at i is not an arrowhead, or
both marks are arrowheads. With SDI's structural Hamming distance (an entrywise count of
off-diagonal differences, ``graphs.structural_hamming_distance``), an undirected or
bidirected edge therefore costs 1 when the true graph has the edge in either direction and 2
when it has none; a directed edge costs 0 when right, 2 when reversed, 1 when absent from the
truth; a true edge that is missing costs 1.

causal-learn is an optional dependency: ``pip install flowgrad[causal]``. The third baseline,
NOTEARS on the flowgrad engine (``notears_linear``), lives in notears.py and is re-exported here.
"""

from __future__ import annotations

import numpy as np

from .notears import notears_linear  # noqa: F401 - the baselines, together

PC_TESTS = ("fisherz", "chisq", "gsq")
GES_SCORES = ("bic", "bdeu")
_INSTALL = "pip install flowgrad[causal]"


def _causallearn(what: str):
    try:
        import causallearn  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{what} needs the causal-learn package, which is not installed; "
                          f"install the causal extra: {_INSTALL}") from e


def causallearn_to_adjacency(graph) -> np.ndarray:
    """causal-learn's endpoint matrix (``GeneralGraph.graph``: G[i, j] the mark at i) as an
    adjacency matrix adj[i, j] = 1 for i -> j; undirected and bidirected edges set both
    directions (module docstring)."""
    g = np.asarray(graph)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"causallearn_to_adjacency: expected a square endpoint matrix, got "
                         f"shape {g.shape}")
    adjacent = (g != 0) & (g.T != 0)
    if ((g != 0) != (g.T != 0)).any():
        i, j = np.argwhere((g != 0) != (g.T != 0))[0]
        raise ValueError(f"causallearn_to_adjacency: inconsistent endpoint matrix: mark "
                         f"{g[i, j]} at node {i} of an edge to node {j}, but {g[j, i]} at {j}")
    arrow = (g == 1) | (g == 5)  # ARROW, ARROW_AND_ARROW
    both_arrows = arrow & arrow.T
    adj = adjacent & (~arrow | both_arrows)
    np.fill_diagonal(adj, False)
    return adj.astype(np.int64)


def _discrete(x: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
        raise ValueError(f"{what} needs categorical data coded as integers (discretise "
                         "continuous data first, or use the continuous test/score)")
    return x.astype(np.int64)


def _looks_discrete(x: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)) and np.all(x == np.round(x))
                and max(len(np.unique(c)) for c in x.T) <= 20)


def _check_matrix(X, what: str) -> np.ndarray:
    x = np.asarray(X)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 2:
        raise ValueError(f"{what}: X must be (n, d) samples with n >= 3 and d >= 2, got shape "
                         f"{x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{what}: X must be numeric, got dtype {x.dtype}")
    return x


def pc(X, alpha: float = 0.05, test: str = "auto", stable: bool = True) -> np.ndarray:
    """The PC algorithm (causal-learn's ``pc``; stable skeleton search, its default collider
    orientation and Meek rules) on samples ``X`` (n, d). ``test``: "fisherz" (Fisher's z on
    partial correlations: continuous, linear-Gaussian data), "chisq" (Pearson chi-square) or
    "gsq" (G^2, likelihood ratio) for categorical data coded 0..k-1; "auto" picks "chisq" for
    integer data with at most 20 values per column, else "fisherz". ``alpha`` is the level of
    each conditional-independence test. Returns the CPDAG as an adjacency matrix (undirected
    edges in both directions; module docstring)."""
    x = _check_matrix(X, "pc")
    if test == "auto":
        test = "chisq" if _looks_discrete(x) else "fisherz"
    if test not in PC_TESTS:
        raise ValueError(f"pc: unknown test {test!r}; expected one of {PC_TESTS} or 'auto'")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"pc: alpha must be in (0, 1), got {alpha}")
    _causallearn("pc")
    from causallearn.search.ConstraintBased.PC import pc as causallearn_pc

    data = _discrete(x, f"pc with test={test!r}") if test != "fisherz" else x.astype(float)
    result = causallearn_pc(data, alpha=alpha, indep_test=test, stable=stable,
                            show_progress=False)
    return causallearn_to_adjacency(result.G.graph)


def ges(X, score: str = "auto", max_parents: int | None = None) -> np.ndarray:
    """Greedy equivalence search (causal-learn's ``ges``: forward insertions, then backward
    deletions, over equivalence classes) on samples ``X`` (n, d). ``score``: "bic" for
    continuous data (linear Gaussian BIC, -n/2 (1 + log residual variance) minus
    (|parents| + 1) log(n) / 2: causal-learn's ``local_score_BIC`` with its default penalty
    0.5), "bdeu" for categorical data coded 0..k-1 (Bayesian Dirichlet equivalent uniform,
    equivalent sample size 1: causal-learn's defaults); "auto" picks "bdeu" for integer data
    with at most 20 values per column, else "bic". ``max_parents`` bounds the in-degree (None:
    no bound). Returns the CPDAG as an adjacency matrix (undirected edges in both directions;
    module docstring)."""
    x = _check_matrix(X, "ges")
    if score == "auto":
        score = "bdeu" if _looks_discrete(x) else "bic"
    if score not in GES_SCORES:
        raise ValueError(f"ges: unknown score {score!r}; expected one of {GES_SCORES} or 'auto'")
    _causallearn("ges")
    from causallearn.search.ScoreBased.GES import ges as causallearn_ges

    if score == "bdeu":
        data, name = _discrete(x, "ges with score='bdeu'"), "local_score_BDeu"
    else:
        data, name = x.astype(float), "local_score_BIC"
    record = causallearn_ges(data, score_func=name, maxP=max_parents)
    return causallearn_to_adjacency(record["G"].graph)

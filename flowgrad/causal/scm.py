"""Structural causal models over categorical variables whose conditionals are small MLPs: the
synthetic ground truth of SDI (Ke et al. 2019, arXiv 1910.01075, section 5; official code
``causal/models.py`` and ``causal/_causal.c``), and the observational/interventional datasets
that structure learners consume.

Each variable k has a one-hidden-layer network: its parents' categories select rows of an
embedding table that are summed with a bias (the same as a one-hot input), a LeakyReLU of slope
0.1, then ``N_k`` logits; sampling is ancestral by the Gumbel-max trick. Weights are orthogonal
with gain 2.5 and biases uniform in (-1.1, 1.1), as the official ground truth. A *soft
intervention* on node k redraws node k's network only (same initialisation)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .graphs import check_dag, parents, topological_order

LEAKY_SLOPE = 0.1


def orthogonal(rows: int, cols: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns (whichever are fewer), times
    ``gain``: the QR construction of ``torch.nn.init.orthogonal_`` (Saxe et al. 2014)."""
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
    if rows < cols:
        q = q.T
    return gain * q


def _as_rng(rng=None, seed=None) -> np.random.Generator:
    if rng is not None:
        return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return np.random.default_rng(seed)


class CategoricalSCM:
    """A causal model over M categorical variables with MLP conditionals (SDI's ground truth).

    ``adj[i, j] == 1`` is the edge i -> j; ``num_categories`` is one integer or one per node;
    ``hidden`` defaults to 4 * max(M, max N) (the official ``Hgt``)."""

    def __init__(self, adj, num_categories=2, hidden: int | None = None, rng=None,
                 seed: int | None = None, names=None, gain: float = 2.5,
                 bias_range: float = 1.1):
        adj = np.asarray(adj)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"CategoricalSCM: adjacency must be square (M, M), got shape "
                             f"{adj.shape}")
        self.num_nodes = m = adj.shape[0]
        self.names = list(names) if names is not None else [f"X{i}" for i in range(m)]
        if len(self.names) != m:
            raise ValueError(f"CategoricalSCM: {len(self.names)} names for {m} nodes")
        self.adjacency = (adj != 0).astype(np.int64)
        check_dag(self.adjacency, names=self.names, what="CategoricalSCM")
        cards = np.broadcast_to(np.asarray(num_categories, dtype=np.int64), (m,)).copy()
        if (cards < 2).any():
            k = int(np.argmin(cards))
            raise ValueError(f"CategoricalSCM: node {self.names[k]} has {cards[k]} categories; "
                             f"each variable needs at least 2")
        self.cardinalities = cards
        self.offsets = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
        self.hidden = int(hidden) if hidden is not None else 4 * max(m, int(cards.max()))
        self.gain, self.bias_range = float(gain), float(bias_range)
        self.parents = [parents(self.adjacency, j) for j in range(m)]
        self.order = topological_order(self.adjacency)
        rng = _as_rng(rng, seed)
        self.weights = [self._draw_node(k, rng) for k in range(m)]

    # --- parameters -----------------------------------------------------------------------
    def _draw_node(self, k: int, rng: np.random.Generator) -> dict:
        """Fresh network of node k: W0 (sum N, H) embedding rows for every (variable, category)
        (only the parents' rows are read), B0 (H,), W1 (N_k, H), B1 (N_k,)."""
        total, h, n_k = int(self.cardinalities.sum()), self.hidden, int(self.cardinalities[k])
        return {"W0": orthogonal(h, total, rng, self.gain).T,
                "B0": rng.uniform(-self.bias_range, self.bias_range, h),
                "W1": orthogonal(n_k, h, rng, self.gain),
                "B1": rng.uniform(-self.bias_range, self.bias_range, n_k)}

    def node_index(self, node) -> int:
        """The index of ``node`` (an index or a name); a clear error when there is none."""
        if isinstance(node, str):
            if node not in self.names:
                raise ValueError(f"CategoricalSCM: no node named {node!r}; nodes are "
                                 f"{', '.join(self.names)}")
            return self.names.index(node)
        if isinstance(node, (bool, np.bool_)) or not isinstance(node, (int, np.integer)) \
                or not 0 <= int(node) < self.num_nodes:
            raise ValueError(f"CategoricalSCM: no node {node!r}; expected an index in "
                             f"[0, {self.num_nodes}) or a name")
        return int(node)

    def intervene(self, node, rng=None, seed: int | None = None) -> CategoricalSCM:
        """A soft intervention: a copy whose node ``node`` has a freshly drawn network; every
        other conditional is shared unchanged (official ``CategoricalWorldInterventionMLP``)."""
        k = self.node_index(node)
        new = copy.copy(self)
        new.weights = list(self.weights)
        new.weights[k] = self._draw_node(k, _as_rng(rng, seed))
        new.intervened = k
        return new

    def redraw(self, rng=None, seed: int | None = None) -> CategoricalSCM:
        """A copy with every conditional redrawn on the same graph (the official
        ``alterdists``, run at the start of every training distribution)."""
        rng = _as_rng(rng, seed)
        new = copy.copy(self)
        new.weights = [self._draw_node(k, rng) for k in range(self.num_nodes)]
        return new

    # --- the conditionals -------------------------------------------------------------------
    def check_samples(self, x) -> np.ndarray:
        """``x`` as an (n, M) int64 array whose values are in range; an error names the node
        and the value otherwise."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.num_nodes:
            raise ValueError(f"CategoricalSCM: samples must have shape (n, {self.num_nodes}), "
                             f"got {x.shape}")
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"CategoricalSCM: samples must be integer categories, got "
                             f"dtype {x.dtype}")
        bad = (x < 0) | (x >= self.cardinalities[None, :])
        if bad.any():
            r, k = map(int, np.argwhere(bad)[0])
            raise ValueError(f"CategoricalSCM: sample {r} has value {int(x[r, k])} for node "
                             f"{self.names[k]}, which has {self.cardinalities[k]} categories "
                             f"(0..{self.cardinalities[k] - 1})")
        return x.astype(np.int64, copy=False)

    def node_logits(self, k: int, x: np.ndarray) -> np.ndarray:
        """Logits (n, N_k) of node k given the parents' values in the rows of ``x``."""
        w = self.weights[k]
        h = np.broadcast_to(w["B0"], (len(x), self.hidden)).copy()
        for j in self.parents[k]:
            h += w["W0"][self.offsets[j] + x[:, j]]
        h = np.where(h > 0, h, LEAKY_SLOPE * h)
        return h @ w["W1"].T + w["B1"]

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` joint samples (n, M) int64 by ancestral sampling with Gumbel-max."""
        rng = _as_rng(rng)
        x = np.zeros((int(n), self.num_nodes), dtype=np.int64)
        for k in self.order:
            logits = self.node_logits(k, x)
            gumbel = -np.log(-np.log(rng.uniform(np.finfo(float).tiny, 1.0, logits.shape)))
            x[:, k] = np.argmax(logits + gumbel, axis=1)
        return x

    def node_log_prob(self, x) -> np.ndarray:
        """log p(x_k | parents) for every sample and node: (n, M), natural log."""
        x = self.check_samples(x)
        out = np.empty(x.shape, dtype=np.float64)
        for k in range(self.num_nodes):
            logits = self.node_logits(k, x)
            top = logits.max(axis=1, keepdims=True)
            logz = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            out[:, k] = logits[np.arange(len(x)), x[:, k]] - logz
        return out

    def log_prob(self, x) -> np.ndarray:
        """log p(x) of each joint sample (n,), natural log."""
        return self.node_log_prob(x).sum(axis=1)

    def conditional_table(self, node) -> np.ndarray:
        """Node ``node``'s conditional as a table of shape (*parent cardinalities, N_k) (parents
        in sorted order), each row a distribution, enumerated from its network."""
        k = self.node_index(node)
        pa = self.parents[k]
        shape = tuple(int(self.cardinalities[j]) for j in pa)
        grid = np.indices(shape).reshape(len(pa), -1).T if pa else np.zeros((1, 0), int)
        x = np.zeros((len(grid), self.num_nodes), dtype=np.int64)
        x[:, pa] = grid
        logits = self.node_logits(k, x)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p.reshape(*shape, int(self.cardinalities[k]))

    def __repr__(self) -> str:
        return (f"CategoricalSCM(M={self.num_nodes}, edges={int(self.adjacency.sum())}, "
                f"categories={self.cardinalities.tolist()}, hidden={self.hidden})")


@dataclass
class InterventionalData:
    """Fixed datasets for structure learning: observational samples (n, M) and a list of
    interventional datasets ``(target, samples)``, target None when it is not given to the
    learner. ``true_targets`` (one per intervention) and ``adjacency`` keep the truth, when
    known, for scoring only."""

    observational: np.ndarray
    interventions: list
    true_targets: list | None = None
    adjacency: np.ndarray | None = None
    names: list | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.observational.shape[1])

    @property
    def known_targets(self) -> bool:
        return all(t is not None for t, _ in self.interventions)


def make_interventional_data(truth, n_observational: int, n_interventions: int,
                             samples_per_intervention: int, rng=None, seed: int | None = None,
                             known_targets: bool = True, targets=None) -> InterventionalData:
    """Observational and interventional datasets from ``truth`` (anything with ``.sample(n,
    rng)`` and ``.intervene(node, rng)``, e.g. a CategoricalSCM or a BayesianNetwork): each
    intervention targets a node drawn uniformly (or the given ``targets``), as SDI's official
    code, and is sampled ``samples_per_intervention`` times (its ``--limit-samples``)."""
    rng = _as_rng(rng, seed)
    m = len(truth.adjacency)
    obs = truth.sample(int(n_observational), rng)
    if targets is None:
        targets = rng.integers(0, m, int(n_interventions)).tolist()
    interventions = []
    for t in targets:
        shifted = truth.intervene(int(t), rng)
        interventions.append((int(t) if known_targets else None,
                              shifted.sample(int(samples_per_intervention), rng)))
    return InterventionalData(observational=obs, interventions=interventions,
                              true_targets=[int(t) for t in targets],
                              adjacency=np.asarray(truth.adjacency).copy(),
                              names=list(getattr(truth, "names", [])) or None)

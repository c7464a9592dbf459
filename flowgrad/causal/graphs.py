"""Causal graphs as adjacency matrices: the synthetic families of SDI (Ke et al. 2019, arXiv
1910.01075, Table 1; presets of the official ``run.py``), DAG checks, topological order, the
structural Hamming distance and a figure of learned edge beliefs beside the true graph.

Convention: ``adj[i, j] == 1`` means the edge i -> j (i is a parent of j); the diagonal is 0.
(SDI's code stores the transpose, ``gamma[i, j] = 1`` for j -> i; this module never does.)
"""

from __future__ import annotations

import heapq
import re
from pathlib import Path

import numpy as np

from ..errors import ShapeError

__all__ = ["FAMILIES", "adjacency_to_edges", "check_dag", "children", "edges_to_adjacency",
           "graph_family", "parents", "parse_graph", "plot_graph_comparison",
           "structural_hamming_distance", "topological_order"]

FAMILIES = ("chain", "collider", "fork", "confounder", "jungle", "full", "tree", "bidiag")


def _square(adj, what: str) -> np.ndarray:
    a = np.asarray(adj)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"{what}: an adjacency matrix must be square (M, M), got shape "
                         f"{a.shape}")
    return a


def edges_to_adjacency(edges, num_nodes: int) -> np.ndarray:
    """The (M, M) int adjacency with ``adj[i, j] = 1`` for every (i, j) in ``edges``."""
    adj = np.zeros((num_nodes, num_nodes), dtype=np.int64)
    for edge in edges:
        i, j = (int(v) for v in edge)
        if not (0 <= i < num_nodes and 0 <= j < num_nodes):
            raise ValueError(f"edges_to_adjacency: edge ({i}, {j}) names a node outside "
                             f"0..{num_nodes - 1}")
        if i == j:
            raise ValueError(f"edges_to_adjacency: self-loop ({i}, {i}) is not allowed")
        adj[i, j] = 1
    return adj


def adjacency_to_edges(adj) -> list[tuple[int, int]]:
    """The edges (i, j) with ``adj[i, j] != 0`` off the diagonal, in row-major order."""
    a = _square(adj, "adjacency_to_edges")
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(a)) if i != j]


def _parse_item(token: str) -> list[int]:
    token = token.strip()
    if token.startswith("{") and token.endswith("}"):
        out: set[int] = set()
        for part in token[1:-1].split(","):
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi) if hi.strip() else int(lo)
            out.update(range(min(a, b), max(a, b) + 1))
        return sorted(out)
    return [int(token)]


def parse_graph(spec: str, num_nodes: int | None = None) -> np.ndarray:
    """Adjacency from SDI's graph mini-language (``run.py --graph``): comma-separated chains
    ``A -> B -> C`` whose links are integers or sets ``{0-3, 5}``; a set-to-set link keeps only
    the forward edges i -> j with i < j (so ``{0-2}->{0-2}`` is the complete DAG on 3 nodes).
    An integer link pointing backwards (``2 -> 1``) is an error, as in SDI."""
    chains = [c for c in re.findall(r"(?:[^,{]|\{[^}]*\})+", spec) if c.strip()]
    links = [[_parse_item(t) for t in chain.split("->")] for chain in chains]
    top = max((n for chain in links for item in chain for n in item), default=-1) + 1
    m = top if num_nodes is None else num_nodes
    if m < top:
        raise ValueError(f"parse_graph: {spec!r} names node {top - 1} but num_nodes={m}")
    adj = np.zeros((m, m), dtype=np.int64)
    for chain in links:
        for src, dst in zip(chain[:-1], chain[1:]):
            if len(src) == 1 and len(dst) == 1 and dst[0] <= src[0]:
                raise ValueError(f"parse_graph: edge {src[0]} -> {dst[0]} in {spec!r} points to "
                                 f"itself or backwards; nodes must be in topological order")
            for i in src:
                for j in dst:
                    if i < j:
                        adj[i, j] = 1
    return adj


def _heap_parent(i: int) -> int:
    return (i - 1) // 2


def graph_family(name: str) -> np.ndarray:
    """The adjacency of an SDI synthetic graph, ``"<family><M>"`` (e.g. ``"chain13"``), nodes
    in topological order as in the official ``run.py`` presets:

    - ``chainM``: 0 -> 1 -> ... -> M-1 (M-1 edges).
    - ``colliderM``: {0..M-2} -> M-1 (M-1 edges).
    - ``forkM``: 0 -> {1..M-1} (SDI has fork3 = 0 -> {1, 2}; larger M extend it).
    - ``confounderM``: SDI defines only confounder3 = full3 (0->1, 0->2, 1->2).
    - ``jungleM``: binary tree (node i's parent is (i-1)//2) where every node also has its
      grandparent as a parent (jungle13: 22 edges, in-degree 2).
    - ``fullM``: the complete DAG i -> j for all i < j (M(M-1)/2 edges).
    - ``treeM``: the binary tree alone (M-1 edges).
    - ``bidiagM``: i -> i+1 and i -> i+2 (2M-3 edges; bidiag3 = full3).
    """
    match = re.fullmatch(r"([a-z]+)(\d+)", name.strip())
    if match is None or match.group(1) not in FAMILIES:
        raise ValueError(f"graph_family: unknown graph {name!r}; expected <family><M> with "
                         f"family one of {', '.join(FAMILIES)} (e.g. 'chain13')")
    family, m = match.group(1), int(match.group(2))
    if m < 2:
        raise ValueError(f"graph_family: {name!r} needs at least 2 nodes")
    edges: list[tuple[int, int]] = []
    if family == "chain":
        edges = [(i, i + 1) for i in range(m - 1)]
    elif family == "collider":
        edges = [(i, m - 1) for i in range(m - 1)]
    elif family == "fork":
        edges = [(0, j) for j in range(1, m)]
    elif family == "confounder":
        if m != 3:
            raise ValueError(f"graph_family: SDI defines the confounder graph only for 3 nodes "
                             f"(confounder3 = full3), got {name!r}")
        edges = [(0, 1), (0, 2), (1, 2)]
    elif family == "full":
        edges = [(i, j) for i in range(m) for j in range(i + 1, m)]
    elif family == "tree":
        edges = [(_heap_parent(j), j) for j in range(1, m)]
    elif family == "jungle":
        edges = [(_heap_parent(j), j) for j in range(1, m)]
        edges += [(_heap_parent(_heap_parent(j)), j) for j in range(3, m)]
    elif family == "bidiag":
        edges = [(i, i + 1) for i in range(m - 1)] + [(i, i + 2) for i in range(m - 2)]
    return edges_to_adjacency(edges, m)


def _node_label(k: int, names) -> str:
    return str(names[k]) if names is not None else str(k)


def check_dag(adj, names=None, what: str = "graph") -> np.ndarray:
    """Return ``adj`` as an int array after checking it is a DAG: square, 0/1 entries and no
    directed cycle. A cycle raises ValueError naming its nodes in order (``A -> B -> A``)."""
    import networkx as nx

    a = _square(adj, what)
    if names is not None and len(names) != a.shape[0]:
        raise ShapeError(f"{what}: {len(names)} names for a {a.shape[0]}-node adjacency")
    if not np.all((a == 0) | (a == 1)):
        bad = np.argwhere((a != 0) & (a != 1))[0]
        raise ValueError(f"{what}: adjacency entries must be 0 or 1, got {a[tuple(bad)]} at "
                         f"{tuple(int(v) for v in bad)}")
    a = a.astype(np.int64)
    for k in range(a.shape[0]):
        if a[k, k]:
            label = _node_label(k, names)
            raise ValueError(f"{what} has a cycle: {label} -> {label} (a self-loop); a DAG is "
                             f"required")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(a.shape[0]))
    graph.add_edges_from(adjacency_to_edges(a))
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return a
    nodes = [u for u, _ in cycle] + [cycle[0][0]]
    path = " -> ".join(_node_label(k, names) for k in nodes)
    raise ValueError(f"{what} has a cycle: {path}; a DAG is required")


def topological_order(adj, names=None) -> list[int]:
    """Nodes ordered so every parent precedes its children (ties: smallest index first);
    ValueError naming a cycle when there is one."""
    a = check_dag(adj, names)
    indegree = a.sum(axis=0).tolist()
    ready = [k for k, d in enumerate(indegree) if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for j in np.nonzero(a[k])[0].tolist():
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    return order


def parents(adj, j: int) -> list[int]:
    """The parents of node ``j`` (sorted indices i with ``adj[i, j] == 1``)."""
    a = _square(adj, "parents")
    return [int(i) for i in np.nonzero(a[:, j])[0] if i != j]


def children(adj, i: int) -> list[int]:
    """The children of node ``i`` (sorted indices j with ``adj[i, j] == 1``)."""
    a = _square(adj, "children")
    return [int(j) for j in np.nonzero(a[i])[0] if j != i]


def structural_hamming_distance(predicted, true, threshold: float = 0.5) -> int:
    """SDI's structural Hamming distance: the number of off-diagonal (i, j) where the
    predicted edge i -> j differs from the true one, so a missing or extra edge counts 1 and a
    reversed edge counts 2 (``get_status_report`` in the official code). ``predicted`` may hold
    edge probabilities: ``predicted >= threshold`` is an edge. An undirected edge given as both
    directions therefore counts 1 against a true directed edge."""
    p = _square(predicted, "structural_hamming_distance(predicted)")
    t = _square(true, "structural_hamming_distance(true)")
    if p.shape != t.shape:
        raise ShapeError(f"structural_hamming_distance: predicted has shape {p.shape} but true "
                         f"has shape {t.shape}")
    p_edges = np.asarray(p, dtype=np.float64) >= threshold
    t_edges = np.asarray(t, dtype=np.float64) >= threshold
    off = ~np.eye(p.shape[0], dtype=bool)
    return int(np.sum((p_edges != t_edges) & off))


def plot_graph_comparison(probs, true_adj, path, names=None, title=None) -> Path:
    """A PNG of the learned edge beliefs ``probs[i, j] = P(i -> j)`` (heatmap, 0..1) beside the
    true adjacency, node names on both axes (rows: parent, columns: child), the SHD at 0.5 in
    the title. Returns the path written."""
    from ..plotting import new_figure, save_figure

    p = np.asarray(_square(probs, "plot_graph_comparison(probs)"), dtype=np.float64)
    t = np.asarray(_square(true_adj, "plot_graph_comparison(true_adj)"), dtype=np.float64)
    if p.shape != t.shape:
        raise ShapeError(f"plot_graph_comparison: probs has shape {p.shape} but true_adj has "
                         f"shape {t.shape}")
    m = p.shape[0]
    labels = [str(n) for n in names] if names is not None else [str(k) for k in range(m)]
    if len(labels) != m:
        raise ShapeError(f"plot_graph_comparison: {len(labels)} names for {m} nodes")
    p = p.copy()
    np.fill_diagonal(p, 0.0)
    side = max(4.0, 0.35 * m + 2.0)
    fig, axes = new_figure(1, 2, figsize=(2 * side + 1.0, side), layout="constrained")
    shd = structural_hamming_distance(p, t)
    for ax, mat, sub in ((axes[0], p, "learned P(i \u2192 j)"), (axes[1], t, "true graph")):
        image = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_title(sub)
        ax.set_xticks(range(m), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(m), labels, fontsize=8)
        ax.set_xlabel("child j")
        ax.set_ylabel("parent i")
    for i, j in zip(*np.nonzero((p >= 0.5) != (t >= 0.5))):
        if i != j:
            axes[0].text(j, i, "\u00d7", ha="center", va="center", color="red", fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    fig.suptitle(f"{title + ': ' if title else ''}SHD {shd} (red \u00d7: wrong at 0.5)")
    return save_figure(fig, path)

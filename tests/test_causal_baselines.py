"""Structure-learning baselines: NOTEARS on the flowgrad engine (the acyclicity function h(W)
and its gradient against finite differences and torch.linalg.matrix_exp, the objective's
gradients against torch, recovery of a known linear-Gaussian DAG) and causal-learn's PC and GES
wrapped to the adjacency convention (each endpoint mark converted, recovery of small known DAGs,
discrete and linear Gaussian), bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.causal import structural_hamming_distance
from flowgrad.causal.baselines import causallearn_to_adjacency, ges, pc
from flowgrad.causal.notears import _l2_loss_gram, _loss, acyclicity, notears_linear
from flowgrad.errors import ShapeError

torch = pytest.importorskip("torch")

# a 5-node DAG with a v-structure: 0 -> 1 -> 2 -> 4 <- 3 <- 0
GAUSS_EDGES = [(0, 1), (1, 2), (0, 3), (3, 4), (2, 4)]
# its CPDAG: the collider 2 -> 4 <- 3 is directed, the rest undirected
GAUSS_CPDAG = [(0, 1), (1, 0), (1, 2), (2, 1), (0, 3), (3, 0), (2, 4), (3, 4)]
# a discrete network: 0 -> 2 <- 1, 2 -> 3 -> 4 (its CPDAG is the DAG itself)
DISCRETE_EDGES = [(0, 2), (1, 2), (2, 3), (3, 4)]
DISCRETE_CARDS = (2, 3, 3, 2, 3)


def _adj(edges, d=5):
    a = np.zeros((d, d), dtype=np.int64)
    for i, j in edges:
        a[i, j] = 1
    return a


def linear_gaussian(edges, n, seed, d=5):
    """X_j = sum_i W_ij X_i + N(0, 1), |W_ij| ~ U(0.5, 2) with a random sign (the weight law
    of the NOTEARS authors' simulations)."""
    rng = np.random.default_rng(seed)
    adj = _adj(edges, d)
    w = adj * rng.uniform(0.5, 2.0, (d, d)) * rng.choice([-1.0, 1.0], (d, d))
    x = np.zeros((n, d))
    for j in range(d):  # node indices are in topological order
        x[:, j] = x @ w[:, j] + rng.standard_normal(n)
    return adj, w, x


def categorical_bn(edges, cards, n, seed):
    """Ancestral samples of a categorical Bayesian network whose CPT rows are Dirichlet(0.5)."""
    rng = np.random.default_rng(seed)
    d = len(cards)
    adj = _adj(edges, d)
    x = np.zeros((n, d), dtype=np.int64)
    for j in range(d):
        pa = list(np.flatnonzero(adj[:, j]))
        rows = int(np.prod([cards[p] for p in pa]))
        cpt = rng.dirichlet(np.full(cards[j], 0.5), size=rows).reshape(
            [cards[p] for p in pa] + [cards[j]])
        probs = cpt[tuple(x[:, p] for p in pa)] if pa else np.broadcast_to(cpt, (n, cards[j]))
        x[:, j] = (probs.cumsum(1) < rng.random((n, 1))).sum(1)
    return adj, x


def _h_torch(w, dtype):
    t = torch.tensor(w, dtype=dtype, requires_grad=True)
    h = torch.linalg.matrix_exp(t * t).trace() - w.shape[0]
    h.backward()
    return h.item(), t.grad.numpy()


# --- h(W) = tr(e^{W∘W}) - d ----------------------------------------------------------------

def test_h_is_zero_for_dags_and_positive_with_a_cycle():
    rng = np.random.default_rng(0)
    for d in (2, 5, 11):
        perm = rng.permutation(d)
        w = np.triu(rng.normal(size=(d, d)), 1)[np.ix_(perm, perm)]  # a weighted DAG
        assert acyclicity(fg.tensor(w)).item() == 0.0  # exactly: e^{W∘W} is unipotent
        order = np.argsort(perm)  # a topological order of w
        cyc = w.copy()
        cyc[order[-1], order[0]] = 0.3  # last -> first closes cycles
        assert acyclicity(fg.tensor(cyc)).item() > 0.0
    two = np.array([[0.0, 1.0], [1.0, 0.0]])  # tr(e^{[[0,1],[1,0]]}) - 2 = 2 cosh 1 - 2
    assert acyclicity(fg.tensor(two)).item() == pytest.approx(2 * np.cosh(1.0) - 2, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_h_and_its_gradient_match_torch_matrix_exp(dtype):
    rng = np.random.default_rng(1)
    w = (rng.normal(size=(6, 6)) * 0.5).astype(dtype)
    t = fg.tensor(w, requires_grad=True)
    h = acyclicity(t)
    h.backward()
    h_ref, g_ref = _h_torch(w, getattr(torch, dtype))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=1e-5)
    assert h.dtype == getattr(fg, dtype) and t.grad.dtype == getattr(fg, dtype)
    np.testing.assert_allclose(h.item(), h_ref, **tol)
    np.testing.assert_allclose(t.grad.numpy(), g_ref, **tol)
    # the closed form of the paper: grad h = (e^{W∘W})^T ∘ 2W
    from scipy.linalg import expm

    w64 = w.astype(np.float64)
    np.testing.assert_allclose(t.grad.numpy(), expm(w64 * w64).T * 2 * w64, **tol)


def test_h_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 4)) * 0.7
    t = fg.tensor(w, requires_grad=True)
    acyclicity(t).backward()
    eps, fd = 1e-6, np.zeros_like(w)
    for k in np.ndindex(*w.shape):
        up, down = w.copy(), w.copy()
        up[k] += eps
        down[k] -= eps
        fd[k] = (acyclicity(fg.tensor(up)).item() - acyclicity(fg.tensor(down)).item()) / (2 * eps)
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_h_rejects_a_non_square_matrix():
    with pytest.raises(ShapeError, match="square"):
        acyclicity(fg.tensor(np.zeros((2, 3))))


# --- the NOTEARS objective and solver ----------------------------------------------------------

@pytest.mark.parametrize("loss_type", ["l2", "logistic", "poisson"])
def test_loss_and_gradient_match_torch(loss_type):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4))
    if loss_type == "logistic":
        x = (x > 0).astype(np.float64)
    elif loss_type == "poisson":
        x = rng.poisson(2.0, size=(50, 4)).astype(np.float64)
    w = rng.normal(size=(4, 4)) * 0.3
    ft = fg.tensor(w, requires_grad=True)
    value = _loss(fg.tensor(x), ft, loss_type)
    value.backward()
    xt, tt = torch.tensor(x), torch.tensor(w, requires_grad=True)
    m = xt @ tt
    ref = {"l2": 0.5 / 50 * ((xt - m) ** 2).sum(),
           "logistic": (torch.logaddexp(torch.zeros_like(m), m) - xt * m).sum() / 50,
           "poisson": (m.exp() - xt * m).sum() / 50}[loss_type]
    ref.backward()
    np.testing.assert_allclose(value.item(), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(ft.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_least_squares_through_the_gram_matrix_is_the_same_loss():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 5))
    a, b = fg.tensor(w, requires_grad=True), fg.tensor(w, requires_grad=True)
    direct = _loss(fg.tensor(x), a, "l2")
    gram = _l2_loss_gram(fg.tensor(x.T @ x / 200), b)
    direct.backward()
    gram.backward()
    np.testing.assert_allclose(gram.item(), direct.item(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_notears_recovers_a_linear_gaussian_dag():
    adj, w_true, x = linear_gaussian(GAUSS_EDGES, n=1000, seed=2)
    w, info = notears_linear(x, lambda1=0.1, loss_type="l2", w_threshold=0.3, return_info=True)
    assert info["acyclic"] and info["h"] <= 1e-8
    assert structural_hamming_distance((w != 0).astype(int), adj) <= 1
    # the weights too, shrunk towards 0 by the L1 penalty
    assert np.all(np.sign(w[adj == 1]) == np.sign(w_true[adj == 1]))
    np.testing.assert_allclose(w[adj == 1], w_true[adj == 1], atol=0.25)
    assert np.all(np.diag(w) == 0)


def test_notears_logistic_finds_the_dependence():
    rng = np.random.default_rng(4)
    a = (rng.random(2000) < 0.5).astype(np.float64)
    b = np.where(rng.random(2000) < 0.9, a, 1 - a)  # b copies a with 10% flips
    c = (rng.random(2000) < 0.5).astype(np.float64)  # independent
    w = notears_linear(np.stack([a, b, c], 1), loss_type="logistic")
    support = (w != 0).astype(int)
    assert support[0, 1] + support[1, 0] == 1  # one edge between a and b, either direction
    assert support[:, 2].sum() == 0 and support[2].sum() == 0


def test_notears_bad_input():
    with pytest.raises(ValueError, match="unknown loss_type"):
        notears_linear(np.zeros((10, 3)), loss_type="huber")
    with pytest.raises(ValueError, match="binary"):
        notears_linear(np.full((10, 3), 0.5), loss_type="logistic")
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        notears_linear(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        notears_linear(np.full((10, 3), np.nan))


# --- causal-learn's PC and GES ------------------------------------------------------------------

def test_each_causallearn_edge_mark_is_converted():
    """A hand-made endpoint matrix (G[i, j] = mark at i): 0 -> 1, 1 -- 2, 2 <-> 3, 3 o-> 4,
    4 o-o 0, and 1, 3 not adjacent."""
    tail, arrow, circle = -1, 1, 2
    g = np.zeros((5, 5), dtype=int)
    for i, j, at_i, at_j in [(0, 1, tail, arrow), (1, 2, tail, tail), (2, 3, arrow, arrow),
                             (3, 4, circle, arrow), (4, 0, circle, circle)]:
        g[i, j], g[j, i] = at_i, at_j
    expected = _adj([(0, 1), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 0), (0, 4)])
    np.testing.assert_array_equal(causallearn_to_adjacency(g), expected)
    # and from causal-learn's own graph object
    pytest.importorskip("causallearn")
    from causallearn.graph.Edge import Edge
    from causallearn.graph.Endpoint import Endpoint
    from causallearn.graph.GeneralGraph import GeneralGraph
    from causallearn.graph.GraphNode import GraphNode

    nodes = [GraphNode(f"X{k}") for k in range(4)]
    graph = GeneralGraph(nodes)
    graph.add_directed_edge(nodes[0], nodes[1])
    graph.add_edge(Edge(nodes[1], nodes[2], Endpoint.TAIL, Endpoint.TAIL))
    graph.add_edge(Edge(nodes[2], nodes[3], Endpoint.ARROW, Endpoint.ARROW))
    np.testing.assert_array_equal(causallearn_to_adjacency(graph.graph),
                                  _adj([(0, 1), (1, 2), (2, 1), (2, 3), (3, 2)], 4))


def test_shd_of_undirected_edges_as_documented():
    true = _adj([(0, 1)], 3)
    undirected = _adj([(0, 1), (1, 0)], 3)
    assert structural_hamming_distance(undirected, true) == 1  # edge there: counts once
    assert structural_hamming_distance(_adj([(1, 2), (2, 1)], 3), true) == 3  # 2 + the miss
    assert structural_hamming_distance(_adj([(1, 0)], 3), true) == 2  # reversed


def test_inconsistent_endpoint_matrix_is_refused():
    g = np.zeros((3, 3), dtype=int)
    g[0, 1] = -1
    with pytest.raises(ValueError, match="node 0 of an edge to node 1"):
        causallearn_to_adjacency(g)


def _skeleton(a):
    return ((a + a.T) > 0).astype(int)


def test_pc_and_ges_on_a_discrete_network():
    pytest.importorskip("causallearn")
    adj, x = categorical_bn(DISCRETE_EDGES, DISCRETE_CARDS, n=2000, seed=2)
    for test in ("chisq", "gsq"):
        np.testing.assert_array_equal(_skeleton(pc(x, alpha=0.05, test=test)), _skeleton(adj))
    assert structural_hamming_distance(ges(x, score="bdeu"), adj) == 0
    assert structural_hamming_distance(ges(x), adj) == 0  # "auto" picks BDeu for integer data


def test_pc_and_ges_on_linear_gaussian_data():
    pytest.importorskip("causallearn")
    adj, _, x = linear_gaussian(GAUSS_EDGES, n=1000, seed=0)
    cpdag = _adj(GAUSS_CPDAG)
    np.testing.assert_array_equal(pc(x, alpha=0.05, test="fisherz"), cpdag)
    np.testing.assert_array_equal(ges(x, score="bic"), cpdag)
    assert structural_hamming_distance(pc(x), adj) == 3  # three undirected edges, 1 each


def test_baselines_bad_input_and_missing_library(monkeypatch):
    x = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="unknown test"):
        pc(x, test="kci2")
    with pytest.raises(ValueError, match="unknown score"):
        ges(x, score="aic")
    with pytest.raises(ValueError, match="integers"):
        pc(x, test="chisq")
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        ges(np.zeros(5))
    monkeypatch.setitem(sys.modules, "causallearn", None)
    with pytest.raises(ImportError, match=r"pip install flowgrad\[causal\]"):
        pc(x, test="fisherz")

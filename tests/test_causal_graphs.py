"""Causal graphs (SDI's synthetic families, SHD, DAG checks, the comparison figure), discrete
Bayesian networks read from BIF with pgmpy (checked against pgmpy's own model on all five
bnlearn files), sampling, log-likelihood, SDI's CPT intervention and the Sachs data."""

import gzip
import itertools
import math

import numpy as np
import pytest

from flowgrad.causal import (
    BayesianNetwork,
    BIFError,
    adjacency_to_edges,
    check_dag,
    edges_to_adjacency,
    graph_family,
    load_bif,
    parents,
    plot_graph_comparison,
    read_bif,
    structural_hamming_distance,
    topological_order,
)
from flowgrad.causal.bayesnet import BIF_NETWORKS
from flowgrad.causal.graphs import parse_graph
from flowgrad.datasets.files import search_path

NETWORKS = {"asia": (8, 8, 18), "sachs": (11, 17, 178), "alarm": (37, 46, 509),
            "child": (20, 25, 230), "insurance": (27, 52, 1008)}  # nodes, arcs, free parameters


def _bif_folder():
    for folder, _ in search_path("bnlearn_bif"):
        if (folder / "asia.bif.gz").is_file():
            return folder
    return None


def _sachs_folder():
    for folder, _ in search_path("sachs"):
        if (folder / "cyto_full_data.csv").is_file():
            return folder
    return None


needs_bif = pytest.mark.skipif(_bif_folder() is None, reason="bnlearn_bif data not found")
needs_sachs = pytest.mark.skipif(_sachs_folder() is None, reason="sachs data not found")


# --------------------------------------------------------------------------- graph families
@pytest.mark.parametrize("name,edges", [("chain13", 12), ("collider13", 12), ("collider8", 7),
                                        ("jungle13", 22), ("full13", 78), ("fork3", 2),
                                        ("confounder3", 3), ("tree13", 12), ("bidiag13", 23),
                                        ("chain3", 2), ("collider3", 2)])
def test_family_edge_counts(name, edges):
    adj = graph_family(name)
    assert adj.dtype == np.int64 and adj.sum() == edges
    assert np.all(np.diag(adj) == 0)
    assert np.all(np.tril(adj) == 0)  # nodes in topological order
    check_dag(adj)


# Graph strings of the official run.py presets (SDI's --graph mini-language).
PRESETS = {
    "chain3": "0->1->2", "fork3": "0->{1-2}", "collider3": "{0-1}->2",
    "collider8": "{0-6}->7", "collider13": "{0-11}->12", "confounder3": "{0-2}->{0-2}",
    "full13": "{0-12}->{0-12}",
    "chain13": "0->1->2->3->4->5->6->7->8->9->10->11->12",
    "jungle8": "0->1->3->7,1->4,0->2->5,2->6,0->3,0->4,0->5,0->6,1->7",
    "jungle13": "0->1->3->7,3->8,1->4->9,4->10,0->2->5->11,5->12,2->6,0->3,0->4,0->5,0->6,"
                "1->7,1->8,1->9,1->10,2->11,2->12",
    "tree13": "0->1->3->7,0->2->6,1->4->10,3->8,4->9,2->5->11,5->12",
    "tree15": "0->1->3->7,0->2->6->14,1->4->10,3->8,4->9,2->5->11,5->12,6->13",
    "bidiag5": "{0-1}->{1-2}->{2-3}->{3-4}",
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_family_matches_official_presets(name):
    m = int("".join(ch for ch in name if ch.isdigit()))
    np.testing.assert_array_equal(graph_family(name), parse_graph(PRESETS[name], m))


def test_jungle_is_tree_plus_grandparents():
    adj = graph_family("jungle13")
    for j in range(1, 13):
        expected = {(j - 1) // 2} | ({((j - 1) // 2 - 1) // 2} if j >= 3 else set())
        assert set(parents(adj, j)) == expected
    assert adj.sum(axis=0).max() == 2


def test_family_errors():
    with pytest.raises(ValueError, match="unknown graph 'ring5'"):
        graph_family("ring5")
    with pytest.raises(ValueError, match="only for 3 nodes"):
        graph_family("confounder5")
    with pytest.raises(ValueError, match="backwards"):
        parse_graph("2->1")


def test_edges_parents_order():
    adj = edges_to_adjacency([(2, 0), (0, 1), (2, 1)], 3)
    assert adjacency_to_edges(adj) == [(0, 1), (2, 0), (2, 1)]
    assert parents(adj, 1) == [0, 2]
    assert topological_order(adj) == [2, 0, 1]
    with pytest.raises(ValueError, match="self-loop"):
        edges_to_adjacency([(1, 1)], 3)


def test_check_dag_names_the_cycle():
    adj = edges_to_adjacency([(0, 1), (1, 2), (2, 3), (3, 1)], 4)
    names = ["Raf", "Mek", "Erk", "Akt"]
    with pytest.raises(ValueError, match=r"cycle: Mek -> Erk -> Akt -> Mek") as err:
        check_dag(adj, names=names)
    assert "Raf" not in str(err.value)
    with pytest.raises(ValueError, match=r"2 -> 2"):
        check_dag(np.diag([0, 0, 1]))
    with pytest.raises(ValueError, match="cycle"):
        topological_order(adj)


# --------------------------------------------------------------------------- SHD
def test_shd_definition():
    true = edges_to_adjacency([(0, 1), (1, 2)], 3)
    assert structural_hamming_distance(true, true) == 0
    assert structural_hamming_distance(edges_to_adjacency([(1, 0), (1, 2)], 3), true) == 2
    assert structural_hamming_distance(edges_to_adjacency([(1, 2)], 3), true) == 1
    assert structural_hamming_distance(edges_to_adjacency([(0, 1), (1, 2), (0, 2)], 3),
                                       true) == 1
    both = edges_to_adjacency([(0, 1), (1, 0), (1, 2)], 3)  # an undirected edge counts once
    assert structural_hamming_distance(both, true) == 1
    probs = np.array([[0.9, 0.5, 0.2], [0.49, 0.0, 0.51], [0.0, 0.3, 1.0]])
    assert structural_hamming_distance(probs, true) == 0  # >= 0.5 is an edge; diagonal ignored
    assert structural_hamming_distance(probs, true, threshold=0.6) == 2
    assert structural_hamming_distance(np.zeros((13, 13)), graph_family("full13")) == 78
    with pytest.raises(ValueError, match="shape"):
        structural_hamming_distance(np.zeros((3, 3)), np.zeros((4, 4)))


def test_plot_writes_png(tmp_path):
    true = graph_family("chain3")
    probs = np.array([[0.0, 0.9, 0.6], [0.1, 0.0, 0.2], [0.0, 0.7, 0.0]])
    path = plot_graph_comparison(probs, true, tmp_path / "cmp.png", names=["A", "B", "C"],
                                 title="chain3")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


# --------------------------------------------------------------------------- BIF networks
@pytest.fixture(scope="module")
def pgmpy_models():
    from pgmpy.readwrite import BIFReader

    folder = _bif_folder()
    return {n: BIFReader(string=gzip.open(folder / f"{n}.bif.gz", "rt").read()).get_model()
            for n in BIF_NETWORKS}


@needs_bif
@pytest.mark.parametrize("name", BIF_NETWORKS)
def test_bif_matches_pgmpy(name, pgmpy_models):
    bn, model = load_bif(name), pgmpy_models[name]
    nodes, arcs, params = NETWORKS[name]
    assert (bn.num_nodes, len(bn.edges), bn.num_parameters) == (nodes, arcs, params)
    assert set(bn.names) == set(model.nodes())
    assert {(bn.names[i], bn.names[j]) for i, j in bn.edges} == set(model.edges())
    assert topological_order(bn.adjacency) == list(range(nodes))  # SDI's node order
    for j, v in enumerate(bn.names):
        cpd = model.get_cpds(v)
        assert bn.states[j] == [str(s) for s in cpd.state_names[v]]
        pa = bn.parents(j)
        assert bn.cpts[j].shape == tuple(bn.cardinalities[p] for p in pa) + (len(bn.states[j]),)
        # pgmpy's table, axes (node, *evidence), reordered to ours by variable and state name
        table = np.asarray(cpd.values)
        for ax, u in enumerate(cpd.variables):
            k = bn.names.index(u)
            table = np.take(table, [list(map(str, cpd.state_names[u])).index(s)
                                    for s in bn.states[k]], axis=ax)
        order = [cpd.variables.index(bn.names[p]) for p in pa] + [0]
        np.testing.assert_allclose(bn.cpts[j], np.transpose(table, order), atol=1e-6)
        idx = tuple(bn.cardinalities[p] - 1 for p in pa)  # one row through pgmpy's get_value
        given = {bn.names[p]: bn.states[p][i] for p, i in zip(pa, idx)}
        want = [cpd.get_value(**{v: s}, **given) for s in bn.states[j]]
        np.testing.assert_allclose(bn.cpts[j][idx], want, atol=1e-6)


@needs_bif
def test_read_bif_plain_gz_and_text(tmp_path):
    text = gzip.open(_bif_folder() / "asia.bif.gz", "rt").read()
    plain = tmp_path / "asia.bif"
    plain.write_text(text)
    a, b, c = read_bif(_bif_folder() / "asia.bif.gz"), read_bif(plain), read_bif(text)
    assert a.names == b.names == c.names and b.name == "asia"
    for x, y in zip(a.cpts, c.cpts):
        np.testing.assert_array_equal(x, y)


TINY = """network tiny { }
variable A { type discrete [ 2 ] { a0, a1 }; }
variable B { type discrete [ 3 ] { b0, b1, b2 }; }
variable C { type discrete [ 2 ] { c0, c1 }; }
probability ( C | B, A ) {
  (b0, a0) 0.5, 0.5; (b1, a0) 0.1, 0.9; (b2, a0) 0.2, 0.8;
  (b0, a1) 0.3, 0.7; (b1, a1) 0.4, 0.6; (b2, a1) 0.9, 0.1;
}
probability ( A ) { table 0.3, 0.7; }
probability ( B | A ) { table 0.1, 0.2, 0.3, 0.4, 0.6, 0.4; }
"""


def test_read_bif_layout_and_pgmpy_round_trip():
    bn = read_bif(TINY)
    assert bn.names == ["A", "B", "C"] and bn.states[1] == ["b0", "b1", "b2"]
    np.testing.assert_allclose(bn.cpts[1], [[0.1, 0.3, 0.6], [0.2, 0.4, 0.4]])  # table: B slowest
    assert bn.cpts[2].shape == (2, 3, 2)  # parents in node order (A, B), then C
    np.testing.assert_allclose(bn.cpts[2][1, 2], [0.9, 0.1])
    np.testing.assert_allclose(bn.cpts[2][0, 1], [0.1, 0.9])
    model = bn.to_pgmpy()
    assert model.check_model()
    assert model.get_cpds("C").get_value(C="c0", A="a1", B="b2") == pytest.approx(0.9)
    assert np.exp(bn.log_prob([[1, 2, 0]]))[0] == pytest.approx(0.7 * 0.4 * 0.9)


@needs_bif
def test_asia_sampling_frequencies():
    bn = load_bif("asia")
    x = bn.sample(40000, rng=0)
    assert x.shape == (40000, 8) and x.dtype == np.int64
    checked = 0
    for j in range(bn.num_nodes):
        pa = bn.parents(j)
        for idx in itertools.product(*(range(bn.cardinalities[p]) for p in pa)):
            rows = np.all(x[:, pa] == np.array(idx, dtype=np.int64), axis=1) if pa else \
                np.ones(len(x), bool)
            n = rows.sum()
            if n < 300:
                continue
            freq = np.bincount(x[rows, j], minlength=bn.cardinalities[j]) / n
            p = bn.cpts[j][idx]
            tol = 5 * np.sqrt(p * (1 - p) / n) + 1e-9
            assert np.all(np.abs(freq - p) <= tol), (bn.names[j], idx, freq, p)
            checked += 1
    assert checked >= 12
    np.testing.assert_array_equal(bn.sample(50, rng=3), bn.sample(50, rng=3))


@needs_bif
def test_log_prob_matches_pgmpy_product(pgmpy_models):
    bn, model = load_bif("asia"), pgmpy_models["asia"]
    x = bn.sample(6, rng=1)
    x[0] = [1, 1, 0, 0, 0, 1, 1, 1]  # asia=no, tub=no, smoke=yes, lung=yes, either=no: p = 0
    got = bn.log_prob(x)
    for row, lp in zip(x, got):
        state = {v: bn.states[j][row[j]] for j, v in enumerate(bn.names)}
        prob = 1.0
        for v in bn.names:
            cpd = model.get_cpds(v)
            prob *= cpd.get_value(**{u: state[u] for u in cpd.variables})
        assert (lp == -np.inf) if prob == 0 else math.isclose(lp, math.log(prob), rel_tol=1e-9)
    assert got[0] == -np.inf and np.all(np.isfinite(got[1:]))


@needs_bif
def test_intervene_changes_only_that_node():
    bn = load_bif("sachs")
    new = bn.intervene("PKA", rng=0)
    k = bn.index("PKA")
    for j in range(bn.num_nodes):
        if j != k:
            np.testing.assert_array_equal(new.cpts[j], bn.cpts[j])
    assert new.cpts[k].shape == bn.cpts[k].shape and not np.allclose(new.cpts[k], bn.cpts[k])
    np.testing.assert_allclose(new.cpts[k].sum(-1), 1.0)
    # softmax of U(-2.5, 2.5) over 3 states: every entry within [e^-5/(e^-5+2), 1/(1+2e^-5)]
    assert new.cpts[k].min() > np.exp(-5) / (np.exp(-5) + 2)
    assert new.cpts[k].max() < 1 / (1 + 2 * np.exp(-5))
    np.testing.assert_array_equal(new.adjacency, bn.adjacency)
    np.testing.assert_array_equal(bn.intervene(k, rng=5).cpts[k], bn.intervene("PKA", 5).cpts[k])


def test_from_adjacency_random_cpts():
    adj = graph_family("collider3")
    bn = BayesianNetwork.from_adjacency(adj, [2, 3, 4], rng=0)
    assert [c.shape for c in bn.cpts] == [(2,), (3,), (2, 3, 4)]
    np.testing.assert_allclose(bn.cpts[2].sum(-1), 1.0)
    x = bn.sample(100, rng=0)
    assert x[:, 2].max() < 4 and np.all(np.isfinite(bn.log_prob(x)))


# --------------------------------------------------------------------------- bad input
def _asia_text():
    return gzip.open(_bif_folder() / "asia.bif.gz", "rt").read()


@needs_bif
@pytest.mark.parametrize("edit,message", [
    (("probability ( lung | smoke ) {", "probability ( lung | smoke  {"),
     r"line 37: expected '\)' after the parent names, got '\{'"),
    (("variable tub {", "varible tub {"), r"line 6: expected 'network', 'variable' or "),
    (("(yes) 0.1, 0.9;", "(yes) 0.1, O.9;"), r"line 38: table of 'lung': 'O.9' is not a number"),
    (("(yes) 0.1, 0.9;", "(maybe) 0.1, 0.9;"), r"line 38: .*'maybe' is not a state of 'smoke'"),
    (("probability ( lung | smoke )", "probability ( lung | smok )"),
     r"line 37: .*undeclared variable 'smok'"),
    (("(yes) 0.05, 0.95;", "(yes) 0.05, 0.75;"),
     r"line 31: the CPT of node 'tub' does not sum to 1 for parent configuration \(asia=yes\): "
     r"it sums to 0.8"),
    (("table 0.5, 0.5;", "table 0.5, 0.6;"), r"line 35: the CPT of node 'smoke' does not sum"),
])
def test_bad_bif_errors(edit, message):
    text = _asia_text()
    assert edit[0] in text
    with pytest.raises(BIFError, match=message):
        read_bif(text.replace(*edit))


@needs_bif
def test_bad_bif_file_named(tmp_path):
    path = tmp_path / "broken.bif"
    path.write_text(_asia_text().replace("(no) 0.3, 0.7;", "(no) 0.3 0.7;"))
    with pytest.raises(BIFError, match=r"broken.bif, line 43: expected ';' after the probability values, got '0.7'"):
        read_bif(path)
    with pytest.raises(BIFError, match="line 1: expected 'network'"):
        read_bif("garbage text {")
    with pytest.raises(FileNotFoundError, match="no_such.bif"):
        read_bif(tmp_path / "no_such.bif")


def test_bayesnet_input_errors():
    bn = BayesianNetwork.from_adjacency(graph_family("chain3"), 2, rng=0, names=["A", "B", "C"])
    with pytest.raises(ValueError, match=r"no node named 'D'; the nodes are: A, B, C"):
        bn.intervene("D")
    with pytest.raises(ValueError, match=r"no node 7"):
        bn.intervene(7)
    with pytest.raises(ValueError, match=r"node 'B' \(column 1\) has 2 categories .* holds 5"):
        bn.log_prob(np.array([[0, 1, 0], [1, 5, 0]]))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        bn.log_prob(np.zeros((2, 4), dtype=np.int64))
    bad = [c.copy() for c in bn.cpts]
    bad[1][1] = [0.7, 0.7]
    with pytest.raises(ValueError, match=r"node 'B' does not sum to 1 .*\(A=1\)"):
        BayesianNetwork(bn.adjacency, bad, names=bn.names)
    cyclic = edges_to_adjacency([(0, 1), (1, 2), (2, 0)], 3)
    with pytest.raises(ValueError, match=r"cycle: A -> B -> C -> A"):
        BayesianNetwork(cyclic, bn.cpts, names=["A", "B", "C"])


# --------------------------------------------------------------------------- Sachs data
@needs_sachs
def test_sachs_loader():
    from flowgrad.datasets import load_sachs
    from flowgrad.datasets.sachs import CONDITIONS, discretize

    d = load_sachs()
    assert d.data.shape == (7466, 11) and d.observational.shape == (853, 11)
    assert [c.size for c in CONDITIONS] == [853, 902, 911, 723, 810, 799, 848, 913, 707]
    assert [c.start for c in CONDITIONS][1:] == [c.stop for c in CONDITIONS][:-1]
    assert np.bincount(d.condition)[1:].tolist() == [c.size for c in CONDITIONS]
    assert d.consensus.sum() == 17 and d.cdt_adjacency.sum() == 18
    check_dag(d.consensus, d.names)
    assert [c.targets for c in CONDITIONS[:2]] == [(), ()]
    assert {c.effect for c in CONDITIONS[2:7]} == {"inhibition"}
    assert [c.targets for c in CONDITIONS[7:]] == [("PKC",), ("PKA",)]
    assert [t for t, _ in d.interventions()] == [d.names.index(n) for n in
                                                 ("Akt", "PKC", "PIP2", "Mek", "PIP3", "PKC",
                                                  "PKA")]
    np.testing.assert_allclose(d.data[0, :3], [26.4, 13.2, 8.82])
    x = d.discretize(bins=3)
    counts = np.stack([np.bincount(x[:853, j], minlength=3) for j in range(11)])
    assert counts.min() >= 853 // 3 - 15 and x.max() == 2
    np.testing.assert_array_equal(discretize(d.observational, 3, d.observational), x[:853])


@needs_sachs
@needs_bif
def test_sachs_consensus_is_the_bif_network():
    from flowgrad.datasets import load_sachs

    d, bn = load_sachs(), load_bif("sachs")
    assert set(bn.names) == set(d.names)
    arcs = {(bn.names[i], bn.names[j]) for i, j in bn.edges}
    assert arcs == {(d.names[i], d.names[j]) for i, j in adjacency_to_edges(d.consensus)}

"""SDI (Ke et al. 2019, arXiv 1910.01075) and its categorical-MLP ground truth: the gamma
estimator against a hand-computed expectation, the regularisers against autograd (flowgrad and
torch), the SCM's sampling against its own log-probabilities, interventions, and a short run."""

import itertools

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.causal import CategoricalSCM, SDIConfig, fit_sdi, graph_family
from flowgrad.causal.scm import InterventionalData, make_interventional_data
from flowgrad.causal.sdi import SDILearner, gamma_gradient, gamma_regularizer, score_intervention

torch = pytest.importorskip("torch")


# --- the estimator -------------------------------------------------------------------------
def test_estimator_two_nodes_matches_hand_computed_expectation():
    # child 1 with one candidate parent 0: configurations c in {0, 1}; child 1's likelihood
    # under each configuration is fixed by hand; K = 2 batches, one configuration each.
    sigma, log_l = 0.3, {0: -2.0, 1: -1.0}
    l0, l1 = np.exp(log_l[0]), np.exp(log_l[1])
    # by hand: (0,0) -> sigma; (1,1) -> sigma - 1; mixed -> sigma - L1 / (L0 + L1)
    expected = ((1 - sigma) ** 2 * sigma + sigma ** 2 * (sigma - 1)
                + 2 * sigma * (1 - sigma) * (sigma - l1 / (l0 + l1)))

    def estimate(cs):
        scores = np.zeros((len(cs), 2, 2))
        scores[:, 1, 0] = [sigma - c for c in cs]
        lls = np.zeros((len(cs), 2))
        lls[:, 1] = [log_l[c] for c in cs]
        return gamma_gradient(scores, lls)[1, 0]

    enumerated = sum(sigma ** sum(cs) * (1 - sigma) ** (2 - sum(cs)) * estimate(cs)
                     for cs in itertools.product((0, 1), repeat=2))
    assert enumerated == pytest.approx(expected, abs=1e-12)
    # the estimator averaged over configurations sampled as SDI samples them
    rng = np.random.default_rng(0)
    draws = (rng.random((40000, 2)) < sigma).astype(int)
    values = np.array([estimate(tuple(d)) for d in draws[:4000]])
    assert abs(values.mean() - expected) < 4 * values.std() / np.sqrt(len(values))
    # many batches: the estimator tends to sigma minus the posterior of the edge
    many = estimate(tuple(draws[:, 0]))
    posterior = sigma * l1 / (sigma * l1 + (1 - sigma) * l0)
    assert many == pytest.approx(sigma - posterior, abs=0.02)


def test_estimator_blocks_the_target_and_never_scores_the_diagonal():
    rng = np.random.default_rng(1)
    learner = SDILearner([2, 2, 2], rng=rng)
    data = rng.integers(0, 2, (300, 3))
    cfg = SDIConfig(batches_per_intervention=4, configs_per_batch=5, batch_size=32)
    grad = score_intervention(learner, data, 2, cfg, rng)
    assert np.all(np.diag(grad) == 0)
    # the blocked child's row gets uniform weights: mean over batches of sum_c (sigma - c)
    assert np.isfinite(grad).all()


def _regularizer_torch(gamma, lsparse, ldag):
    g = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    s = g.sigmoid()
    m = len(gamma)
    loss = s.sum() * lsparse + ((s * s.t()).cosh().tril(-1).sum() - (m * m - m)) * ldag
    loss.backward()
    return loss.item(), g.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dag_regularizer_matches_torch_and_analytic(dtype):
    rng = np.random.default_rng(2)
    gamma = rng.uniform(-3, 3, (4, 4))
    np.fill_diagonal(gamma, -np.inf)
    g = fg.from_numpy(gamma.astype(dtype)).requires_grad_()
    loss = gamma_regularizer(g, lsparse=0.1, ldag=0.5)
    loss.backward()
    ref_loss, ref_grad = _regularizer_torch(gamma, 0.1, 0.5)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert loss.item() == pytest.approx(ref_loss, rel=tol, abs=tol)
    np.testing.assert_allclose(g.grad.numpy(), ref_grad, rtol=tol * 10, atol=tol)
    # analytic d L_dag / d gamma_ij = ldag sinh(s_ij s_ji) s_ji s_ij (1 - s_ij)
    g2 = fg.from_numpy(gamma).requires_grad_()
    gamma_regularizer(g2, lsparse=0.0, ldag=0.5).backward()
    s = 1 / (1 + np.exp(-gamma))
    analytic = 0.5 * np.sinh(s * s.T) * s.T * s * (1 - s)
    np.testing.assert_allclose(g2.grad.numpy(), analytic, atol=1e-12)


def test_dag_gradient_zero_when_no_two_cycle():
    gamma = np.array([[-np.inf, 2.0, 0.3], [-np.inf, -np.inf, 1.0], [-1.0, -np.inf, -np.inf]])
    g = fg.from_numpy(gamma).requires_grad_()
    gamma_regularizer(g, lsparse=0.0, ldag=0.5).backward()
    grad = g.grad.numpy()
    # pairs (0,1) and (1,2) have sigma_ij sigma_ji = 0: no two-cycle pressure
    assert grad[0, 1] == 0 and grad[1, 0] == 0 and grad[1, 2] == 0 and grad[2, 1] == 0
    assert grad[0, 2] > 0 and grad[2, 0] > 0  # the pair (0, 2) does form a soft two-cycle


def test_gamma_diagonal_is_never_an_edge():
    rng = np.random.default_rng(3)
    learner = SDILearner([2, 2, 2], rng=rng)
    g = learner.gamma.detach().numpy().copy()
    np.fill_diagonal(g, 50.0)
    learner.gamma.data = fg.from_numpy(g)
    learner.reconstrain()
    assert np.all(np.isneginf(np.diag(learner.gamma.detach().numpy())))
    assert np.abs(learner.gamma.detach().numpy()[~np.eye(3, dtype=bool)]).max() <= 5.0
    configs = learner.sample_configs(500, rng)
    assert configs[:, np.arange(3), np.arange(3)].sum() == 0
    assert np.all(np.diag(learner.edge_probs()) == 0)


def test_batched_scoring_matches_the_differentiable_forward_and_torch():
    rng = np.random.default_rng(4)
    learner = SDILearner([2, 3, 2], rng=rng)
    x = np.stack([rng.integers(0, n, 9) for n in (2, 3, 2)], axis=1)
    configs = learner.sample_configs(5, rng)
    batched = learner.config_log_prob(x, configs)
    single = np.stack([learner.node_log_prob(x, c).detach().numpy().T for c in configs])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    # stacked batches that repeat a few rows (scored once each): the same values per sample
    pool = np.stack([rng.integers(0, n, 4) for n in (2, 3, 2)], axis=1)
    stack = pool[rng.integers(0, 4, (3, 40))]                                  # (T, B, M)
    stack[1, :7] = x[:7]  # batches with different numbers of distinct rows
    stacked_configs = learner.sample_configs(3 * 5, rng).reshape(3, 5, 3, 3)
    scored = learner.config_log_prob(stack, stacked_configs)
    assert scored.shape == (3, 5, 40, 3)
    for t in range(3):
        expect = np.stack([learner.node_log_prob(stack[t], c).detach().numpy().T
                           for c in stacked_configs[t]])
        np.testing.assert_allclose(scored[t], expect, atol=1e-5)
    np.testing.assert_allclose(learner.batch_mean_log_prob(stack, stacked_configs),
                               scored.mean(axis=2), atol=1e-5)
    # the Phase-1 loss and its gradients against the same computation in torch
    c = configs[0]
    loss = -learner.node_log_prob(x, c).mean()
    loss.backward()
    w = [torch.tensor(p.detach().numpy(), requires_grad=True)
         for p in learner.parameters()]
    inp = torch.tensor(learner.masked_inputs(x, c))
    h = torch.nn.functional.leaky_relu(inp @ w[0] + w[1], 0.1)
    logits = h @ w[2] + w[3] + torch.tensor(learner.category_mask)
    lp = logits.log_softmax(-1).gather(-1, torch.tensor(x.T[:, :, None])).squeeze(-1)
    ref = -lp.mean()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    for p, t in zip(learner.parameters(), w):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-6)


# --- the ground truth ------------------------------------------------------------------------
def test_scm_sampling_frequencies_match_log_prob():
    scm = CategoricalSCM(graph_family("chain3"), 2, seed=5)
    grid = np.array(list(itertools.product((0, 1), repeat=3)))
    p = np.exp(scm.log_prob(grid))
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    x = scm.sample(100_000, np.random.default_rng(6))
    codes = x @ np.array([4, 2, 1])
    freq = np.bincount(codes, minlength=8) / len(x)
    assert np.abs(freq - p).max() < 0.01
    # the tables are rows of distributions and the hidden width is 4 max(M, N)
    assert scm.hidden == 12
    assert np.allclose(scm.conditional_table(2).sum(-1), 1.0)


def test_intervention_changes_only_the_target_conditional():
    scm = CategoricalSCM(graph_family("collider3"), 3, seed=7)
    shifted = scm.intervene(1, np.random.default_rng(8))
    for k in range(3):
        same = np.allclose(scm.conditional_table(k), shifted.conditional_table(k))
        assert same == (k != 1), k
    assert shifted.adjacency.tolist() == scm.adjacency.tolist()
    with pytest.raises(ValueError, match="no node 7"):
        scm.intervene(7)
    with pytest.raises(ValueError, match="node X2"):
        scm.log_prob(np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match="cycle|X0|X1"):
        CategoricalSCM(np.array([[0, 1], [1, 0]]), 2)


def test_datasets_known_and_unknown_targets():
    scm = CategoricalSCM(graph_family("fork3"), 2, seed=9)
    known = make_interventional_data(scm, 100, 4, 50, seed=0)
    unknown = make_interventional_data(scm, 100, 4, 50, seed=0, known_targets=False)
    assert isinstance(known, InterventionalData) and known.known_targets
    assert not unknown.known_targets and unknown.true_targets == known.true_targets
    assert known.observational.shape == (100, 3)
    assert all(s.shape == (50, 3) for _, s in unknown.interventions)
    bad = InterventionalData(known.observational + 2, known.interventions)
    with pytest.raises(ValueError, match="value [23] of variable 0 exceeds"):
        fit_sdi(bad, 2, SDIConfig(epochs=1), progress=False)


# --- a short run ---------------------------------------------------------------------------
def test_sdi_learns_fork3():
    truth = graph_family("fork3")
    cfg = SDIConfig(epochs=3, functional_batches=100, interventions_per_distribution=100,
                    predict=5, batch_size=128, gamma_lr=0.05, seed=1)
    res = fit_sdi(CategoricalSCM(truth, 2, seed=11), 2, cfg, progress=False)
    shd = res.history[-1]["shd"]
    beliefs = res.edge_probs[truth == 1]
    assert shd == 0 or beliefs.min() > 0.6, (shd, res.edge_probs)
    assert res.intervention_accuracy > 0.5
    assert np.all(np.diag(res.edge_probs) == 0)
    assert [h["epoch"] for h in res.history] == [1, 2, 3] or res.converged_epoch


def test_sdi_runs_on_fixed_datasets_with_unknown_targets():
    scm = CategoricalSCM(graph_family("collider3"), 2, seed=12)
    data = make_interventional_data(scm, 2000, 6, 200, seed=1, known_targets=False)
    cfg = SDIConfig(epochs=1, functional_batches=20, interventions_per_distribution=12,
                    predict=3, batch_size=64, seed=0)
    res = fit_sdi(data, 2, cfg, progress=False)
    assert res.edge_probs.shape == (3, 3) and res.truth is None
    assert 0.0 <= res.intervention_accuracy <= 1.0
    assert res.history[0]["shd"] == res.history[0]["shd"]  # the truth is known: SHD recorded
    assert res.adjacency.dtype == np.int64


def test_recipe_empty_graph_reference_counts_the_true_edges():
    from flowgrad.recipes.sdi import true_edge_count

    assert [true_edge_count(g) for g in ("asia", "sachs", "collider8", "chain13", "jungle13",
                                         "collider13", "full13")] == [8, 17, 7, 12, 22, 12, 78]


def test_recipe_summary_gathers_cells_of_several_budgets(tmp_path):
    import json

    from flowgrad.recipes.sdi import run

    cells = tmp_path / "sdi_cells"
    cells.mkdir()
    for graph, nodes, epochs in (("asia", 8, 100), ("sachs", 11, 20)):
        budget = {"epochs": epochs, "functional_batches": 10 * epochs, "seed": 1}
        cell = {"graph": graph, "method": "sdi", "seed": 1, "shd": 3, "seconds": 5.0,
                "seconds_per_epoch": 0.05, "edge_probs": np.full((nodes, nodes), 0.2).tolist(),
                "true_adjacency": np.eye(nodes, k=1, dtype=int).tolist(), "budget": budget,
                "setup": {"epochs": epochs}}
        (cells / f"{graph}_sdi_seed1.json").write_text(json.dumps(cell))
    args = {"table": "1", "large_graphs": "asia,sachs", "methods": "sdi", "seeds": "1",
            "out": tmp_path, "progress": False}
    summary = run(train=False, **args)
    assert summary["table1"]["asia/sdi"]["worst"] == 3
    text = (tmp_path / "sdi.md").read_text()
    assert "SDI budget of asia: epochs=100, functional_batches=1000;" in text
    assert "SDI budget of sachs: epochs=20, functional_batches=200;" in text
    assert "Machine: each cell on the machine of the run that wrote it" in text
    with pytest.raises(ValueError, match="other settings"):  # training checks each cell found
        run(train=True, **args)

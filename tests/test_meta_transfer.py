"""The meta-transfer objective (Bengio et al. 2019, arXiv 1901.10912): the regret's gradient in
closed form against autograd (and PyTorch), Bayes inversion, ground-truth setting, adaptation,
the structural parameter's direction on A -> B and B -> A data, the official notebook's
protocol replayed in PyTorch, the regret over DAGs of three variables, and bad input."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.causal import meta_transfer as mt
from flowgrad.errors import DTypeError, ShapeError

CHAIN3 = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def _grad(loss_fn, gamma0):
    gamma = fg.tensor(gamma0, dtype=fg.float64, requires_grad=True)
    loss = loss_fn(gamma)
    loss.backward()
    return loss.item(), gamma.grad.numpy()


# --- the regret and its closed-form gradient ------------------------------------------------

@pytest.mark.parametrize("online", ["product", "per_step"])
def test_analytic_gradient_matches_autograd_and_torch(online):
    rng = np.random.default_rng(0)
    for gamma0, scale in [(0.0, 1.0), (1.3, 5.0), (-2.0, 30.0), (4.0, 200.0)]:
        ll_ab = -rng.uniform(5, 40, size=3) * scale / 10
        ll_ba = ll_ab + rng.normal(0, scale, size=3)
        value, grad = _grad(lambda g: mt.meta_loss(g, ll_ab, ll_ba, online), gamma0)
        closed = mt.regret_gradient(gamma0, ll_ab, ll_ba, online)
        assert abs(float(grad) - closed) < 1e-6

        t = torch.tensor(gamma0, dtype=torch.float64, requires_grad=True)
        a, b = torch.from_numpy(ll_ab), torch.from_numpy(ll_ba)
        if online == "product":
            a, b = a.sum(0, keepdim=True), b.sum(0, keepdim=True)
        ref = -torch.logsumexp(torch.stack([torch.nn.functional.logsigmoid(t) + a,
                                            torch.nn.functional.logsigmoid(-t) + b]), 0).sum()
        ref.backward()
        assert value == pytest.approx(ref.item(), abs=1e-9)
        assert float(grad) == pytest.approx(t.grad.item(), abs=1e-9)


def test_gradient_is_prior_minus_posterior():
    gamma0, ll_ab, ll_ba = 0.7, np.array([-20.0, -18.0]), np.array([-21.0, -19.5])
    post = 1 / (1 + np.exp(-(gamma0 + ll_ab.sum() - ll_ba.sum())))
    assert mt.regret_gradient(gamma0, ll_ab, ll_ba) == pytest.approx(
        1 / (1 + np.exp(-gamma0)) - post, abs=1e-12)
    # equal first-step likelihoods (both models at the ground truth): the two forms coincide
    first = np.array([-23.0, -23.0])
    a, b = np.array([first[0], -19.0]), np.array([first[1], -20.5])
    assert mt.regret_gradient(gamma0, a, b, "per_step") == pytest.approx(
        mt.regret_gradient(gamma0, a, b, "product"), abs=1e-12)


@pytest.mark.parametrize("parametrization", ["graph", "edge"])
def test_graph_regret_gradient_matches_autograd(parametrization):
    model = mt.GraphStructuralModel(3, 2, parametrization)
    rng = np.random.default_rng(1)
    model.gamma.data[...] = rng.normal(0, 1, size=model.gamma.shape)
    ll = -rng.uniform(10, 14, size=(2, len(model.candidates)))
    loss = model.meta_loss(ll)
    loss.backward()
    grad = model.gamma.grad.numpy()
    if parametrization == "edge":
        assert np.all(np.diag(grad) == 0)
    np.testing.assert_allclose(grad, model.analytic_gradient(ll), atol=1e-6)
    # the prior is normalised over the 25 DAGs and its edge marginals are sums over them
    prior = model.prior()
    assert prior.sum() == pytest.approx(1.0, abs=1e-12) and len(prior) == 25
    brute = sum(p * g for p, g in zip(prior, model.candidates))
    np.testing.assert_allclose(model.edge_beliefs(), brute, atol=1e-12)


def test_all_dags_counts():
    assert [len(mt.all_dags(m)) for m in (1, 2, 3, 4)] == [1, 3, 25, 543]
    assert mt.all_dags(3)[0].sum() == 0
    with pytest.raises(ValueError, match="5 nodes"):
        mt.all_dags(5)


# --- models: ground truth, Bayes inversion, adaptation -----------------------------------------

def test_ground_truth_setting_and_bayes_inversion():
    rng = np.random.default_rng(2)
    truth = mt.BivariateCategorical.random(6, rng)
    model = mt.BivariateStructuralModel(6)
    model.set_ground_truth(truth.pi_cause, truth.pi_effect_given_cause)
    np.testing.assert_allclose(model.model_a_to_b.marginal.probs(), truth.pi_cause, atol=1e-12)
    np.testing.assert_allclose(model.model_a_to_b.conditional.probs(),
                               truth.pi_effect_given_cause, atol=1e-12)
    joint = truth.joint()
    np.testing.assert_allclose(model.model_b_to_a.marginal.probs(), joint.sum(0), atol=1e-12)
    np.testing.assert_allclose(model.model_b_to_a.joint(), model.model_a_to_b.joint(),
                               atol=1e-12)
    np.testing.assert_allclose(model.model_b_to_a.joint(), joint, atol=1e-12)
    x = truth.sample(50, rng)
    expected = np.log(joint[x[:, 0], x[:, 1]])
    for m in model.models():
        np.testing.assert_allclose(m(x).detach().numpy(), expected, atol=1e-12)


def test_sampling_follows_the_joint_and_the_mirror():
    rng = np.random.default_rng(3)
    for cause in ("A", "B"):
        truth = mt.BivariateCategorical.random(4, rng, cause=cause)
        x = truth.sample(200_000, rng)
        counts = np.zeros((4, 4))
        np.add.at(counts, (x[:, 0], x[:, 1]), 1)
        np.testing.assert_allclose(counts / len(x), truth.joint(), atol=4e-3)
        new = truth.intervene(cause, rng)  # a new marginal of the cause, same mechanism
        np.testing.assert_array_equal(new.pi_effect_given_cause, truth.pi_effect_given_cause)
        assert not np.allclose(new.pi_cause, truth.pi_cause)


def test_adaptation_increases_the_transfer_likelihood_faster_for_the_causal_model():
    curves = mt.adaptation_curves(num_categories=10, num_training=2, num_transfers=3, steps=20,
                                  batch_size=100, lr=1.0, num_test=2000, seed=0)
    assert curves.shape == (2, 6, 21)
    np.testing.assert_allclose(curves[0, :, 0], curves[1, :, 0], atol=1e-9)  # same joint
    assert np.all(curves[:, :, 20] > curves[:, :, 0])
    assert np.all(curves[0, :, 20] > curves[1, :, 20])


def test_adapt_scores_before_each_step():
    rng = np.random.default_rng(4)
    truth = mt.BivariateCategorical.random(5, rng)
    model = mt.BivariateModel(5, "A->B")
    model.set_joint(truth.joint())
    batches = [truth.sample(10, rng) for _ in range(3)]
    ll = mt.adapt([model], batches, lr=0.1)
    assert ll[0, 0] == pytest.approx(np.log(truth.joint()[batches[0][:, 0],
                                                          batches[0][:, 1]]).sum(), abs=1e-9)
    assert ll.shape == (3, 1)


# --- the structural parameter --------------------------------------------------------------

def test_gamma_moves_towards_the_causal_direction_and_away_in_the_mirror():
    a = mt.meta_learn_bivariate(num_categories=10, episodes=40, seed=0)
    b = mt.meta_learn_bivariate(num_categories=10, episodes=40, cause="B", seed=7)
    assert a.beliefs[-1] > 0.6 and b.beliefs[-1] < 0.4
    np.testing.assert_allclose(a.gradients, a.analytic_gradients, atol=1e-6)
    # same seed, mirrored data: the exact mirror image
    m = mt.meta_learn_bivariate(num_categories=10, episodes=40, cause="B", seed=0)
    np.testing.assert_allclose(a.beliefs + m.beliefs, 1.0, atol=1e-9)


def test_meta_learning_replays_the_notebook_protocol_in_torch():
    """The notebook bivariate-categorical/03 protocol written in PyTorch on the same samples:
    sigma(gamma) after every episode agrees."""
    n, episodes, steps, batch, seed = 5, 6, 2, 10, 11
    ours = mt.meta_learn_bivariate(n, episodes, steps, batch, lr=0.1, meta_lr=1e-2, seed=seed,
                                   online="per_step")
    rng = np.random.default_rng(seed)  # the same draws, in the same order
    truth = mt.BivariateCategorical.random(n, rng)
    joint = torch.from_numpy(truth.joint())
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    meta = torch.optim.RMSprop([w], lr=1e-2)
    beliefs = []
    for _ in range(episodes):
        p_a = joint.sum(1).log().requires_grad_()
        p_b_a = (joint / joint.sum(1, keepdim=True)).log().requires_grad_()
        p_b = joint.sum(0).log().requires_grad_()
        p_a_b = (joint.T / joint.sum(0)[:, None]).log().requires_grad_()
        inner = torch.optim.SGD([p_a, p_b_a, p_b, p_a_b], lr=0.1)
        transfer = truth.intervene("A", rng)
        loss = torch.zeros((), dtype=torch.float64)
        for x in [torch.from_numpy(transfer.sample(batch, rng)) for _ in range(steps)]:
            a, b = x[:, 0], x[:, 1]
            l_ab = p_a.log_softmax(0)[a] + p_b_a.log_softmax(1)[a, b]
            l_ba = p_b.log_softmax(0)[b] + p_a_b.log_softmax(1)[b, a]
            loss = loss - torch.logsumexp(torch.stack([
                torch.nn.functional.logsigmoid(w) + l_ab.sum().detach(),
                torch.nn.functional.logsigmoid(-w) + l_ba.sum().detach()]), 0)
            inner.zero_grad()
            (-l_ab.mean() - l_ba.mean()).backward()
            inner.step()
        meta.zero_grad()
        loss.backward()
        meta.step()
        beliefs.append(torch.sigmoid(w).item())
    np.testing.assert_allclose(ours.beliefs, beliefs, atol=1e-10)


# --- more than two variables ----------------------------------------------------------------

def test_graph_models_at_the_ground_truth():
    rng = np.random.default_rng(5)
    truth = mt.CategoricalNetwork.random(CHAIN3, 3, rng)
    joint = truth.joint()
    assert joint.shape == (3, 3, 3) and joint.sum() == pytest.approx(1.0)
    x = truth.sample(400, rng)
    expected = np.log(joint[x[:, 0], x[:, 1], x[:, 2]])
    equivalent = [CHAIN3, CHAIN3.T, np.array([[0, 0, 0], [1, 0, 1], [0, 0, 0]]),  # fork at 1
                  np.triu(np.ones((3, 3), int), 1)]  # the full DAG is an I-map too
    for adj in equivalent:
        g = mt.GraphModel(adj, 3)
        g.set_joint(joint)
        np.testing.assert_allclose(g(x).detach().numpy(), expected, atol=1e-10)
    collider = mt.GraphModel(np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]]), 3)
    collider.set_joint(joint)  # wrong independences: a worse fit of the same samples
    assert collider(x).detach().numpy().sum() < expected.sum()
    big = truth.sample(100_000, rng)
    counts = np.zeros((3, 3, 3))
    np.add.at(counts, tuple(big.T), 1)
    np.testing.assert_allclose(counts / len(big), joint, atol=5e-3)


def test_shared_mechanisms_equal_separate_candidate_models():
    rng = np.random.default_rng(6)
    truth = mt.CategoricalNetwork.random(CHAIN3, 3, rng)
    structural = mt.GraphStructuralModel(3, 3, "graph")
    structural.set_joint(truth.joint())
    transfer = truth.intervene(1, rng)
    batches = [transfer.sample(20, rng) for _ in range(3)]
    shared = structural.candidate_log_likelihoods(mt.adapt(structural.models(), batches, 0.5))
    for k in (0, 7, 24):
        alone = mt.GraphModel(structural.candidates[k], 3)
        alone.set_joint(truth.joint())
        np.testing.assert_allclose(mt.adapt([alone], batches, 0.5)[:, 0], shared[:, k],
                                   atol=1e-9)


def test_graph_regret_with_known_targets_orients_the_chain():
    r = mt.meta_learn_graph(CHAIN3, num_categories=5, episodes=40, score="non_targets",
                            seed=0)
    edges = r.edge_beliefs[-1]
    assert edges[0, 1] > edges[1, 0] + 0.2 and edges[1, 2] > edges[2, 1] + 0.2
    assert r.true_graph_belief[-1] > r.true_graph_belief[0]


# --- bad input --------------------------------------------------------------------------------

def test_bad_input_gives_clear_errors():
    rng = np.random.default_rng(7)
    truth = mt.BivariateCategorical.random(4, rng)
    with pytest.raises(ValueError, match="no node named 'C'"):
        truth.intervene("C", rng)
    with pytest.raises(ValueError, match="no node 2"):
        truth.intervene(2, rng)
    network = mt.CategoricalNetwork.random(CHAIN3, 3, rng)
    with pytest.raises(ValueError, match="no node 5"):
        network.intervene(5, rng)
    with pytest.raises(ValueError, match="no node 3"):
        mt.meta_learn_graph(CHAIN3, 3, episodes=1, intervention=3)
    model = mt.BivariateModel(4)
    with pytest.raises(ValueError, match=r"category value 4 of variable B \(row 1\)"):
        model(np.array([[0, 1], [2, 4]]))
    with pytest.raises(ValueError, match="category value -1 of variable A"):
        model(np.array([[-1, 1]]))
    with pytest.raises(ValueError, match="category value 7 of variable 2"):
        mt.GraphModel(CHAIN3, 3)(np.array([[0, 1, 7]]))
    with pytest.raises(ShapeError, match=r"expected \(n, 2\)"):
        model(np.zeros((3, 3), np.int64))
    with pytest.raises(DTypeError, match="integer"):
        model(np.zeros((3, 2)))
    with pytest.raises(ShapeError, match="one per adaptation step"):
        mt.meta_loss(fg.tensor(0.0, dtype=fg.float64), [-1.0, -2.0], [-1.0])
    with pytest.raises(ValueError, match="online="):
        mt.regret_gradient(0.0, [-1.0], [-1.0], "sum")
    with pytest.raises(ValueError, match="cycle"):
        mt.GraphModel(np.array([[0, 1], [1, 0]]), 3)
    with pytest.raises(ValueError, match="rows summing to 1"):
        mt.BivariateCategorical(np.array([0.5, 0.6]), np.eye(2))

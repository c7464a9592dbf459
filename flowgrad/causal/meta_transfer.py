"""The meta-transfer objective (Bengio, Deleu, Rahaman, Ke, Lachapelle, Bilaniuk, Goyal & Pal,
"A Meta-Transfer Objective for Learning to Disentangle Causal Mechanisms", arXiv 1901.10912,
ICLR 2020; the lecture's slide on learning causal structure from the speed of adaptation).

Two categorical variables A and B with N categories each. Two hypotheses factorise the same
joint distribution: A -> B as p(A) p(B | A) and B -> A as p(B) p(A | B), each module a table
of logits (``Marginal``, ``Conditional``). Both are set exactly to the training distribution
(the B -> A side by Bayes inversion); an intervention on the cause then replaces its marginal.
The model whose factorisation matches the causal direction needs to relearn only that marginal,
so it adapts faster: its online likelihood of the transfer data (each batch scored before the
SGD step that learns from it) is higher. The structural parameter gamma, a prior sigma(gamma) on
A -> B, is trained on the regret

    R = -log[sigma(gamma) prod_t P_A->B(D_t) + (1 - sigma(gamma)) prod_t P_B->A(D_t)],

whose gradient is dR/dgamma = sigma(gamma) - P(A -> B | D), the prior minus the posterior of
A -> B. The official notebooks (bivariate-categorical/02 and 03) add, per step, one such term
for each batch (``online="per_step"``); their gradient is sum_t [sigma(gamma) - P(A -> B | D_t)].

More than two variables (``GraphStructuralModel``): the same regret over the candidate DAGs G of
M <= 4 variables, -log sum_G P_gamma(G) prod_t P_G(D_t), with every candidate's modules set to
the exact conditionals of the training distribution. Two priors: one logit per candidate graph
(``parametrization="graph"``, P = softmax(gamma), gradient softmax(gamma) - P(G | D)), or one
logit per directed edge (``"edge"``, P(G) proportional to prod_ij sigma(gamma_ij)^G_ij
(1 - sigma(gamma_ij))^(1 - G_ij) over the DAGs, gradient E_prior[G_ij] - P(G_ij = 1 | D), which
would be sigma(gamma_ij) - P(i -> j | D) if no graph were excluded). The sums over graphs are
exact (every DAG enumerated), not sampled. The paper runs no experiment with more than two
variables; this extension is small on purpose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import flowgrad as fg
from flowgrad import nn
from flowgrad.errors import DTypeError, ShapeError
from flowgrad.nn import functional as F

from .graphs import check_dag, parents, topological_order

__all__ = ["Marginal", "Conditional", "BivariateModel", "BivariateStructuralModel",
           "BivariateCategorical", "CategoricalNetwork", "Mechanism", "GraphModel",
           "GraphStructuralModel",
           "all_dags", "meta_loss", "regret_gradient", "posterior_a_to_b", "adapt",
           "adaptation_curves", "meta_learn_bivariate", "meta_learn_graph", "MetaLearningRun",
           "GraphLearningRun", "check_categorical_data"]

DIRECTIONS = ("A->B", "B->A")
NODES = ("A", "B")
ONLINE = ("product", "per_step")
MAX_ENUMERATED_NODES = 4  # 543 DAGs on 4 nodes; 29,281 on 5
_TINY = 1e-300  # log(0) would make logits -inf: a probability of 0 becomes log(1e-300)


# --- data checks and sampling -------------------------------------------------------------------

def check_categorical_data(x, num_categories: int, num_variables: int, names=None,
                           what: str = "meta-transfer") -> np.ndarray:
    """``x`` as an (n, num_variables) int64 array; a clear error naming the offending value,
    its row and its variable when a category is outside 0..num_categories-1."""
    if isinstance(x, fg.Tensor):
        x = x.numpy()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != num_variables:
        raise ShapeError(f"{what}: data of shape {tuple(x.shape)}; expected (n, {num_variables})"
                         f": one column per variable")
    if x.dtype.kind not in "iub":
        raise DTypeError(f"{what}: data of dtype {x.dtype}; expected integer category indices")
    bad = (x < 0) | (x >= num_categories)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        name = names[col] if names is not None else str(col)
        raise ValueError(f"{what}: category value {int(x[row, col])} of variable {name} (row "
                         f"{row}) is outside 0..{num_categories - 1}: the model has "
                         f"num_categories={num_categories}")
    return x.astype(np.int64, copy=False)


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of ``probs`` (n, N), by inverting the cumulative distribution."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), probs.shape[1] - 1).astype(np.int64)


def _dirichlet(rng: np.random.Generator, num_categories: int, rows: int | None = None):
    """Dirichlet(1_N) draws: one probability vector, or ``rows`` of them."""
    alpha = np.ones(num_categories)
    return rng.dirichlet(alpha) if rows is None else rng.dirichlet(alpha, size=rows)


def _node_index(node, names, what: str) -> int:
    if isinstance(node, str):
        if node not in names:
            raise ValueError(f"{what}: no node named {node!r}; the nodes are {list(names)}")
        return names.index(node)
    if isinstance(node, (bool, np.bool_)) or not isinstance(node, (int, np.integer)):
        raise TypeError(f"{what}: node must be an index or a name, got {node!r}")
    if not 0 <= int(node) < len(names):
        raise ValueError(f"{what}: no node {int(node)}; the nodes are 0..{len(names) - 1} "
                         f"({', '.join(names)})")
    return int(node)


# --- modules: categorical tables parameterised by logits ------------------------------------------

class Marginal(nn.Module):
    """log p(x) = w[x] - logsumexp(w): a categorical distribution over ``num_categories``."""

    def __init__(self, num_categories: int, dtype=fg.float64):
        super().__init__()
        self.num_categories = int(num_categories)
        self.w = nn.Parameter(fg.zeros(self.num_categories, dtype=dtype))

    def forward(self, x) -> fg.Tensor:
        return self.w.log_softmax(0)[x]

    def set_probs(self, probs: np.ndarray) -> None:
        """Logits = log probabilities (exactly this distribution)."""
        self.w.data[...] = np.log(np.maximum(np.asarray(probs, np.float64), _TINY))

    def probs(self) -> np.ndarray:
        return self.w.detach().softmax(0).numpy()


class Conditional(nn.Module):
    """log p(x | c) = w[c, x] - logsumexp_k w[c, k]: one categorical row per condition c
    (``num_conditions`` rows, N by default; a parent configuration index for several parents)."""

    def __init__(self, num_categories: int, num_conditions: int | None = None, dtype=fg.float64):
        super().__init__()
        self.num_categories = int(num_categories)
        self.num_conditions = int(num_conditions or num_categories)
        self.w = nn.Parameter(fg.zeros(self.num_conditions, self.num_categories, dtype=dtype))

    def forward(self, x, cond) -> fg.Tensor:
        return self.w.log_softmax(1)[cond, x]

    def set_probs(self, probs: np.ndarray) -> None:
        self.w.data[...] = np.log(np.maximum(np.asarray(probs, np.float64), _TINY))

    def probs(self) -> np.ndarray:
        return self.w.detach().softmax(1).numpy()


def _log_joint_to_modules(joint: np.ndarray, cause: int):
    """Marginal of the cause axis and conditional of the other given it, from p(A, B)."""
    table = joint if cause == 0 else joint.T  # rows: the cause
    marginal = table.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = table / marginal[:, None]
    conditional[marginal <= 0] = 1.0 / table.shape[1]  # rows never seen: uniform
    return marginal, conditional


class BivariateModel(nn.Module):
    """One causal hypothesis over (A, B): ``"A->B"`` is p(A) p(B | A), ``"B->A"`` is
    p(B) p(A | B). Data are (n, 2) integer arrays, column 0 = A, column 1 = B."""

    def __init__(self, num_categories: int, direction: str = "A->B", dtype=fg.float64):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"BivariateModel: direction {direction!r}; expected one of "
                             f"{DIRECTIONS}")
        self.num_categories = int(num_categories)
        self.direction = direction
        self.cause = 0 if direction == "A->B" else 1
        self.marginal = Marginal(num_categories, dtype=dtype)
        self.conditional = Conditional(num_categories, dtype=dtype)

    def forward(self, x) -> fg.Tensor:
        """log p(a_i, b_i) under this factorisation, one value per row."""
        x = check_categorical_data(x, self.num_categories, 2, NODES,
                                   f"BivariateModel({self.direction})")
        c, e = x[:, self.cause], x[:, 1 - self.cause]
        return self.marginal(c) + self.conditional(e, c)

    def set_joint(self, joint: np.ndarray) -> None:
        """Both modules set exactly to p(A, B): the cause's marginal and the conditional of the
        other variable given it (for B -> A on data from A -> B: Bayes inversion)."""
        marginal, conditional = _log_joint_to_modules(np.asarray(joint, np.float64), self.cause)
        self.marginal.set_probs(marginal)
        self.conditional.set_probs(conditional)

    def set_ground_truth(self, pi_a: np.ndarray, pi_b_given_a: np.ndarray) -> None:
        """Set to the distribution p(A) = pi_a, p(B | A = a) = pi_b_given_a[a]."""
        self.set_joint(np.asarray(pi_a)[:, None] * np.asarray(pi_b_given_a))

    def joint(self) -> np.ndarray:
        """p(A = a, B = b) as an (N, N) array (rows: A) from the current logits."""
        table = self.marginal.probs()[:, None] * self.conditional.probs()
        return table if self.cause == 0 else table.T


# --- the regret and its gradient --------------------------------------------------------------

def _as_steps(ll) -> np.ndarray:
    return np.atleast_1d(np.asarray(ll.numpy() if isinstance(ll, fg.Tensor) else ll,
                                    dtype=np.float64))


def meta_loss(gamma: fg.Tensor, ll_a_to_b, ll_b_to_a, online: str = "product") -> fg.Tensor:
    """The regret as a function of gamma (a 0-d tensor), from the online log-likelihoods of the
    transfer batches, log P_A->B(D_t) and log P_B->A(D_t) (one value per step t; arrays, the
    modules' parameters are not differentiated). ``"product"``: -log[sigma(gamma) prod_t
    P_A->B(D_t) + (1 - sigma(gamma)) prod_t P_B->A(D_t)] (the paper); ``"per_step"``: the sum
    over t of that expression for each D_t alone (the official notebook's code)."""
    if online not in ONLINE:
        raise ValueError(f"meta_loss: online={online!r}; expected one of {ONLINE}")
    a, b = _as_steps(ll_a_to_b), _as_steps(ll_b_to_a)
    if a.shape != b.shape:
        raise ShapeError(f"meta_loss: {a.shape[0]} log-likelihoods for A->B but {b.shape[0]} "
                         f"for B->A; expected one per adaptation step for each")
    if online == "product":
        a, b = a.sum(keepdims=True), b.sum(keepdims=True)
    scores = fg.stack([F.logsigmoid(gamma) + fg.from_numpy(a),
                       F.logsigmoid(-gamma) + fg.from_numpy(b)])
    return -scores.logsumexp(0).sum()


def posterior_a_to_b(gamma: float, ll_a_to_b, ll_b_to_a) -> np.ndarray:
    """P(A -> B | D) = sigma(gamma + log P_A->B(D) - log P_B->A(D)), elementwise."""
    z = float(gamma) + _as_steps(ll_a_to_b) - _as_steps(ll_b_to_a)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def regret_gradient(gamma: float, ll_a_to_b, ll_b_to_a, online: str = "product") -> float:
    """dR/dgamma in closed form: sigma(gamma) - P(A -> B | D) (``"product"``, D all the
    transfer batches) or sum_t [sigma(gamma) - P(A -> B | D_t)] (``"per_step"``)."""
    a, b = _as_steps(ll_a_to_b), _as_steps(ll_b_to_a)
    prior = 0.5 * (1.0 + np.tanh(0.5 * float(gamma)))
    if online == "product":
        return float(prior - posterior_a_to_b(gamma, a.sum(), b.sum())[0])
    if online == "per_step":
        return float(np.sum(prior - posterior_a_to_b(gamma, a, b)))
    raise ValueError(f"regret_gradient: online={online!r}; expected one of {ONLINE}")


class BivariateStructuralModel(nn.Module):
    """Both hypotheses and the structural parameter gamma (sigma(gamma) = belief in A -> B,
    gamma = 0 at the start)."""

    def __init__(self, num_categories: int, dtype=fg.float64):
        super().__init__()
        self.num_categories = int(num_categories)
        self.model_a_to_b = BivariateModel(num_categories, "A->B", dtype=dtype)
        self.model_b_to_a = BivariateModel(num_categories, "B->A", dtype=dtype)
        self.gamma = nn.Parameter(fg.zeros((), dtype=dtype))

    def models(self) -> list:
        return [self.model_a_to_b, self.model_b_to_a]

    def module_parameters(self) -> list:
        return [p for m in self.models() for p in m.parameters()]

    def structural_parameters(self) -> list:
        return [self.gamma]

    def set_joint(self, joint: np.ndarray) -> None:
        for m in self.models():
            m.set_joint(joint)

    def set_ground_truth(self, pi_a: np.ndarray, pi_b_given_a: np.ndarray) -> None:
        for m in self.models():
            m.set_ground_truth(pi_a, pi_b_given_a)

    def forward(self, x) -> fg.Tensor:
        """The online log-likelihood of one batch: log[sigma(gamma) P_A->B(x) + (1 -
        sigma(gamma)) P_B->A(x)] (a logsumexp), differentiable in gamma and the modules."""
        a, b = self.model_a_to_b(x).sum(), self.model_b_to_a(x).sum()
        return fg.stack([F.logsigmoid(self.gamma) + a, F.logsigmoid(-self.gamma) + b]
                        ).logsumexp(0)

    def meta_loss(self, ll_a_to_b, ll_b_to_a, online: str = "product") -> fg.Tensor:
        return meta_loss(self.gamma, ll_a_to_b, ll_b_to_a, online)

    def belief(self) -> float:
        """sigma(gamma): the belief in A -> B."""
        return float(posterior_a_to_b(self.gamma.item(), 0.0, 0.0)[0])


# --- ground truth -----------------------------------------------------------------------------

class BivariateCategorical:
    """The ground truth over (A, B): the cause's marginal and the effect's conditional table.
    ``cause="A"`` is A -> B (p(A) = pi_cause, p(B | A = a) = pi_effect_given_cause[a]);
    ``cause="B"`` is the mirror B -> A. Samples are (n, 2) int64, column 0 = A, 1 = B."""

    def __init__(self, pi_cause: np.ndarray, pi_effect_given_cause: np.ndarray, cause="A"):
        self.cause = _node_index(cause, NODES, "BivariateCategorical")
        self.pi_cause = np.asarray(pi_cause, np.float64)
        self.pi_effect_given_cause = np.asarray(pi_effect_given_cause, np.float64)
        n = len(self.pi_cause)
        if self.pi_effect_given_cause.shape != (n, n):
            raise ShapeError(f"BivariateCategorical: conditional table of shape "
                             f"{self.pi_effect_given_cause.shape}; expected ({n}, {n}) for "
                             f"{n} categories")
        for name, table in (("marginal", self.pi_cause),
                            ("conditional", self.pi_effect_given_cause)):
            if (table < 0).any() or not np.allclose(table.sum(-1), 1.0, atol=1e-8):
                raise ValueError(f"BivariateCategorical: the {name} table must be "
                                 f"nonnegative with rows summing to 1")
        self.num_categories = n

    @classmethod
    def random(cls, num_categories: int, rng: np.random.Generator, cause="A"):
        """pi_cause ~ Dir(1_N) and each row of the conditional ~ Dir(1_N) (the paper's setup)."""
        return cls(_dirichlet(rng, num_categories),
                   _dirichlet(rng, num_categories, num_categories), cause)

    @property
    def direction(self) -> str:
        return DIRECTIONS[self.cause]

    def joint(self) -> np.ndarray:
        """p(A = a, B = b), an (N, N) array with rows indexed by A."""
        table = self.pi_cause[:, None] * self.pi_effect_given_cause
        return table if self.cause == 0 else table.T

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Ancestral sampling: the cause from its marginal, then the effect given it."""
        c = _sample_rows(np.broadcast_to(self.pi_cause, (n, self.num_categories)), rng)
        e = _sample_rows(self.pi_effect_given_cause[c], rng)
        out = np.empty((n, 2), np.int64)
        out[:, self.cause], out[:, 1 - self.cause] = c, e
        return out

    def intervene(self, node, rng: np.random.Generator) -> BivariateCategorical:
        """A new distribution in which ``node``'s mechanism is redrawn from Dir(1_N): on the
        cause, a new marginal (the paper's intervention); on the effect, new conditional rows."""
        j = _node_index(node, NODES, "BivariateCategorical.intervene")
        n = self.num_categories
        if j == self.cause:
            return BivariateCategorical(_dirichlet(rng, n), self.pi_effect_given_cause,
                                        self.cause)
        return BivariateCategorical(self.pi_cause, _dirichlet(rng, n, n), self.cause)


# --- adaptation ---------------------------------------------------------------------------------

def adapt(models, batches, lr: float) -> np.ndarray:
    """Online log-likelihood during adaptation: for each batch D_t, score log P_k(D_t) (summed
    over the batch) with model k's current parameters, then take one SGD step of ``lr`` on the
    mean negative log-likelihood of every model (their parameters are disjoint, so one step
    on the sum). Returns a (steps, models) array."""
    params = [p for m in models for p in m.parameters()]
    optimizer = fg.optim.SGD(params, lr=lr)
    scores = np.empty((len(batches), len(models)))
    for t, x in enumerate(batches):
        lls = [m(x) for m in models]
        scores[t] = [float(ll.sum().item()) for ll in lls]
        loss = lls[0].mean().neg()
        for ll in lls[1:]:
            loss = loss - ll.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return scores


@fg.no_grad()
def _mean_log_likelihood(model, x) -> float:
    return float(model(x).mean().item())


def adaptation_curves(num_categories: int = 10, num_training: int = 10,
                      num_transfers: int = 10, steps: int = 100, batch_size: int = 100,
                      lr: float = 1.0, num_test: int = 10_000, cause="A", seed: int = 0,
                      progress=None) -> np.ndarray:
    """The adaptation-speed experiment (official notebook bivariate-categorical/02): for each of
    ``num_training`` ground truths and ``num_transfers`` interventions on the cause, both models
    start at the training distribution, take ``steps`` SGD steps (``lr``) on fresh transfer
    batches of ``batch_size``, and are scored by the mean log-likelihood of ``num_test`` transfer
    samples after 0, 1, ..., steps steps. Returns (2, num_training * num_transfers, steps + 1):
    index 0 is A -> B, 1 is B -> A."""
    rng = np.random.default_rng(seed)
    models = [BivariateModel(num_categories, d) for d in DIRECTIONS]
    params = [p for m in models for p in m.parameters()]
    optimizer = fg.optim.SGD(params, lr=lr)
    curves = np.empty((2, num_training * num_transfers, steps + 1))
    pair = 0
    for _ in range(num_training):
        truth = BivariateCategorical.random(num_categories, rng, cause)
        for _ in range(num_transfers):
            for m in models:
                m.set_joint(truth.joint())
            transfer = truth.intervene(cause, rng)
            test = transfer.sample(num_test, rng)
            for t in range(steps + 1):
                curves[:, pair, t] = [_mean_log_likelihood(m, test) for m in models]
                if t == steps:
                    break
                x = transfer.sample(batch_size, rng)
                loss = models[0](x).mean().neg() - models[1](x).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            pair += 1
            if progress:
                progress(pair, curves[:, pair - 1])
    return curves


@dataclass
class MetaLearningRun:
    """sigma(gamma) after each episode, the gradient applied to gamma and its closed form."""
    beliefs: np.ndarray
    gradients: np.ndarray
    analytic_gradients: np.ndarray
    seconds: float
    config: dict = field(default_factory=dict)


def meta_learn_bivariate(num_categories: int = 10, episodes: int = 1000, steps: int = 2,
                         batch_size: int = 10, lr: float = 0.1, meta_lr: float = 1e-2,
                         cause="A", num_training: int = 1, online: str = "product",
                         seed: int = 0) -> MetaLearningRun:
    """Meta-learning of gamma (official notebook bivariate-categorical/03): gamma = 0; for each
    of ``num_training`` ground truths (cause -> effect, Dirichlet(1) tables) and each of
    ``episodes`` episodes: set both models to the training distribution, draw a new marginal of
    the cause, score and adapt on ``steps`` transfer batches of ``batch_size`` (SGD ``lr``),
    then one RMSprop step (``meta_lr``) on the regret. ``cause="B"`` is the mirrored control,
    where sigma(gamma) should go to 0."""
    rng = np.random.default_rng(seed)
    model = BivariateStructuralModel(num_categories)
    meta_optimizer = fg.optim.RMSprop(model.structural_parameters(), lr=meta_lr)
    total = num_training * episodes
    beliefs, grads, analytic = np.empty(total), np.empty(total), np.empty(total)
    k = 0
    start = time.perf_counter()
    for _ in range(num_training):
        truth = BivariateCategorical.random(num_categories, rng, cause)
        joint = truth.joint()
        for _ in range(episodes):
            model.set_joint(joint)
            transfer = truth.intervene(cause, rng)
            batches = [transfer.sample(batch_size, rng) for _ in range(steps)]
            ll = adapt(model.models(), batches, lr)
            analytic[k] = regret_gradient(model.gamma.item(), ll[:, 0], ll[:, 1], online)
            loss = model.meta_loss(ll[:, 0], ll[:, 1], online)
            meta_optimizer.zero_grad()
            loss.backward()
            grads[k] = model.gamma.grad.item()
            meta_optimizer.step()
            beliefs[k] = model.belief()
            k += 1
    config = {"num_categories": num_categories, "episodes": episodes, "steps": steps,
              "batch_size": batch_size, "lr": lr, "meta_lr": meta_lr,
              "cause": NODES[_node_index(cause, NODES, "meta_learn_bivariate")],
              "num_training": num_training, "online": online, "seed": seed}
    return MetaLearningRun(beliefs, grads, analytic, time.perf_counter() - start, config)


# --- more than two variables ------------------------------------------------------------------

def all_dags(num_nodes: int) -> np.ndarray:
    """Every DAG on ``num_nodes`` labelled nodes as a (K, M, M) int array (adj[i, j] = 1 for
    i -> j), the empty graph first: 1, 3, 25, 543 graphs for M = 1..4."""
    m = int(num_nodes)
    if not 1 <= m <= MAX_ENUMERATED_NODES:
        raise ValueError(f"all_dags: {m} nodes; the candidate graphs are enumerated, which is "
                         f"done for 1..{MAX_ENUMERATED_NODES} nodes (543 DAGs on 4)")
    off = [(i, j) for i in range(m) for j in range(m) if i != j]
    codes = np.arange(2 ** len(off))
    graphs = np.zeros((len(codes), m, m), np.int64)
    for bit, (i, j) in enumerate(off):
        graphs[:, i, j] = (codes >> bit) & 1
    power, cyclic = graphs.copy(), np.zeros(len(codes), bool)
    for _ in range(m):  # a cycle of length L shows on the diagonal of A^L
        cyclic |= np.trace(power, axis1=1, axis2=2) > 0
        power = np.minimum(power @ graphs, 1)
    return graphs[~cyclic]


class CategoricalNetwork:
    """The ground truth over M categorical variables on a DAG: ``cpts[j]`` has shape
    (N, ..., N, N), one axis per parent of j (in sorted order) and the last for j, each row a
    distribution. Samples are (n, M) int64 in node order."""

    def __init__(self, adj: np.ndarray, cpts: list, num_categories: int):
        self.adjacency = np.asarray(adj, np.int64)
        check_dag(self.adjacency, what="CategoricalNetwork")
        self.num_nodes = len(self.adjacency)
        self.num_categories = int(num_categories)
        self.parents = [parents(self.adjacency, j) for j in range(self.num_nodes)]
        self.cpts = [np.asarray(c, np.float64) for c in cpts]
        for j, c in enumerate(self.cpts):
            expected = (self.num_categories,) * (len(self.parents[j]) + 1)
            if c.shape != expected:
                raise ShapeError(f"CategoricalNetwork: the table of node {j} has shape "
                                 f"{c.shape}; expected {expected} (parents {self.parents[j]})")
            if (c < 0).any() or not np.allclose(c.sum(-1), 1.0, atol=1e-8):
                raise ValueError(f"CategoricalNetwork: the table of node {j} must be "
                                 f"nonnegative with rows summing to 1")
        self.order = topological_order(self.adjacency)

    @classmethod
    def random(cls, adj: np.ndarray, num_categories: int, rng: np.random.Generator):
        """Every row of every table ~ Dir(1_N)."""
        adj = np.asarray(adj, np.int64)
        n = num_categories
        cpts = [_dirichlet(rng, n, n ** int(adj[:, j].sum())).reshape(
            (n,) * int(adj[:, j].sum()) + (n,)) for j in range(len(adj))]
        return cls(adj, cpts, n)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = np.zeros((n, self.num_nodes), np.int64)
        for j in self.order:
            rows = self.cpts[j].reshape(-1, self.num_categories)
            config = _config_index(x, self.parents[j], self.num_categories)
            x[:, j] = _sample_rows(rows[config], rng)
        return x

    def joint(self) -> np.ndarray:
        """p(x_0, ..., x_{M-1}) as an array of shape (N,) * M (M <= 8)."""
        letters = "abcdefgh"[:self.num_nodes]
        terms = [(c, "".join(letters[p] for p in self.parents[j]) + letters[j])
                 for j, c in enumerate(self.cpts)]
        spec = ",".join(s for _, s in terms) + "->" + letters
        return np.einsum(spec, *[c for c, _ in terms])

    def intervene(self, node, rng: np.random.Generator) -> CategoricalNetwork:
        """``node``'s table redrawn (each row ~ Dir(1_N)); the other mechanisms kept."""
        names = [str(j) for j in range(self.num_nodes)]
        j = _node_index(node, names, "CategoricalNetwork.intervene")
        cpts = list(self.cpts)
        cpts[j] = _dirichlet(rng, self.num_categories,
                             self.num_categories ** len(self.parents[j])).reshape(cpts[j].shape)
        return CategoricalNetwork(self.adjacency, cpts, self.num_categories)


def _config_index(x: np.ndarray, parent_list, num_categories: int) -> np.ndarray:
    """The row of a conditional table for each sample: the parents' values in mixed radix
    (first parent most significant), 0 for a node without parents."""
    index = np.zeros(len(x), np.int64)
    for p in parent_list:
        index = index * num_categories + x[:, p]
    return index


class Mechanism(nn.Module):
    """One module p(x_j | x_parents) over categorical variables: a ``Marginal`` when ``parents``
    is empty, else a ``Conditional`` over the N^k parent configurations."""

    def __init__(self, node: int, parent_list, num_categories: int, dtype=fg.float64):
        super().__init__()
        self.node, self.parent_list = int(node), [int(p) for p in parent_list]
        self.num_categories = int(num_categories)
        self.table = (Conditional(num_categories, num_categories ** len(self.parent_list),
                                  dtype=dtype) if self.parent_list
                      else Marginal(num_categories, dtype=dtype))

    def forward(self, x: np.ndarray) -> fg.Tensor:
        """log p(x_j | x_parents) per row of an already checked (n, M) array."""
        if not self.parent_list:
            return self.table(x[:, self.node])
        return self.table(x[:, self.node], _config_index(x, self.parent_list,
                                                         self.num_categories))

    def set_joint(self, joint: np.ndarray) -> None:
        """The exact conditional p(x_j | x_parents) of ``joint`` (shape (N,) * M); rows of
        parent configurations of probability 0 are uniform."""
        n, keep = self.num_categories, self.parent_list + [self.node]
        drop = tuple(k for k in range(joint.ndim) if k not in keep)
        table = joint.sum(axis=drop)  # remaining axes in node order: move j last
        table = np.moveaxis(table, sorted(keep).index(self.node), -1).reshape(-1, n)
        total = table.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows = np.where(total > 0, table / total, 1.0 / n)
        self.table.set_probs(rows if self.parent_list else rows[0])


class GraphModel(nn.Module):
    """A candidate graph's factorisation p(x) = prod_j p(x_j | x_parents(j)), one
    ``Mechanism`` per node."""

    def __init__(self, adj: np.ndarray, num_categories: int, dtype=fg.float64):
        super().__init__()
        self.adjacency = check_dag(adj, what="GraphModel")
        self.num_nodes = len(self.adjacency)
        self.num_categories = int(num_categories)
        self.mechanisms = nn.ModuleList([
            Mechanism(j, parents(self.adjacency, j), num_categories, dtype=dtype)
            for j in range(self.num_nodes)])

    def forward(self, x) -> fg.Tensor:
        x = check_categorical_data(x, self.num_categories, self.num_nodes, what="GraphModel")
        total = self.mechanisms[0](x)
        for module in list(self.mechanisms)[1:]:
            total = total + module(x)
        return total

    def set_joint(self, joint: np.ndarray) -> None:
        """Every module set to the exact conditional of ``joint``: the training distribution
        itself when the graph can represent it, its best factorised approximation otherwise."""
        for module in self.mechanisms:
            module.set_joint(np.asarray(joint, np.float64))


class GraphStructuralModel(nn.Module):
    """Structural parameters over the DAGs of ``num_nodes`` variables (all of them, or the
    given ``candidates``). ``parametrization="graph"``: one logit per candidate, P(G) =
    softmax(gamma)_G; ``"edge"``: gamma[i, j] for each directed edge, P(G) proportional to
    prod_{i != j} sigma(gamma_ij)^G_ij (1 - sigma(gamma_ij))^(1 - G_ij) over the candidates
    (the diagonal of gamma is unused). gamma starts at 0.

    A mechanism p(x_j | x_S) is the same module in every candidate where node j has parents S
    (same start, same data, same gradient), so each distinct (j, S) is stored and adapted once
    (``mechanisms``) and a candidate's log-likelihood is the sum of its mechanisms'
    (``incidence`` (K, U), 1 where candidate k uses mechanism u)."""

    def __init__(self, num_nodes: int, num_categories: int, parametrization: str = "edge",
                 candidates: np.ndarray | None = None, dtype=fg.float64):
        super().__init__()
        if parametrization not in ("graph", "edge"):
            raise ValueError(f"GraphStructuralModel: parametrization={parametrization!r}; "
                             f"expected 'graph' or 'edge'")
        self.num_nodes, self.num_categories = int(num_nodes), int(num_categories)
        self.parametrization = parametrization
        self.candidates = (all_dags(num_nodes) if candidates is None
                           else np.asarray(candidates, np.int64))
        if self.candidates.ndim != 3 or self.candidates.shape[1:] != (num_nodes, num_nodes):
            raise ShapeError(f"GraphStructuralModel: candidates of shape "
                             f"{self.candidates.shape}; expected (K, {num_nodes}, {num_nodes})")
        for k, g in enumerate(self.candidates):
            check_dag(g, what=f"GraphStructuralModel candidate {k}")
        keys = {}
        for g in self.candidates:
            for j in range(num_nodes):
                keys.setdefault((j, tuple(parents(g, j))), len(keys))
        self.mechanism_keys = list(keys)
        self.mechanisms = nn.ModuleList([Mechanism(j, ps, num_categories, dtype=dtype)
                                         for j, ps in self.mechanism_keys])
        self.incidence = np.zeros((len(self.candidates), len(keys)))
        for k, g in enumerate(self.candidates):
            for j in range(num_nodes):
                self.incidence[k, keys[(j, tuple(parents(g, j)))]] = 1.0
        shape = (len(self.candidates),) if parametrization == "graph" else (num_nodes,) * 2
        self.gamma = nn.Parameter(fg.zeros(shape, dtype=dtype))
        self._off = 1.0 - np.eye(num_nodes)

    def models(self) -> list:
        """The distinct mechanisms (what ``adapt`` scores and trains)."""
        return list(self.mechanisms)

    def structural_parameters(self) -> list:
        return [self.gamma]

    def set_joint(self, joint: np.ndarray) -> None:
        for module in self.mechanisms:
            module.set_joint(np.asarray(joint, np.float64))

    def check(self, x) -> np.ndarray:
        return check_categorical_data(x, self.num_categories, self.num_nodes,
                                      what="GraphStructuralModel")

    def candidate_log_likelihoods(self, mechanism_ll) -> np.ndarray:
        """Per-candidate log-likelihoods (..., K) from per-mechanism ones (..., U)."""
        return np.asarray(mechanism_ll, np.float64) @ self.incidence.T

    def log_prior(self) -> fg.Tensor:
        """log P_gamma(G) for every candidate, a (K,) tensor."""
        if self.parametrization == "graph":
            return self.gamma.log_softmax(0)
        g = fg.from_numpy(self.candidates.astype(np.float64))
        off = fg.from_numpy(self._off)
        edge = (F.logsigmoid(self.gamma) * off).unsqueeze(0)
        no_edge = (F.logsigmoid(-self.gamma) * off).unsqueeze(0)
        scores = (g * edge + (1.0 - g) * no_edge).sum(dim=(1, 2))
        return scores.log_softmax(0)

    def meta_loss(self, ll) -> fg.Tensor:
        """-log sum_G P_gamma(G) prod_t P_G(D_t) from ``ll`` (steps, K) (or (K,)): the online
        log-likelihoods of the transfer batches under each candidate."""
        return -(self.log_prior() + fg.from_numpy(self._total(ll))).logsumexp(0)

    def _total(self, ll) -> np.ndarray:
        ll = np.asarray(ll, np.float64)
        total = ll.sum(axis=0) if ll.ndim == 2 else ll
        if total.shape != (len(self.candidates),):
            raise ShapeError(f"GraphStructuralModel: log-likelihoods of shape {ll.shape}; "
                             f"expected (steps, {len(self.candidates)}), one per candidate")
        return total

    @fg.no_grad()
    def prior(self) -> np.ndarray:
        return self.log_prior().exp().numpy()

    def posterior(self, ll) -> np.ndarray:
        """P(G | D) for every candidate."""
        z = np.log(np.maximum(self.prior(), _TINY)) + self._total(ll)
        z = np.exp(z - z.max())
        return z / z.sum()

    def edge_beliefs(self, probs: np.ndarray | None = None) -> np.ndarray:
        """P(i -> j) = sum_G P(G) G_ij under the prior (or under ``probs`` over candidates)."""
        probs = self.prior() if probs is None else probs
        return np.einsum("k,kij->ij", probs, self.candidates)

    def analytic_gradient(self, ll) -> np.ndarray:
        """dR/dgamma in closed form: softmax(gamma) - P(G | D) (per graph), or
        E_prior[G_ij] - P(G_ij = 1 | D) (per edge; 0 on the diagonal)."""
        prior, post = self.prior(), self.posterior(ll)
        if self.parametrization == "graph":
            return prior - post
        return self.edge_beliefs(prior) - self.edge_beliefs(post)


@dataclass
class GraphLearningRun:
    """Per episode: the prior probability of the true graph, the edge beliefs P(i -> j) and the
    most probable graph's structural Hamming distance to the truth."""
    true_graph_belief: np.ndarray
    edge_beliefs: np.ndarray
    map_shd: np.ndarray
    final_prior: np.ndarray
    candidates: np.ndarray
    seconds: float
    config: dict = field(default_factory=dict)


def meta_learn_graph(true_adj: np.ndarray, num_categories: int = 5, episodes: int = 300,
                     steps: int = 2, batch_size: int = 10, lr: float = 0.1,
                     meta_lr: float = 1e-2, parametrization: str = "edge",
                     intervention="random", score: str = "all", sparsity: float = 0.0,
                     seed: int = 0) -> GraphLearningRun:
    """The regret over the DAGs of M <= 4 variables, with data from a ``CategoricalNetwork``
    on ``true_adj`` (Dirichlet(1) tables): each episode sets every candidate to the training
    distribution, intervenes on one node (``"random"``: uniform over the nodes, or the node
    given), scores and adapts every candidate on ``steps`` transfer batches (SGD ``lr``), and
    takes one RMSprop step (``meta_lr``) on the regret. ``score="all"`` scores every node (the
    regret as in the two-variable case: the learner is not told the target);
    ``"non_targets"`` leaves out the intervened node's own term (the target is known, as in
    SDI's scoring phase, Ke et al. 2019). ``sparsity`` adds sparsity * E_prior[number of edges]
    to the regret (SDI's sparsity regulariser; 0 by default)."""
    if score not in ("all", "non_targets"):
        raise ValueError(f"meta_learn_graph: score={score!r}; expected 'all' or 'non_targets'")
    true_adj = check_dag(true_adj, what="meta_learn_graph")
    m = len(true_adj)
    rng = np.random.default_rng(seed)
    truth = CategoricalNetwork.random(true_adj, num_categories, rng)
    joint = truth.joint()
    model = GraphStructuralModel(m, num_categories, parametrization)
    true_index = int(np.flatnonzero((model.candidates == true_adj).all(axis=(1, 2)))[0])
    meta_optimizer = fg.optim.RMSprop(model.structural_parameters(), lr=meta_lr)
    beliefs, edges, shd = np.empty(episodes), np.empty((episodes, m, m)), np.empty(episodes)
    start = time.perf_counter()
    for e in range(episodes):
        model.set_joint(joint)
        node = int(rng.integers(m)) if intervention == "random" else intervention
        transfer = truth.intervene(node, rng)
        node = _node_index(node, [str(k) for k in range(m)], "meta_learn_graph")
        batches = [transfer.sample(batch_size, rng) for _ in range(steps)]
        ll_mechanisms = adapt(model.models(), batches, lr)
        if score == "non_targets":  # the intervened node's own term says nothing: drop it
            ll_mechanisms[:, [k for k, (j, _) in enumerate(model.mechanism_keys)
                              if j == node]] = 0.0
        loss = model.meta_loss(model.candidate_log_likelihoods(ll_mechanisms))
        if sparsity:
            sizes = fg.from_numpy(model.candidates.sum(axis=(1, 2)).astype(np.float64))
            loss = loss + sparsity * (model.log_prior().exp() * sizes).sum()
        meta_optimizer.zero_grad()
        loss.backward()
        meta_optimizer.step()
        prior = model.prior()
        beliefs[e] = prior[true_index]
        edges[e] = model.edge_beliefs(prior)
        best = model.candidates[int(np.argmax(prior))]
        shd[e] = int((best != true_adj).sum())
    config = {"num_categories": num_categories, "episodes": episodes, "steps": steps,
              "batch_size": batch_size, "lr": lr, "meta_lr": meta_lr,
              "parametrization": parametrization, "intervention": intervention,
              "score": score, "sparsity": sparsity, "seed": seed,
              "num_candidates": len(model.candidates)}
    return GraphLearningRun(beliefs, edges, shd, model.prior(), model.candidates,
                            time.perf_counter() - start, config)

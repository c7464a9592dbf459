"""SDI: structure discovery from interventions (Ke et al. 2019, "Learning Neural Causal Models
from Unknown Interventions", arXiv 1910.01075), on the flowgrad engine.

The learner has one MLP per variable (embedding rows of the parents' categories summed, LeakyReLU
0.1, N logits); which parents a variable sees is a *configuration* c ~ Bernoulli(sigma(gamma)),
applied as a mask on the input, so one batched computation serves every sampled configuration.
Training alternates, as the official code (``causal/experiment.py``):

1. Phase 1: the functional parameters are fitted by Adam on observational batches, a fresh
   configuration drawn from sigma(gamma) for each batch (mean NLL of all variables).
2. Phase 2: an intervention happens; with unknown targets the intervened variable is predicted
   as the one the learner explains worst (the largest per-variable NLL, summed over batches
   and configurations, as the official ``--predict``) and its term is blocked. Sampled
   configurations are scored on interventional batches.
3. Phase 3: the estimator
   dR/dgamma_ij = sum_k (sum_c (sigma(gamma_ij) - c_ij))_k * softmax_k(log L_i^(k)),
   k over batches, c over the configurations of a batch, L_i the likelihood of child i; plus
   lambda_sparse * sum sigma(gamma) and lambda_dag * sum_{i<j} cosh(sigma(gamma_ij)
   sigma(gamma_ji)) (two-cycles only), by Adam; gamma is clamped to [-5, 5] with a fixed -inf
   diagonal.

Training stops when every belief has saturated (below ``saturation`` or above 1 - it).

Orientation: internally ``gamma[child, parent]`` as the official code; everything returned is in
the library's convention, ``edge_probs[i, j] = P(i -> j)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import flowgrad as fg

from ..nn import functional as F
from .graphs import structural_hamming_distance
from .scm import CategoricalSCM, InterventionalData, orthogonal  # noqa: F401 (re-exported)

LEAKY_SLOPE = 0.1
GAMMA_CLAMP = 5.0


@dataclass
class SDIConfig:
    """SDI's budgets and hyperparameters; the defaults are the official README's command for
    the 3-variable graphs except the budgets (epochs, functional_batches, interventions), which
    are cut so that small graphs run in minutes on one core (the README's values are in the
    comments)."""

    epochs: int = 50                      # --num-epochs 200
    distributions_per_epoch: int = 1      # --dpe 10
    functional_batches: int = 500         # --train_functional 10000
    interventions_per_distribution: int = 100  # --ipd 100
    batches_per_intervention: int = 10    # -T/--xfer-epi-size 10
    configs_per_batch: int = 20           # -R/--cpi 20
    batch_size: int = 256                 # --bs 256
    predict: int = 100                    # --predict 100 (0: the true targets are used)
    predict_configs: int = 10             # --predict-cpb 10
    samples_per_intervention: int = 500   # --limit-samples 500
    lsparse: float = 0.1                  # --lsparse 0.1
    ldag: float = 0.5                     # --ldag 0.5
    lmaxent: float = 0.0                  # --lmaxent 0
    model_lr: float = 5e-2                # --mopt adam:5e-2,0.9
    model_betas: tuple = (0.9, 0.999)
    gamma_lr: float = 5e-3                # --gopt adam:5e-3,0.1 (lr, beta1)
    gamma_betas: tuple = (0.1, 0.999)
    temperature: float = 1.0              # --temperature 1
    hidden: int | None = None             # 4 * max(M, N)
    redraw_truth: bool = True             # alterdists() at every distribution (simulators)
    saturation: float = 0.1               # converged when every belief < 0.1 or > 0.9 ...
    converged_epochs: int = 2             # ... at the end of this many epochs in a row
    seed: int = 0

    def budget(self) -> dict:
        return asdict(self)


@dataclass
class SDIResult:
    """What ``fit_sdi`` returns: edge beliefs probs[i, j] = P(i -> j), the per-epoch history,
    the learner (functional parameters and gamma), timing, intervention-prediction accuracy
    (None when targets were given), and the ground truth of the last distribution when the data
    came from a simulator."""

    edge_probs: np.ndarray
    history: list
    seconds: float
    intervention_accuracy: float | None
    learner: SDILearner
    config: SDIConfig
    converged_epoch: int | None = None
    truth: object = None
    extra: dict = field(default_factory=dict)

    @property
    def adjacency(self) -> np.ndarray:
        """The learned graph: beliefs >= 0.5."""
        return (self.edge_probs >= 0.5).astype(np.int64)


class SDILearner:
    """Per-variable one-hidden-layer MLPs over masked parent inputs, and the structural
    parameters gamma[child, parent] (official ``CategoricalWorld``'s slow weights and gamma)."""

    def __init__(self, num_categories, hidden: int | None = None, rng=None,
                 temperature: float = 1.0):
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        cards = np.asarray(num_categories, dtype=np.int64)
        self.cardinalities = cards
        self.num_nodes = m = len(cards)
        self.max_categories = nmax = int(cards.max())
        self.total = total = int(cards.sum())
        self.offsets = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
        self.variable_of = np.repeat(np.arange(m), cards)  # input slot -> its variable
        self.hidden = h = int(hidden) if hidden is not None else 4 * max(m, nmax)
        self.temperature = float(temperature)
        w0 = np.stack([orthogonal(h, total, rng).T for _ in range(m)])        # (M, sum N, H)
        w1 = np.zeros((m, h, nmax))
        for k in range(m):
            w1[k, :, :cards[k]] = orthogonal(int(cards[k]), h, rng).T
        b0 = rng.uniform(-0.1, 0.1, (m, 1, h))
        b1 = rng.uniform(-0.1, 0.1, (m, 1, nmax))
        param = lambda a: fg.nn.Parameter(fg.from_numpy(a.astype(np.float32)))  # noqa: E731
        self.W0, self.B0, self.W1, self.B1 = param(w0), param(b0), param(w1), param(b1)
        # padded categories of a variable with fewer than max N categories never get mass
        self.category_mask = np.where(np.arange(nmax)[None, :] < cards[:, None], 0.0,
                                      -1e9).astype(np.float32)[:, None, :]      # (M, 1, Nmax)
        gamma = rng.uniform(-0.1, 0.1, (m, m))
        np.fill_diagonal(gamma, -np.inf)
        self.gamma = fg.nn.Parameter(fg.from_numpy(gamma.astype(np.float32)))

    def parameters(self) -> list:
        return [self.W0, self.B0, self.W1, self.B1]

    # --- structure --------------------------------------------------------------------------
    def beliefs(self) -> np.ndarray:
        """sigma(gamma) as an (child, parent) float64 array, zero diagonal."""
        g = self.gamma.detach().numpy().astype(np.float64)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-g))

    def edge_probs(self) -> np.ndarray:
        """P(i -> j) in the library convention (the transpose of sigma(gamma))."""
        return self.beliefs().T.copy()

    def sample_configs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` configurations c[child, parent] ~ Bernoulli(sigma(gamma)), (n, M, M) float32,
        zero diagonal."""
        s = self.beliefs()
        c = (rng.random((int(n),) + s.shape) < s).astype(np.float32)
        c[:, np.arange(self.num_nodes), np.arange(self.num_nodes)] = 0.0
        return c

    def reconstrain(self) -> None:
        """Clamp gamma to [-5, 5] and refill the -inf diagonal (official reconstrain_gamma)."""
        g = np.clip(self.gamma.detach().numpy(), -GAMMA_CLAMP, GAMMA_CLAMP)
        np.fill_diagonal(g, -np.inf)
        self.gamma.data = fg.from_numpy(g.astype(np.float32))

    # --- the functional part ----------------------------------------------------------------
    def masked_inputs(self, x: np.ndarray, config: np.ndarray) -> np.ndarray:
        """One-hot inputs (M, B, sum N) of a batch x (B, M), each child k seeing only the
        parents that config[k] (M,) switches on."""
        onehot = np.zeros((len(x), self.total), dtype=np.float32)
        onehot[np.arange(len(x))[:, None], self.offsets[None, :] + x] = 1.0
        mask = config[:, self.variable_of]                                      # (M, sum N)
        return onehot[None, :, :] * mask[:, None, :]

    def node_log_prob(self, x: np.ndarray, config: np.ndarray) -> fg.Tensor:
        """log p(x_k | configured parents) as a flowgrad tensor (M, B), differentiable in the
        functional parameters: one configuration per batch (Phase 1)."""
        inp = fg.from_numpy(self.masked_inputs(x, config))
        h = F.leaky_relu(fg.matmul(inp, self.W0) + self.B0, LEAKY_SLOPE)
        logits = (fg.matmul(h, self.W1) + self.B1) / self.temperature
        logits = logits + fg.from_numpy(self.category_mask)
        logp = F.log_softmax(logits, dim=-1)                                    # (M, B, Nmax)
        index = fg.from_numpy(np.ascontiguousarray(x.T[:, :, None]))
        return fg.take_along_dim(logp, index, dim=-1)[..., 0]

    def config_log_prob(self, x: np.ndarray, configs: np.ndarray) -> np.ndarray:
        """log p(x_k | parents under configuration c) for many configurations at once, without
        gradients: x (B, M) and configs (C, M, M) give (C, B, M); a stack of batches
        x (T, B, M) with their own configurations (T, C, M, M) gives (T, C, B, M)."""
        if x.ndim == 2:
            return self.config_log_prob(x[None], configs[None])[0]
        distinct = _distinct_rows(x)
        if distinct is None:
            return self._score(x, configs)
        rows, inverse = distinct  # score each batch's distinct samples once, then spread
        return np.take_along_axis(self._score(rows, configs), inverse[:, None, :, None], axis=2)

    def _score(self, x: np.ndarray, configs: np.ndarray) -> np.ndarray:
        """``config_log_prob`` of stacked batches x (T, B, M), every row scored, a few batches
        at a time so that the hidden activations stay small."""
        step = max(1, int(4e6 // max(1, configs.shape[1] * x.shape[1] * self.num_nodes
                                     * self.hidden)))
        if len(x) > step:
            return np.concatenate([self._score(x[s:s + step], configs[s:s + step])
                                   for s in range(0, len(x), step)])
        w0, b0 = self.W0.detach().numpy(), self.B0.detach().numpy()
        w1, b1 = self.W1.detach().numpy(), self.B1.detach().numpy()
        m, h = self.num_nodes, self.hidden
        t, b, c = x.shape[0], x.shape[1], configs.shape[1]
        rows = (self.offsets + x).transpose(0, 2, 1)                            # (T, Mj, B)
        # the embedding rows every child m reads, gathered straight into (T, M, Mj, B, H)
        emb = w0[np.arange(m)[None, :, None, None], rows[:, None]].reshape(t, m, m, b * h)
        pre = np.matmul(configs.transpose(0, 2, 1, 3).astype(np.float32), emb)  # (T,M,C,B*H)
        act = pre.reshape(t, m, c * b, h)
        act += b0
        np.maximum(act, LEAKY_SLOPE * act, out=act)                             # LeakyReLU
        logits = np.matmul(act, w1)                                             # (T,M,CB,N)
        logits += b1
        if self.temperature != 1.0:
            logits /= self.temperature
        logits += self.category_mask
        top = logits.max(axis=-1)
        logits -= top[..., None]
        xb = np.broadcast_to(rows[:, :, None, :] - self.offsets[None, :, None, None],
                             (t, m, c, b)).reshape(t, m, c * b, 1)
        picked = np.take_along_axis(logits, xb, axis=-1)[..., 0]
        out = (picked - np.log(np.exp(logits).sum(axis=-1))).reshape(t, m, c, b)
        return out.transpose(0, 2, 3, 1)

    def batch_mean_log_prob(self, x: np.ndarray, configs: np.ndarray) -> np.ndarray:
        """The mean over each batch of ``config_log_prob``: x (T, B, M) and configs
        (T, C, M, M) give (T, C, M), each batch's distinct samples scored once and weighted by
        how often they occur."""
        distinct = _distinct_rows(x)
        if distinct is None:
            return self._score(x, configs).mean(axis=2)
        rows, inverse = distinct
        t, b = inverse.shape
        counts = np.zeros((t, rows.shape[1]), dtype=np.float32)
        np.add.at(counts, (np.repeat(np.arange(t), b), inverse.reshape(-1)), 1.0)
        return np.einsum("tu,tcum->tcm", counts / b, self._score(rows, configs))

    def log_likelihood(self, x: np.ndarray, num_configs: int = 100, rng=None,
                       graph: np.ndarray | None = None) -> float:
        """Mean per-variable log-likelihood (nats) of samples x under the learner: averaged over
        ``num_configs`` configurations drawn from the beliefs, or under one fixed ``graph``
        (library convention adj[i, j] = i -> j) when given."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        if graph is not None:
            configs = np.asarray(graph, dtype=np.float32).T[None]
        else:
            configs = self.sample_configs(num_configs, rng)
        total = 0.0
        for s in range(0, len(configs), 10):
            total += float(self.config_log_prob(x, configs[s:s + 10]).mean(axis=(1, 2)).sum())
        return total / len(configs)


def _distinct_rows(x: np.ndarray, worth: float = 0.75):
    """Batches x (T, B, M) drawn with replacement from a few hundred samples repeat rows (a
    batch of 256 of Asia's holds about 33 distinct ones): each batch's distinct rows, padded
    with its first row to a common count U, as (T, U, M), and for every sample its row's index,
    (T, B). None when U > ``worth`` * B (deduplicating would not pay) or when the rows' mixed-
    radix keys would not fit in 62 bits."""
    t, b, m = x.shape
    sizes = [int(v) + 1 for v in x.reshape(-1, m).max(axis=0)]
    if math.prod(sizes) * t >= 2 ** 62:
        return None
    radix = np.cumprod([1] + sizes[:-1]).astype(np.int64)
    keys = x.reshape(t * b, m).astype(np.int64) @ radix + np.repeat(
        np.arange(t, dtype=np.int64) * math.prod(sizes), b)              # batch-major keys
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    batch_of = first // b                                                # sorted by batch
    start = np.searchsorted(batch_of, np.arange(t))
    count = int(np.bincount(batch_of, minlength=t).max())
    if count > worth * b:
        return None
    slot = np.arange(len(first)) - start[batch_of]
    rows = np.repeat(x[:, :1], count, axis=1).copy()                     # padded: first row
    rows[batch_of, slot] = x.reshape(t * b, m)[first]
    return rows, slot[inverse.reshape(-1)].reshape(t, b)


# --- the regularisers and the estimator ----------------------------------------------------
def gamma_regularizer(gamma: fg.Tensor, lsparse: float, ldag: float,
                      lmaxent: float = 0.0) -> fg.Tensor:
    """lambda_sparse * sum sigma(gamma) + lambda_dag * (sum_{i>j} cosh(sigma(gamma_ij)
    sigma(gamma_ji)) - const) - lambda_maxent * sum sigma(1 - sigma), as a flowgrad scalar
    (official ``Lsparse``, ``Ldag``, ``Lmaxent``; the constant M^2 - M does not move gamma)."""
    m = gamma.shape[0]
    s = fg.sigmoid(gamma)
    prod = s * s.t()
    cosh = (fg.exp(prod) + fg.exp(-prod)) * 0.5
    lower = fg.from_numpy(np.tril(np.ones((m, m), dtype=np.float32), -1))
    ldag_term = ((cosh * lower).sum() - float(m * m - m)) * ldag
    return s.sum() * lsparse + ldag_term - (s * (1.0 - s)).sum() * lmaxent


def gamma_gradient(scores: np.ndarray, log_likelihoods: np.ndarray) -> np.ndarray:
    """SDI's estimator: scores (K, M, M) = sum_c (sigma(gamma) - c) of each batch k,
    log_likelihoods (K, M) = sum_c log L_i of each batch; returns dR/dgamma (M, M) =
    sum_k scores[k, i, j] * softmax_k(log_likelihoods[:, i])."""
    ll = log_likelihoods - log_likelihoods.max(axis=0, keepdims=True)
    w = np.exp(ll)
    w /= w.sum(axis=0, keepdims=True)
    return np.einsum("kij,ki->ij", scores, w)


def predict_target(learner: SDILearner, data: np.ndarray, batches: int, configs: int,
                   batch_size: int, rng: np.random.Generator) -> int:
    """The intervened variable: the one with the largest NLL on the interventional data,
    summed over ``batches`` batches x ``configs`` configurations (official ``--predict``)."""
    x = data[rng.integers(0, len(data), (batches, batch_size))]
    c = learner.sample_configs(batches * configs, rng).reshape(batches, configs,
                                                               *learner.gamma.shape)
    nll = -learner.batch_mean_log_prob(x, c).sum(axis=(0, 1))
    return int(np.argmax(nll))


def score_intervention(learner: SDILearner, data: np.ndarray, target: int | None,
                       config: SDIConfig, rng: np.random.Generator) -> np.ndarray:
    """Phase 2 and the estimator of Phase 3 on one interventional dataset: dR/dgamma (M, M)
    in (child, parent) orientation, the target's likelihood blocked."""
    m = learner.num_nodes
    s = learner.beliefs()
    np.fill_diagonal(s, 0.0)
    t, k = config.batches_per_intervention, config.configs_per_batch
    x = data[rng.integers(0, len(data), (t, config.batch_size))]
    c = learner.sample_configs(t * k, rng).reshape(t, k, m, m)
    logp = learner.batch_mean_log_prob(x, c).astype(np.float64)              # (T, C, M)
    if target is not None:
        logp[:, :, target] = 0.0
    scores = (s[None, None] - c).sum(axis=1)                                    # (T, M, M)
    return gamma_gradient(scores, logp.sum(axis=1))


# --- the data sources -----------------------------------------------------------------------
class _Source:
    """Observational batches and interventions from a simulator or from fixed datasets."""

    def __init__(self, data, config: SDIConfig, rng: np.random.Generator):
        self.rng, self.config = rng, config
        self.fixed = hasattr(data, "observational")
        self.data = data
        self.truth = None if self.fixed else data
        adj = getattr(data, "adjacency", None)
        self.adjacency = None if adj is None else np.asarray(adj)
        if self.fixed and not data.interventions and config.interventions_per_distribution:
            raise ValueError("fit_sdi: the InterventionalData has no interventions")

    @property
    def num_nodes(self) -> int:
        return self.data.num_nodes if self.fixed else len(self.data.adjacency)

    def new_distribution(self) -> None:
        if not self.fixed and self.config.redraw_truth and hasattr(self.truth, "redraw"):
            self.truth = self.truth.redraw(self.rng)

    def observational_batches(self, n: int):
        bs = self.config.batch_size
        if self.fixed:
            obs = self.data.observational
            for _ in range(n):
                yield obs[self.rng.integers(0, len(obs), bs)]
            return
        done = 0
        while done < n:
            chunk = min(64, n - done)
            xs = self.truth.sample(chunk * bs, self.rng)
            for i in range(chunk):
                yield xs[i * bs:(i + 1) * bs]
            done += chunk

    def intervention(self):
        """(given target or None, true target or None, samples)."""
        if self.fixed:
            i = int(self.rng.integers(0, len(self.data.interventions)))
            target, samples = self.data.interventions[i]
            true = self.data.true_targets[i] if self.data.true_targets else target
            return target, true, samples
        node = int(self.rng.integers(0, self.num_nodes))
        shifted = self.truth.intervene(node, self.rng)
        samples = shifted.sample(self.config.samples_per_intervention, self.rng)
        return node, node, samples


def _check_data(source: _Source, cards: np.ndarray) -> None:
    arrays = ([source.data.observational] + [s for _, s in source.data.interventions]
              if source.fixed else [])
    for a in arrays:
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[1] != len(cards):
            raise ValueError(f"fit_sdi: data of shape {a.shape}; expected (n, {len(cards)})")
        bad = (a < 0) | (a >= cards[None, :])
        if bad.any():
            r, k = map(int, np.argwhere(bad)[0])
            raise ValueError(f"fit_sdi: value {int(a[r, k])} of variable {k} exceeds the "
                             f"model's {int(cards[k])} categories (0..{int(cards[k]) - 1})")


def fit_sdi(data, num_categories, config: SDIConfig | None = None,
            progress: bool = True) -> SDIResult:
    """Learn a causal graph by SDI from ``data``: a simulator (``.sample(n, rng)``,
    ``.intervene(node, rng)``, e.g. CategoricalSCM or BayesianNetwork) or an
    InterventionalData. ``num_categories``: one integer or one per variable."""
    config = config or SDIConfig()
    rng = np.random.default_rng(config.seed)
    fg.manual_seed(config.seed)
    source = _Source(data, config, rng)
    m = source.num_nodes
    cards = np.broadcast_to(np.asarray(num_categories, dtype=np.int64), (m,)).copy()
    _check_data(source, cards)
    learner = SDILearner(cards, config.hidden, rng, config.temperature)
    model_opt = fg.optim.Adam(learner.parameters(), lr=config.model_lr,
                              betas=tuple(config.model_betas))
    gamma_opt = fg.optim.Adam([learner.gamma], lr=config.gamma_lr,
                              betas=tuple(config.gamma_betas))
    predict = config.predict > 0
    history, correct, asked, streak, converged = [], 0, 0, 0, None
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.epochs, desc="SDI", leave=False)
    for epoch in range(1, config.epochs + 1):
        nlls, ep_correct, ep_asked = [], 0, 0
        for _ in range(config.distributions_per_epoch):
            source.new_distribution()
            # Phase 1: functional parameters on observational data
            for x in source.observational_batches(config.functional_batches):
                config_k = learner.sample_configs(1, rng)[0]
                loss = -learner.node_log_prob(x, config_k).mean()
                model_opt.zero_grad(set_to_none=True)
                loss.backward()
                model_opt.step()
                nlls.append(loss.item())
            # Phases 2 and 3: one gamma step per intervention
            for _ in range(config.interventions_per_distribution):
                given, true, samples = source.intervention()
                target = given
                if predict or given is None:
                    target = predict_target(learner, samples, max(config.predict, 1),
                                            config.predict_configs, config.batch_size, rng)
                    if true is not None:
                        ep_correct += int(target == true)
                        ep_asked += 1
                grad = score_intervention(learner, samples, target, config, rng)
                gamma_opt.zero_grad(set_to_none=True)
                reg = gamma_regularizer(learner.gamma, config.lsparse, config.ldag,
                                        config.lmaxent)
                reg.backward()
                total = learner.gamma.grad.numpy() + grad.astype(np.float32)
                np.fill_diagonal(total, 0.0)
                learner.gamma.grad = fg.from_numpy(total.astype(np.float32))
                gamma_opt.step()
                learner.reconstrain()
        correct, asked = correct + ep_correct, asked + ep_asked
        probs = learner.edge_probs()
        record = {"epoch": epoch, "seconds": time.perf_counter() - start,
                  "functional_nll": float(np.mean(nlls)) if nlls else None}
        if source.adjacency is not None:
            record["shd"] = int(structural_hamming_distance(probs, source.adjacency))
        if ep_asked:
            record["intervention_accuracy"] = ep_correct / ep_asked
        off = probs[~np.eye(m, dtype=bool)]
        saturated = bool(np.all((off < config.saturation) | (off > 1 - config.saturation)))
        record["saturated"] = saturated
        record["edge_probs"] = np.round(probs, 4).tolist()
        history.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: record[k] for k in ("shd",) if k in record})
        streak = streak + 1 if saturated else 0
        if streak >= config.converged_epochs and config.interventions_per_distribution:
            converged = epoch
            break
    if bar is not None:
        bar.close()
    return SDIResult(edge_probs=learner.edge_probs(), history=history,
                     seconds=time.perf_counter() - start,
                     intervention_accuracy=(correct / asked) if asked else None,
                     learner=learner, config=config, converged_epoch=converged,
                     truth=source.truth)

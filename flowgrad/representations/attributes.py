"""Distributed against local codes (lecture: "Distributed Representations: The Power of
Compositionality", parts 1 and 2: "each feature can be discovered without the need for seeing
the exponentially large number of configurations of the other features").

Data: an input is described by m independent attributes with k values each (the slide's "wears
glasses / is female / is a child"); each value of each attribute has its own random prototype
pattern, and an input is the sum of its attributes' prototypes plus Gaussian noise
(``layout="mixed"``: all prototypes overlap in one vector) or their concatenation plus noise
(``layout="parts"``: attribute i owns its own block of features). ``split_combinations`` holds
some of the k^m combinations out of training entirely, keeping every value of every attribute
seen.

Two networks with the same trunk (an MLP) and different output codes:

- ``FactoredClassifier``, the distributed code: one softmax over k values per attribute, m
  heads, k·m output units, trained with the sum over attributes of the cross-entropies;
- ``LocalClassifier``, the local (one-hot) code: one softmax over the k^m combinations.

A prediction is right when every attribute is (``all_correct``). The local code's unit for a
combination never seen in training never receives a positive target, so it cannot name that
combination; the factored code can, by composing values it has seen.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..nn import functional as F
from ..tensor import Tensor, as_tensor

__all__ = ["AttributeGenerator", "split_combinations", "combination_index",
           "combination_attributes", "FactoredClassifier", "LocalClassifier", "all_correct",
           "fit_attribute_classifier", "examples_to_reach"]


def _check_attributes(attrs, n_attributes: int, n_values: int, op: str) -> np.ndarray:
    a = np.asarray(attrs)
    if a.ndim != 2 or a.shape[1] != n_attributes:
        raise ShapeError(f"{op}: expected attribute values of shape (n, {n_attributes}), got "
                         f"shape {a.shape}")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0
                   or a.max() >= n_values):
        raise ValueError(f"{op}: attribute values must be integers in [0, {n_values}), got "
                         f"dtype {a.dtype}, range [{a.min()}, {a.max()}]")
    return a.astype(np.int64, copy=False)


def combination_index(attrs, n_values: int) -> np.ndarray:
    """The class of the local code for each row of attribute values (n, m): the number whose
    base-k digits are the values, attribute 0 most significant."""
    a = np.asarray(attrs, dtype=np.int64)
    return (a * (n_values ** np.arange(a.shape[1] - 1, -1, -1))).sum(1)


def combination_attributes(index, n_attributes: int, n_values: int) -> np.ndarray:
    """The inverse of ``combination_index``: (n,) classes -> (n, m) attribute values."""
    index = np.asarray(index, dtype=np.int64)
    powers = n_values ** np.arange(n_attributes - 1, -1, -1)
    return (index[:, None] // powers[None, :]) % n_values


def split_combinations(n_attributes: int, n_values: int, n_held_out: int,
                       rng: np.random.Generator, tries: int = 1000):
    """(seen, unseen): the k^m combinations (rows of attribute values) split so that
    ``n_held_out`` of them never appear in training, drawn at random among the splits that keep
    every value of every attribute in the seen set."""
    combos = np.array(list(itertools.product(range(n_values), repeat=n_attributes)),
                      dtype=np.int64)
    if not 0 <= n_held_out < len(combos):
        raise ValueError(f"split_combinations: n_held_out must be in [0, {len(combos)}) for "
                         f"{n_values}^{n_attributes} combinations, got {n_held_out}")
    for _ in range(tries):
        perm = rng.permutation(len(combos))
        seen, unseen = combos[np.sort(perm[n_held_out:])], combos[np.sort(perm[:n_held_out])]
        if all(len(np.unique(seen[:, i])) == n_values for i in range(n_attributes)):
            return seen, unseen
    raise ValueError(f"split_combinations: no split of {len(combos)} combinations holding out "
                     f"{n_held_out} keeps every attribute value seen")


class AttributeGenerator:
    """Inputs described by ``n_attributes`` independent attributes with ``n_values`` values:
    x = Σ_i P_i[a_i] + σ ε (``layout="mixed"``, x of size ``dim``) or x = [P_1[a_1], ...,
    P_m[a_m]] + σ ε (``layout="parts"``, ``dim`` features per attribute), with prototypes
    P_i[v] ~ N(0, signal²/dim · I) drawn once from ``seed`` and ε ~ N(0, I). Two values of one
    attribute then differ by a pattern of norm about signal·√2, against noise σ per feature."""

    def __init__(self, n_attributes: int, n_values: int = 2, dim: int = 32,
                 signal: float = 5.0, noise: float = 1.0, layout: str = "mixed",
                 seed: int = 0) -> None:
        if layout not in ("mixed", "parts"):
            raise ValueError(f"AttributeGenerator: layout must be 'mixed' or 'parts', got "
                             f"{layout!r}")
        if n_attributes < 1 or n_values < 2 or dim < 1:
            raise ValueError(f"AttributeGenerator: need n_attributes ≥ 1, n_values ≥ 2, dim ≥ "
                             f"1; got {n_attributes}, {n_values}, {dim}")
        self.n_attributes, self.n_values, self.layout = n_attributes, n_values, layout
        self.noise = noise
        rng = np.random.default_rng([seed, 17])
        self.prototypes = rng.standard_normal((n_attributes, n_values, dim)) * signal \
            / np.sqrt(dim)
        self.dim = dim if layout == "mixed" else dim * n_attributes

    def combinations(self) -> np.ndarray:
        """All k^m combinations, in the order of ``combination_index``."""
        return combination_attributes(np.arange(self.n_values ** self.n_attributes),
                                      self.n_attributes, self.n_values)

    def sample(self, attrs, rng: np.random.Generator) -> np.ndarray:
        """float32 inputs (n, dim) for the rows of attribute values ``attrs`` (n, m)."""
        a = _check_attributes(attrs, self.n_attributes, self.n_values,
                              "AttributeGenerator.sample")
        parts = self.prototypes[np.arange(self.n_attributes)[None, :], a]  # (n, m, dim)
        clean = parts.sum(1) if self.layout == "mixed" else parts.reshape(len(a), -1)
        return (clean + self.noise * rng.standard_normal(clean.shape)).astype(np.float32)

    def draw(self, combos, n: int, rng: np.random.Generator, per_combination: bool = False):
        """(x, attrs): ``n`` examples with combinations drawn uniformly from the rows of
        ``combos``, or ``n`` examples of each row with ``per_combination``."""
        combos = _check_attributes(combos, self.n_attributes, self.n_values,
                                   "AttributeGenerator.draw")
        attrs = np.repeat(combos, n, axis=0) if per_combination \
            else combos[rng.integers(0, len(combos), n)]
        attrs = attrs[rng.permutation(len(attrs))]
        return self.sample(attrs, rng), attrs


def _trunk(in_dim: int, hidden) -> tuple[nn.Module, int]:
    layers, width = [], in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers), width


class FactoredClassifier(nn.Module):
    """The distributed output code: an MLP trunk (ReLU, sizes ``hidden``) and one softmax over
    ``n_values`` per attribute; forward (B, in_dim) -> logits (B, m, k)."""

    def __init__(self, in_dim: int, n_attributes: int, n_values: int = 2, hidden=(64,)):
        super().__init__()
        self.n_attributes, self.n_values = n_attributes, n_values
        self.trunk, width = _trunk(in_dim, hidden)
        self.head = nn.Linear(width, n_attributes * n_values)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x)).reshape(-1, self.n_attributes, self.n_values)

    def loss(self, x, attrs) -> Tensor:
        """Σ over attributes of the mean cross-entropy of that attribute's head."""
        a = _check_attributes(attrs, self.n_attributes, self.n_values, "FactoredClassifier")
        logits = self(as_tensor(x))
        return F.cross_entropy(logits.reshape(-1, self.n_values),
                               as_tensor(a.reshape(-1))) * self.n_attributes

    @no_grad()
    def predict(self, x) -> np.ndarray:
        """(B, m) attribute values: the argmax of each head."""
        return self(as_tensor(x)).numpy().argmax(-1)


class LocalClassifier(nn.Module):
    """The local (one-hot) output code: the same trunk and one softmax over the k^m
    combinations; forward (B, in_dim) -> logits (B, k^m)."""

    def __init__(self, in_dim: int, n_attributes: int, n_values: int = 2, hidden=(64,)):
        super().__init__()
        self.n_attributes, self.n_values = n_attributes, n_values
        self.trunk, width = _trunk(in_dim, hidden)
        self.head = nn.Linear(width, n_values ** n_attributes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))

    def loss(self, x, attrs) -> Tensor:
        a = _check_attributes(attrs, self.n_attributes, self.n_values, "LocalClassifier")
        return F.cross_entropy(self(as_tensor(x)),
                               as_tensor(combination_index(a, self.n_values)))

    @no_grad()
    def predict(self, x) -> np.ndarray:
        """(B, m) attribute values decoded from the most probable combination."""
        return combination_attributes(self(as_tensor(x)).numpy().argmax(-1),
                                      self.n_attributes, self.n_values)


def all_correct(pred, attrs) -> np.ndarray:
    """Per example: True when every attribute is predicted right."""
    pred, attrs = np.asarray(pred), np.asarray(attrs)
    if pred.shape != attrs.shape:
        raise ShapeError(f"all_correct: predictions {pred.shape} and targets {attrs.shape} "
                         "must have the same shape (n, m)")
    return (pred == attrs).all(1)


def fit_attribute_classifier(model, x, attrs, rng: np.random.Generator, steps: int = 400,
                             lr: float = 3e-3, batch_size: int = 64, valid=None,
                             eval_every: int = 25) -> dict:
    """Adam on ``model.loss`` with minibatches drawn at random; with ``valid`` = (x, attrs) the
    all-attributes-right accuracy on it is measured every ``eval_every`` steps and the best
    state (the earliest of equal ones) is kept and restored. Returns {"loss": [...],
    "valid": [(step, accuracy), ...], "best_step": int}."""
    from ..optim import Adam

    x = np.asarray(x, dtype=np.float32)
    opt = Adam(model.parameters(), lr=lr)
    history = {"loss": [], "valid": [], "best_step": steps}
    best = (-1.0, None)
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), min(batch_size, len(x)))
        loss = model.loss(x[idx], attrs[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
        if valid is not None and (step % eval_every == 0 or step == steps):
            acc = float(all_correct(model.predict(valid[0]), valid[1]).mean())
            history["valid"].append((step, acc))
            if acc > best[0]:
                best = (acc, {k: v.detach().numpy().copy()
                              for k, v in model.state_dict().items()})
                history["best_step"] = step
    if best[1] is not None:
        model.load_state_dict(best[1])
    return history


def examples_to_reach(budgets, accuracies, target: float):
    """The smallest budget whose accuracy reaches ``target`` (accuracies in the order of
    ``budgets``), interpolated linearly in log(budget) between the last budget below and the
    first at or above the target; None when no budget reaches it."""
    budgets, acc = np.asarray(budgets, dtype=np.float64), np.asarray(accuracies, np.float64)
    hit = np.flatnonzero(acc >= target)
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0:
        return float(budgets[0])
    lo, hi = np.log(budgets[j - 1]), np.log(budgets[j])
    frac = (target - acc[j - 1]) / (acc[j] - acc[j - 1])
    return float(np.exp(lo + frac * (hi - lo)))

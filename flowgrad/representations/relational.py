"""Relational embeddings: entities and relations as learned vectors, scored on
(head, relation, tail) triples (lecture: "Combining Multiple Sources of Evidence with Shared
Representations", relational learning; Hinton 1986's family trees in
``flowgrad.datasets.family_trees``).

Energies (a score is minus an energy: higher means more plausible):

- ``TransE`` (Bordes, Usunier, Garcia-Duran, Weston & Yakhnenko, NeurIPS 2013): a relation is a
  translation, score = -||e_h + r - e_t||_p, entity vectors kept on the unit sphere;
- ``RESCAL`` (Nickel, Tresp & Kriegel, ICML 2011): a bilinear form per relation,
  score = e_hᵀ W_r e_t;
- ``DistMult`` (Yang, Yih, He, Gao & Deng, ICLR 2015): RESCAL with diagonal W_r (symmetric in
  head and tail, so it cannot tell father(x, y) from father(y, x)).

Training (Bordes et al. 2013, Algorithm 1): the margin ranking loss
mean(max(0, margin - s(h, r, t) + s(h', r, t'))) over corrupted triples, in which the head or the
tail is replaced by a random entity (``corrupt_triples``). Evaluation: link prediction in the
filtered setting (each true triple is ranked against every corruption of its head, and of its
tail, that is not itself a known true triple): mean rank, mean reciprocal rank and hits@k
(``link_prediction``), beside the same metrics of a random ranking (``random_ranking``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..nn import init
from ..tensor import Tensor, as_tensor

__all__ = ["UnknownSymbolError", "TripleIndex", "TransE", "RESCAL", "DistMult", "MODELS",
           "triple_margin_loss", "corrupt_triples", "filtered_ranks", "rank_metrics",
           "link_prediction", "random_ranking", "fit_triples"]


class UnknownSymbolError(KeyError, ValueError):
    """A triple names an entity or a relation that the index does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TripleIndex:
    """Names of entities and relations <-> integer ids; triples <-> an int64 array (n, 3) of
    (head, relation, tail) ids.

    Example:
        >>> index = TripleIndex(["Colin", "James"], ["father"])
        >>> index.encode([("Colin", "father", "James")])
        array([[0, 0, 1]])
    """

    def __init__(self, entities, relations) -> None:
        self.entities, self.relations = list(entities), list(relations)
        for what, names in (("entity", self.entities), ("relation", self.relations)):
            if len(set(names)) != len(names):
                dup = sorted({n for n in names if names.count(n) > 1})
                raise ValueError(f"TripleIndex: duplicate {what} names {dup}")
        self.entity_id = {n: i for i, n in enumerate(self.entities)}
        self.relation_id = {n: i for i, n in enumerate(self.relations)}

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def _id(self, table: dict, what: str, name, k: int, triple, n: int) -> int:
        if name not in table:
            known = list(table)
            raise UnknownSymbolError(
                f"TripleIndex.encode: triple {k} of {n}, {tuple(triple)!r}, names an unknown "
                f"{what} {name!r}; the index knows {len(known)} {what} names "
                f"({', '.join(map(repr, known[:8]))}{', ...' if len(known) > 8 else ''})")
        return table[name]

    def encode(self, triples) -> np.ndarray:
        """(n, 3) int64 ids of an iterable of (head, relation, tail) names."""
        triples = list(triples)
        out = np.empty((len(triples), 3), dtype=np.int64)
        for k, triple in enumerate(triples):
            if not isinstance(triple, (tuple, list)) or len(triple) != 3:
                raise ShapeError(f"TripleIndex.encode: triple {k} of {len(triples)} is "
                                 f"{triple!r}; expected (head, relation, tail)")
            h, r, t = triple
            out[k] = (self._id(self.entity_id, "entity", h, k, triple, len(triples)),
                      self._id(self.relation_id, "relation", r, k, triple, len(triples)),
                      self._id(self.entity_id, "entity", t, k, triple, len(triples)))
        return out

    def decode(self, ids) -> list[tuple[str, str, str]]:
        ids = _check_ids(ids, self.num_entities, self.num_relations, "TripleIndex.decode")
        return [(self.entities[h], self.relations[r], self.entities[t]) for h, r, t in ids]


def _check_ids(triples, num_entities: int, num_relations: int, op: str) -> np.ndarray:
    ids = triples.numpy() if isinstance(triples, Tensor) else np.asarray(triples)
    if ids.ndim != 2 or ids.shape[1] != 3:
        raise ShapeError(f"{op}: expected triples of shape (n, 3) (head, relation, tail ids), "
                         f"got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{op}: expected integer ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    for col, n, what in ((0, num_entities, "head entity"), (1, num_relations, "relation"),
                         (2, num_entities, "tail entity")):
        bad = np.flatnonzero((ids[:, col] < 0) | (ids[:, col] >= n))
        if bad.size:
            raise UnknownSymbolError(f"{op}: triple {bad[0]} of {len(ids)}, "
                                     f"{ids[bad[0]].tolist()}, has {what} id "
                                     f"{ids[bad[0], col]} outside [0, {n})")
    return ids


class _TripleScorer(nn.Module):
    """Shared by the energies: ``forward(triples)`` -> scores (n,), higher = more plausible."""

    def __init__(self, num_entities: int, num_relations: int, dim: int) -> None:
        super().__init__()
        self.num_entities, self.num_relations, self.dim = num_entities, num_relations, dim
        self.entity = nn.Embedding(num_entities, dim)

    def forward(self, triples) -> Tensor:
        ids = _check_ids(triples, self.num_entities, self.num_relations,
                         type(self).__name__)
        return self.score(as_tensor(ids[:, 0]), as_tensor(ids[:, 1]), as_tensor(ids[:, 2]))

    def constrain_(self) -> None:
        """The constraint applied after every update (none by default)."""

    def entity_vectors(self) -> np.ndarray:
        return self.entity.weight.detach().numpy().copy()


class TransE(_TripleScorer):
    """score(h, r, t) = -||e_h + r - e_t||_p (Bordes et al. 2013): initialised uniform in
    ±6/√dim with relation vectors normalised once, entity vectors renormalised to unit L2 norm
    after every update (``constrain_``). ``p`` is 1 or 2 (the L2 distance is not squared)."""

    def __init__(self, num_entities: int, num_relations: int, dim: int, p: int = 1) -> None:
        super().__init__(num_entities, num_relations, dim)
        if p not in (1, 2):
            raise ValueError(f"TransE: p must be 1 or 2, got {p}")
        self.p = p
        self.relation = nn.Embedding(num_relations, dim)
        bound = 6.0 / math.sqrt(dim)
        with no_grad():
            init.uniform_(self.entity.weight, -bound, bound)
            init.uniform_(self.relation.weight, -bound, bound)
            w = self.relation.weight
            w.copy_(w / (w * w).sum(-1, keepdim=True).sqrt())
        self.constrain_()

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        d = self.entity(h) + self.relation(r) - self.entity(t)
        if self.p == 1:
            return -d.abs().sum(-1)
        return -((d * d).sum(-1) + 1e-12).sqrt()

    def constrain_(self) -> None:
        with no_grad():
            w = self.entity.weight
            w.copy_(w / (w * w).sum(-1, keepdim=True).sqrt().clamp_min(1e-12))


class RESCAL(_TripleScorer):
    """score(h, r, t) = e_hᵀ W_r e_t (Nickel et al. 2011), trained here with the margin ranking
    loss; entity vectors kept inside the unit ball (``constrain_``)."""

    def __init__(self, num_entities: int, num_relations: int, dim: int) -> None:
        super().__init__(num_entities, num_relations, dim)
        self.relation = nn.Parameter(np.zeros((num_relations, dim, dim), dtype=np.float32))
        with no_grad():
            init.normal_(self.entity.weight, 0.0, 1.0 / math.sqrt(dim))
            init.normal_(self.relation, 0.0, 1.0 / math.sqrt(dim))
        self.constrain_()

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        eh, et = self.entity(h), self.entity(t)
        w = self.relation[r]  # (n, d, d)
        return ((eh.unsqueeze(1) @ w).squeeze(1) * et).sum(-1)

    def constrain_(self) -> None:
        with no_grad():
            w = self.entity.weight
            w.copy_(w / (w * w).sum(-1, keepdim=True).sqrt().clamp_min(1.0))


class DistMult(RESCAL):
    """score(h, r, t) = Σ_i e_h,i r_i e_t,i (Yang et al. 2015): RESCAL with diagonal relation
    matrices, symmetric in head and tail."""

    def __init__(self, num_entities: int, num_relations: int, dim: int) -> None:
        _TripleScorer.__init__(self, num_entities, num_relations, dim)
        self.relation = nn.Parameter(np.zeros((num_relations, dim), dtype=np.float32))
        with no_grad():
            init.normal_(self.entity.weight, 0.0, 1.0 / math.sqrt(dim))
            init.normal_(self.relation, 0.0, 1.0)
        self.constrain_()

    def score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (self.entity(h) * self.relation[r] * self.entity(t)).sum(-1)


MODELS = {"transe": TransE, "rescal": RESCAL, "distmult": DistMult}


def triple_margin_loss(positive: Tensor, negative: Tensor, margin: float = 1.0) -> Tensor:
    """mean over all (positive, negative) pairs of max(0, margin - s_pos + s_neg) (Bordes et al.
    2013, eq. 1, with scores = -energies): ``positive`` (n,), ``negative`` (n,) or (n, k), the
    k corruptions of triple i in row i."""
    if positive.ndim != 1 or negative.ndim not in (1, 2) or negative.shape[0] != \
            positive.shape[0]:
        raise ShapeError(f"triple_margin_loss: expected positive scores (n,) and negative "
                         f"scores (n,) or (n, k), got {tuple(positive.shape)} and "
                         f"{tuple(negative.shape)}")
    if negative.ndim == 2:
        positive = positive.unsqueeze(1)
    return (negative - positive + margin).clamp_min(0.0).mean()


def corrupt_triples(triples, num_entities: int, rng: np.random.Generator, negatives: int = 1,
                    known=None, tries: int = 10) -> np.ndarray:
    """(n, k, 3) corruptions of (n, 3) triples: the head or the tail (each with probability ½)
    replaced by a different entity drawn uniformly. With ``known`` (a set of id tuples), a
    corruption that is itself a known true triple is redrawn, up to ``tries`` times."""
    triples = np.asarray(triples, dtype=np.int64)
    n = len(triples)
    out = np.repeat(triples[:, None, :], negatives, axis=1)
    todo = np.ones((n, negatives), dtype=bool)
    for _ in range(tries if known else 1):
        idx = np.nonzero(todo)
        side = np.where(rng.random(len(idx[0])) < 0.5, 0, 2)
        original = triples[idx[0], side]
        new = rng.integers(0, num_entities - 1, len(idx[0]))
        new = new + (new >= original)  # never the original entity
        fresh = triples[idx[0]].copy()
        fresh[np.arange(len(side)), side] = new
        out[idx] = fresh
        if not known:
            break
        todo[idx] = [tuple(c) in known for c in fresh.tolist()]
        if not todo.any():
            break
    return out


@no_grad()
def _score_numpy(model, ids: np.ndarray, batch: int = 65536) -> np.ndarray:
    was = model.training
    model.eval()
    out = np.concatenate([model(ids[s:s + batch]).numpy().astype(np.float64)
                          for s in range(0, len(ids), batch)]) if len(ids) else np.zeros(0)
    model.train(was)
    return out


def filtered_ranks(model, triples, known, num_entities: int,
                   sides=("head", "tail")) -> dict[str, np.ndarray]:
    """The filtered rank of each true triple among all its corruptions of the head (side
    "head") and of the tail (side "tail"), leaving out the corruptions that are known true
    triples (``known``: a set of id tuples holding every true triple of train, validation and
    test). rank = 1 + (candidates scored higher) + ½ (other candidates scored equal), so a
    model that scores everything alike gets the middle rank, not the first.

    ``model`` is a triple scorer or any callable (m, 3) int64 ids -> (m,) scores."""
    triples = np.asarray(triples, dtype=np.int64)
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ShapeError(f"filtered_ranks: expected triples (n, 3), got {triples.shape}")
    score = model if not isinstance(model, nn.Module) else (lambda ids: _score_numpy(model, ids))
    entities = np.arange(num_entities)
    out = {}
    for side in sides:
        col = {"head": 0, "tail": 2}[side]
        cand = np.repeat(triples[:, None, :], num_entities, axis=1)  # (n, E, 3)
        cand[:, :, col] = entities[None, :]
        s = np.asarray(score(cand.reshape(-1, 3)), dtype=np.float64).reshape(len(triples), -1)
        keep = np.array([[e == tr[col] or tuple(c) not in known for e, c in enumerate(row)]
                         for tr, row in zip(triples, cand.tolist())])
        true = s[np.arange(len(triples)), triples[:, col]][:, None]
        higher = ((s > true) & keep).sum(1)
        ties = ((s == true) & keep).sum(1) - 1  # the triple itself is one of them
        out[side] = 1.0 + higher + 0.5 * ties
    return out


def rank_metrics(ranks, ks=(1, 3, 10)) -> dict:
    """Mean rank, mean reciprocal rank and hits@k (the share of ranks ≤ k) of an array of
    ranks."""
    ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if ranks.size == 0:
        raise ValueError("rank_metrics: no ranks given")
    out = {"mean_rank": float(ranks.mean()), "mrr": float((1.0 / ranks).mean())}
    out.update({f"hits@{k}": float((ranks <= k).mean()) for k in ks})
    return out


def link_prediction(model, triples, known, num_entities: int, ks=(1, 3, 10)) -> dict:
    """Filtered link prediction over both sides: the metrics of ``rank_metrics`` on the head
    and tail ranks together, and per side under "head" and "tail"."""
    ranks = filtered_ranks(model, triples, known, num_entities)
    out = rank_metrics(np.concatenate([ranks["head"], ranks["tail"]]), ks)
    out.update({side: rank_metrics(r, ks) for side, r in ranks.items()})
    return out


def random_ranking(triples, known, num_entities: int, ks=(1, 3, 10)) -> dict:
    """The expected metrics of ``link_prediction`` for a uniformly random ranking: a query with
    C candidates left after filtering has E[rank] = (C + 1)/2, E[1/rank] = H_C / C and
    P(rank ≤ k) = min(k, C)/C; averaged over queries (head and tail sides)."""
    triples = np.asarray(triples, dtype=np.int64)
    counts = []
    for col in (0, 2):
        for tr in triples:
            c = 0
            for e in range(num_entities):
                cand = tr.copy()
                cand[col] = e
                c += e == tr[col] or tuple(cand.tolist()) not in known
            counts.append(c)
    counts = np.array(counts, dtype=np.float64)
    harmonic = np.array([np.sum(1.0 / np.arange(1, c + 1)) for c in counts.astype(int)])
    out = {"mean_rank": float(((counts + 1) / 2).mean()),
           "mrr": float((harmonic / counts).mean())}
    out.update({f"hits@{k}": float((np.minimum(k, counts) / counts).mean()) for k in ks})
    return out


def fit_triples(model, train, num_entities: int, rng: np.random.Generator, steps: int = 1000,
                lr: float = 0.01, margin: float = 1.0, negatives: int = 8,
                weight_decay: float = 0.0, known=None, valid=None, valid_known=None,
                eval_every: int = 100) -> dict:
    """Full-batch Adam on ``triple_margin_loss`` with ``negatives`` fresh corruptions of every
    training triple per step (corruptions that are known training triples redrawn), the model's
    constraint applied after every update. With ``valid`` (id triples) the filtered MRR on it is
    measured every ``eval_every`` steps and the best state is kept and restored
    (``valid_known``: the known true triples used for filtering, train and validation).
    Returns {"loss": [...], "valid": [(step, mrr), ...], "best_step": int}."""
    from ..optim import Adam

    train = _check_ids(train, num_entities, getattr(model, "num_relations", 1 << 62),
                       "fit_triples")
    known = known if known is not None else {tuple(t) for t in train.tolist()}
    opt = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = {"loss": [], "valid": [], "best_step": steps}
    best = (-math.inf, None)
    for step in range(1, steps + 1):
        neg = corrupt_triples(train, num_entities, rng, negatives, known)
        pos_s = model(train)
        neg_s = model(neg.reshape(-1, 3)).reshape(len(train), negatives)
        loss = triple_margin_loss(pos_s, neg_s, margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.constrain_()
        history["loss"].append(loss.item())
        if valid is not None and (step % eval_every == 0 or step == steps):
            mrr = link_prediction(model, valid, valid_known or known, num_entities)["mrr"]
            history["valid"].append((step, mrr))
            if mrr > best[0]:
                best = (mrr, {k: v.detach().numpy().copy()
                              for k, v in model.state_dict().items()})
                history["best_step"] = step
    if best[1] is not None:
        model.load_state_dict(best[1])
    return history

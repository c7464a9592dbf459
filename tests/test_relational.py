"""Hinton's family trees, relational embeddings (TransE, RESCAL, DistMult), the margin ranking
loss and filtered link-prediction metrics."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.datasets.family_trees import (
    COUNTERPART,
    RELATIONS,
    family_people,
    family_queries,
    family_triples,
)
from flowgrad.errors import ShapeError
from flowgrad.representations.relational import (
    RESCAL,
    DistMult,
    TransE,
    TripleIndex,
    UnknownSymbolError,
    corrupt_triples,
    filtered_ranks,
    fit_triples,
    link_prediction,
    random_ranking,
    rank_metrics,
    triple_margin_loss,
)

MALE = {"father", "husband", "son", "brother", "uncle", "nephew"}
INVERSE = {"father": ("son", "daughter"), "mother": ("son", "daughter"),
           "husband": ("wife",), "wife": ("husband",), "brother": ("brother", "sister"),
           "sister": ("brother", "sister"), "uncle": ("nephew", "niece"),
           "aunt": ("nephew", "niece"), "nephew": ("uncle", "aunt"), "niece": ("uncle", "aunt")}


# --- the data -------------------------------------------------------------------------------

def test_family_trees_counts():
    triples, people = family_triples(), family_people()
    assert len(people) == 24 and len({p.name for p in people}) == 24
    assert len(triples) == len(set(triples)) == 112  # 56 per family
    queries = family_queries()
    assert len(queries) == 104  # Hinton's 104 instances
    assert len(family_queries(("English",))) == len(family_queries(("Italian",))) == 52
    assert {r for _, r, _ in triples} == set(RELATIONS)
    assert queries[("Colin", "uncle")] == {"Arthur", "Charles"}
    assert queries[("Colin", "aunt")] == {"Jennifer", "Margaret"}
    assert ("Charlotte", "father", "James") in triples
    assert ("Penelope", "husband", "Christopher") in triples


def test_family_trees_relations_are_consistent():
    triples = set(family_triples())
    sex = {p.name: p.sex for p in family_people()}
    family = {p.name: p.family for p in family_people()}
    for h, r, t in triples:
        assert family[h] == family[t] and h != t
        assert sex[t] == ("m" if r in MALE else "f"), (h, r, t)
        if r in ("son", "daughter"):  # x's son is y => y's father/mother is x
            assert (t, "father" if sex[h] == "m" else "mother", h) in triples
        else:  # every other relation's inverse exists, with the right word for h's sex
            inverse = [q for q in INVERSE[r] if (q in MALE) == (sex[h] == "m")]
            assert len(inverse) == 1 and (t, inverse[0], h) in triples, (h, r, t)
        assert (t, r, h) not in triples or r in ("brother", "sister")
    # the two families are isomorphic under COUNTERPART
    english = {x for x in triples if family[x[0]] == "English"}
    italian = {x for x in triples if family[x[0]] == "Italian"}
    assert {(COUNTERPART[h], r, COUNTERPART[t]) for h, r, t in english} == italian
    # no relation is symmetric in these trees
    assert not any((t, r, h) in triples for h, r, t in triples)
    with pytest.raises(ValueError, match="unknown family 'French'"):
        family_triples(("French",))


# --- the index and bad input ----------------------------------------------------------------

def _index():
    return TripleIndex([p.name for p in family_people()], RELATIONS)


def test_index_round_trip_and_unknown_names():
    index = _index()
    triples = family_triples()
    ids = index.encode(triples)
    assert ids.shape == (112, 3) and ids.dtype == np.int64
    assert index.decode(ids) == triples
    with pytest.raises(UnknownSymbolError, match="unknown entity 'Bob'") as e:
        index.encode([("Colin", "father", "James"), ("Bob", "father", "James")])
    assert "triple 1 of 2" in str(e.value) and "('Bob', 'father', 'James')" in str(e.value)
    with pytest.raises(UnknownSymbolError, match="unknown relation 'cousin'"):
        index.encode([("Colin", "cousin", "James")])
    with pytest.raises(ShapeError, match="expected \\(head, relation, tail\\)"):
        index.encode([("Colin", "father")])
    model = TransE(24, 12, 4)
    with pytest.raises(UnknownSymbolError, match="relation id 12 outside \\[0, 12\\)"):
        model(np.array([[0, 12, 1]]))
    with pytest.raises(ShapeError, match="shape \\(n, 3\\).*got shape \\(4,\\)"):
        model(np.array([0, 1, 2, 3]))


# --- loss, scores and gradients against NumPy and PyTorch -----------------------------------

def test_margin_loss_against_numpy_and_torch():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=5), rng.normal(size=(5, 3))
    expected = np.maximum(0.0, 1.5 - pos[:, None] + neg).mean()
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        p = fg.tensor(pos.astype(dtype), requires_grad=True)
        n = fg.tensor(neg.astype(dtype), requires_grad=True)
        loss = triple_margin_loss(p, n, margin=1.5)
        assert abs(loss.item() - expected) < tol
        loss.backward()
        tp = torch.tensor(pos.astype(dtype), requires_grad=True)
        tn = torch.tensor(neg.astype(dtype), requires_grad=True)
        ref = torch.nn.functional.margin_ranking_loss(
            tp[:, None].expand(5, 3), tn, torch.ones(5, 3, dtype=tp.dtype), margin=1.5)
        ref.backward()
        assert abs(ref.item() - expected) < tol
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), atol=tol)
        np.testing.assert_allclose(n.grad.numpy(), tn.grad.numpy(), atol=tol)
    one = triple_margin_loss(fg.tensor([1.0, 0.0]), fg.tensor([0.5, -2.0]), margin=1.0)
    assert one.item() == pytest.approx((0.5 + 0.0) / 2)
    with pytest.raises(ShapeError, match="triple_margin_loss"):
        triple_margin_loss(fg.tensor([1.0, 0.0]), fg.tensor([0.5, 1.0, 2.0]))


def _torch_score(name, weights, ids, p=1):
    h, r, t = (torch.tensor(ids[:, k]) for k in range(3))
    e = weights["entity.weight"]
    if name == "transe":
        d = e[h] + weights["relation.weight"][r] - e[t]
        return -d.abs().sum(-1) if p == 1 else -((d * d).sum(-1) + 1e-12).sqrt()
    if name == "rescal":
        return torch.einsum("ni,nij,nj->n", e[h], weights["relation"][r], e[t])
    return (e[h] * weights["relation"][r] * e[t]).sum(-1)


@pytest.mark.parametrize("name,p", [("transe", 1), ("transe", 2), ("rescal", 1),
                                    ("distmult", 1)])
def test_scores_and_gradients_against_torch(name, p):
    fg.manual_seed(0)
    model = {"transe": lambda: TransE(5, 3, 4, p=p), "rescal": lambda: RESCAL(5, 3, 4),
             "distmult": lambda: DistMult(5, 3, 4)}[name]()
    ids = np.array([[0, 1, 2], [3, 0, 4], [2, 2, 2], [0, 1, 2], [4, 2, 1]])
    s = model(ids)
    (s * fg.tensor(np.arange(1, 6, dtype=np.float32))).sum().backward()
    weights = {k: torch.tensor(v.detach().numpy(), requires_grad=True)
               for k, v in model.state_dict().items()}
    ref = _torch_score(name, weights, ids, p)
    (ref * torch.arange(1, 6, dtype=torch.float32)).sum().backward()
    np.testing.assert_allclose(s.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    params = dict(model.named_parameters())
    for k, w in weights.items():
        np.testing.assert_allclose(params[k].grad.numpy(), w.grad.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)


def test_constraints_and_state_dict():
    fg.manual_seed(1)
    model = TransE(6, 2, 5)
    norms = np.linalg.norm(model.entity_vectors(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    rescal = RESCAL(6, 2, 3)
    with fg.no_grad():
        rescal.entity.weight.mul_(10.0)
    rescal.constrain_()
    assert np.linalg.norm(rescal.entity_vectors(), axis=1).max() <= 1.0 + 1e-5
    assert set(rescal.state_dict()) == {"entity.weight", "relation"}
    assert tuple(rescal.relation.shape) == (2, 3, 3)


# --- corruptions and ranking metrics --------------------------------------------------------

def test_corrupt_triples_changes_one_side_and_avoids_known():
    rng = np.random.default_rng(0)
    ids = _index().encode(family_triples())
    known = {tuple(t) for t in ids.tolist()}
    neg = corrupt_triples(ids, 24, rng, negatives=5, known=known)
    assert neg.shape == (112, 5, 3)
    same = neg == ids[:, None, :]
    assert same[:, :, 1].all()
    assert (same[:, :, 0] ^ same[:, :, 2]).all()  # exactly one of head and tail changed
    assert sum(tuple(c) in known for c in neg.reshape(-1, 3).tolist()) == 0
    heads = (~same[:, :, 0]).mean()
    assert 0.4 < heads < 0.6


def test_filtered_ranks_hand_example():
    # 4 entities, 1 relation; score of (h, 0, t) = table[h, t]
    table = np.array([[0.0, 5.0, 3.0, 5.0],
                      [1.0, 0.0, 2.0, 4.0],
                      [9.0, 1.0, 0.0, 1.0],
                      [0.0, 0.0, 0.0, 0.0]])

    def score(ids):
        return table[ids[:, 0], ids[:, 2]]

    known = {(0, 0, 1), (0, 0, 2), (2, 0, 3)}
    ranks = filtered_ranks(score, [(0, 0, 2), (2, 0, 3)], known, 4)
    # (0, 0, 2), tail side: candidates t = 0 (0.0), 1 (known, filtered), 2 (true, 3.0),
    # 3 (5.0, higher) -> rank 2. Head side: h = 0 (3.0), 1 (2.0), 2 (0.0), 3 (0.0) -> rank 1
    # (2, 0, 3), tail side: t = 0 (9.0 higher), 1 (1.0, a tie), 2 (0.0) -> 1 + 1 + 0.5 = 2.5
    # head side: h = 0 (5.0 higher), 1 (4.0 higher), 2 (true 1.0), 3 (0.0) -> rank 3
    np.testing.assert_allclose(ranks["tail"], [2.0, 2.5])
    np.testing.assert_allclose(ranks["head"], [1.0, 3.0])
    metrics = link_prediction(score, [(0, 0, 2), (2, 0, 3)], known, 4, ks=(1, 3))
    assert metrics["mean_rank"] == pytest.approx((2 + 2.5 + 1 + 3) / 4)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1 / 2.5 + 1 + 1 / 3) / 4)
    assert metrics["hits@1"] == pytest.approx(0.25) and metrics["hits@3"] == 1.0
    assert metrics["tail"]["mean_rank"] == pytest.approx(2.25)
    # a model that scores everything alike gets the middle rank
    flat = filtered_ranks(lambda ids: np.zeros(len(ids)), [(0, 0, 2)], known, 4)
    assert flat["tail"][0] == pytest.approx(1 + 0.5 * 2)


def test_rank_metrics_and_random_baseline():
    m = rank_metrics([1, 2, 5, 12], ks=(1, 3, 10))
    assert m == pytest.approx({"mean_rank": 5.0, "mrr": (1 + 0.5 + 0.2 + 1 / 12) / 4,
                               "hits@1": 0.25, "hits@3": 0.5, "hits@10": 0.75})
    # the expected metrics of a random ranking against a Monte-Carlo estimate
    ids = _index().encode(family_triples())[:10]
    known = {tuple(t) for t in _index().encode(family_triples()).tolist()}
    expected = random_ranking(ids, known, 24)
    rng = np.random.default_rng(0)
    draws = [link_prediction(lambda x: rng.random(len(x)), ids, known, 24)
             for _ in range(300)]
    for k in ("mean_rank", "mrr", "hits@1", "hits@3", "hits@10"):
        assert np.mean([d[k] for d in draws]) == pytest.approx(expected[k], rel=0.05), k
    # hand check for one query with C = 4 candidates left: (C + 1)/2, H_4/4, min(k, C)/C
    small = random_ranking([(0, 0, 2)], {(0, 0, 2)}, 4, ks=(1, 3))
    assert small["mean_rank"] == pytest.approx(2.5)
    assert small["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert small["hits@3"] == pytest.approx(0.75)


# --- learning ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [TransE, RESCAL])
def test_models_fit_the_english_family(cls):
    index = _index()
    ids = index.encode(family_triples(("English",)))
    known = {tuple(t) for t in ids.tolist()}
    fg.manual_seed(0)
    model = cls(24, 12, 12)
    before = link_prediction(model, ids, known, 24)["mrr"]
    hist = fit_triples(model, ids, 24, np.random.default_rng(0), steps=120, lr=0.03,
                       margin=1.0, negatives=4)
    after = link_prediction(model, ids, known, 24)
    assert hist["loss"][-1] < 0.3 * hist["loss"][0]
    assert after["mrr"] > 0.85 and after["mrr"] > before + 0.3, (before, after)


def test_fit_keeps_the_best_validation_checkpoint():
    index = _index()
    ids = index.encode(family_triples(("English",)))
    known = {tuple(t) for t in ids.tolist()}
    fg.manual_seed(0)
    model = TransE(24, 12, 8)
    hist = fit_triples(model, ids[6:], 24, np.random.default_rng(1), steps=60, lr=0.03,
                       valid=ids[:6], valid_known=known, eval_every=20)
    assert [s for s, _ in hist["valid"]] == [20, 40, 60]
    best_step, best = max(hist["valid"], key=lambda v: v[1])
    assert hist["best_step"] == min(s for s, v in hist["valid"] if v == best)
    assert link_prediction(model, ids[:6], known, 24)["mrr"] == pytest.approx(best)

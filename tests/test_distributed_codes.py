"""Distributed against local codes: the attribute generator, the held-out combinations, the two
output codes (losses and gradients against PyTorch) and learning on tiny data."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.representations.attributes import (
    AttributeGenerator,
    FactoredClassifier,
    LocalClassifier,
    all_correct,
    combination_attributes,
    combination_index,
    examples_to_reach,
    fit_attribute_classifier,
    split_combinations,
)


def test_combination_index_round_trip():
    gen = AttributeGenerator(3, n_values=3, dim=4)
    combos = gen.combinations()
    assert combos.shape == (27, 3)
    assert combos[5].tolist() == [0, 1, 2]  # base-3 digits, attribute 0 most significant
    np.testing.assert_array_equal(combination_index(combos, 3), np.arange(27))
    np.testing.assert_array_equal(combination_attributes(np.arange(27), 3, 3), combos)


def test_held_out_combinations_never_appear_in_training():
    rng = np.random.default_rng(0)
    seen, unseen = split_combinations(4, 2, 5, rng)
    assert len(seen) == 11 and len(unseen) == 5
    assert not {tuple(c) for c in seen} & {tuple(c) for c in unseen}
    assert {tuple(c) for c in seen} | {tuple(c) for c in unseen} == \
        {tuple(c) for c in AttributeGenerator(4).combinations()}
    for i in range(4):  # every value of every attribute is still seen
        assert set(seen[:, i]) == {0, 1}
    gen = AttributeGenerator(4, dim=8)
    x, attrs = gen.draw(seen, 500, rng)
    assert x.shape == (500, 8) and x.dtype == np.float32
    assert not {tuple(a) for a in attrs} & {tuple(c) for c in unseen}
    x, attrs = gen.draw(seen, 3, rng, per_combination=True)
    assert len(attrs) == 33
    counts = np.bincount(combination_index(attrs, 2), minlength=16)
    assert sorted(set(counts)) == [0, 3] and (counts[combination_index(unseen, 2)] == 0).all()
    with pytest.raises(ValueError, match="no split"):
        split_combinations(2, 2, 3, rng)  # one combination left cannot show both values


def test_generator_adds_one_pattern_per_attribute():
    rng = np.random.default_rng(1)
    for layout in ("mixed", "parts"):
        gen = AttributeGenerator(3, n_values=2, dim=6, noise=0.5, layout=layout, seed=3)
        attrs = np.array([[1, 0, 1]] * 20000)
        x = gen.sample(attrs, rng)
        parts = [gen.prototypes[i, v] for i, v in enumerate([1, 0, 1])]
        clean = np.sum(parts, 0) if layout == "mixed" else np.concatenate(parts)
        assert x.shape == (20000, gen.dim) and gen.dim == (6 if layout == "mixed" else 18)
        np.testing.assert_allclose(x.mean(0), clean, atol=0.02)
        np.testing.assert_allclose(x.std(0), 0.5, atol=0.02)
    with pytest.raises(ShapeError, match="expected attribute values of shape \\(n, 3\\)"):
        gen.sample(np.zeros((4, 2), dtype=int), rng)
    with pytest.raises(ValueError, match="integers in \\[0, 2\\)"):
        gen.sample(np.full((1, 3), 2), rng)
    with pytest.raises(ValueError, match="layout"):
        AttributeGenerator(3, layout="tiles")


def test_losses_and_predictions_against_numpy():
    fg.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    attrs = np.random.default_rng(1).integers(0, 3, (7, 2))
    factored = FactoredClassifier(5, 2, 3, hidden=(4,))
    logits = factored(fg.tensor(x)).detach().numpy().astype(np.float64)
    assert logits.shape == (7, 2, 3)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, attrs[:, :, None], -1).mean(0).sum()
    assert factored.loss(x, attrs).item() == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(factored.predict(x), logits.argmax(-1))
    local = LocalClassifier(5, 2, 3, hidden=(4,))
    logits = local(fg.tensor(x)).detach().numpy().astype(np.float64)
    assert logits.shape == (7, 9)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -logp[np.arange(7), combination_index(attrs, 3)].mean()
    assert local.loss(x, attrs).item() == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(local.predict(x),
                                  combination_attributes(logits.argmax(-1), 2, 3))
    with pytest.raises(ShapeError, match="FactoredClassifier"):
        factored.loss(x, attrs[:, :1])


@pytest.mark.parametrize("cls", [FactoredClassifier, LocalClassifier])
def test_gradients_against_torch(cls):
    fg.manual_seed(2)
    model = cls(6, 3, 2, hidden=(5,))
    x = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    attrs = np.random.default_rng(1).integers(0, 2, (9, 3))
    model.loss(x, attrs).backward()
    w = {k: torch.tensor(v.detach().numpy(), requires_grad=True)
         for k, v in model.state_dict().items()}
    h = torch.relu(torch.tensor(x) @ w["trunk.0.weight"].T + w["trunk.0.bias"])
    out = h @ w["head.weight"].T + w["head.bias"]
    if cls is FactoredClassifier:
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, 2),
                                                 torch.tensor(attrs.reshape(-1))) * 3
    else:
        loss = torch.nn.functional.cross_entropy(out, torch.tensor(combination_index(attrs,
                                                                                      2)))
    loss.backward()
    assert model.loss(x, attrs).item() == pytest.approx(loss.item(), rel=1e-5)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), w[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)


def test_factored_code_names_unseen_combinations_and_local_cannot():
    rng = np.random.default_rng(0)
    gen = AttributeGenerator(3, dim=16, seed=0)
    seen, unseen = split_combinations(3, 2, 2, rng)
    x, attrs = gen.draw(seen, 40, rng, per_combination=True)
    xv, av = gen.draw(seen, 10, rng, per_combination=True)
    xt, at = gen.draw(unseen, 50, rng, per_combination=True)
    acc = {}
    for cls in (FactoredClassifier, LocalClassifier):
        fg.manual_seed(0)
        model = cls(gen.dim, 3, hidden=(32,))
        hist = fit_attribute_classifier(model, x, attrs, rng, steps=150, lr=1e-2,
                                        valid=(xv, av))
        assert hist["loss"][-1] < 0.5 * hist["loss"][0]
        assert all_correct(model.predict(xv), av).mean() > 0.9  # the seen combinations
        acc[cls.__name__] = all_correct(model.predict(xt), at).mean()
    assert acc["FactoredClassifier"] > 0.7, acc
    assert acc["LocalClassifier"] < 0.05, acc


def test_all_correct_and_examples_to_reach():
    pred = np.array([[0, 1], [1, 1], [0, 0]])
    np.testing.assert_array_equal(all_correct(pred, [[0, 1], [1, 0], [0, 0]]),
                                  [True, False, True])
    with pytest.raises(ShapeError):
        all_correct(pred, [[0, 1]])
    budgets = [10, 100, 1000]
    assert examples_to_reach(budgets, [0.2, 0.5, 0.95], 0.2) == 10
    assert examples_to_reach(budgets, [0.2, 0.5, 0.95], 0.99) is None
    # halfway from 0.5 to 0.9 in accuracy is halfway from 100 to 1000 in log(budget)
    assert examples_to_reach(budgets, [0.2, 0.5, 0.9], 0.7) == pytest.approx(np.sqrt(1e5))

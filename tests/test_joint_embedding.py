"""Joint embeddings (lecture: "Maps Between Representations"): WARP and the ranking hinge
against direct NumPy computations and finite differences, precision@k by hand, the zero-shot
classifier, and the errors for bad input."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.errors import ShapeError
from flowgrad.representations.joint_embedding import (
    FASHION_MNIST_ATTRIBUTES,
    FASHION_MNIST_CLASSES,
    JointEmbedding,
    ZeroShotClassifier,
    fashion_mnist_attributes,
    precision_at_k,
    prototype_descriptions,
    rank_weight,
    ranking_hinge_loss,
    train_joint_embedding,
    warp_loss,
)


def _warp_direct(scores, target, margin, seed):
    """WARP written out example by example (Weston et al. 2011, Algorithm 1), reading the same
    pre-drawn negatives as the library: keep drawing until a violation or Y - 1 draws."""
    n, y_count = scores.shape
    draws = np.random.default_rng(seed).integers(0, y_count - 1, size=(n, y_count - 1))
    total = []
    for i in range(n):
        y, loss = target[i], 0.0
        for trial in range(y_count - 1):
            neg = draws[i, trial] + (draws[i, trial] >= y)
            violation = margin - scores[i, y] + scores[i, neg]
            if violation > 0:
                rank = (y_count - 1) // (trial + 1)
                loss = sum(1.0 / j for j in range(1, rank + 1)) * violation
                break
        total.append(loss)
    return np.array(total)


def test_rank_weight_is_the_harmonic_sum():
    assert rank_weight([0, 1, 2, 3]).tolist() == pytest.approx([0, 1, 1.5, 1 + 1 / 2 + 1 / 3])
    with pytest.raises(ValueError, match="rank_weight"):
        rank_weight([-1])


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_warp_loss_matches_a_direct_computation(margin):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(12, 7))
    target = rng.integers(0, 7, 12)
    got = warp_loss(fg.tensor(scores), target, margin, rng=5, reduction="none").numpy()
    want = _warp_direct(scores, target, margin, 5)
    assert np.allclose(got, want)
    assert (want > 0).any()
    mean = warp_loss(fg.tensor(scores), target, margin, rng=np.random.default_rng(5)).item()
    assert mean == pytest.approx(want.mean())


def test_warp_weight_follows_the_number_of_draws():
    """Only one negative violates: the draws it takes set the weight L(floor((Y-1)/N))."""
    y_count = 5
    scores = np.zeros((1, y_count))
    scores[0, 0] = 10.0  # the target, far above every negative ...
    scores[0, 3] = 10.5  # ... except label 3
    draws = np.random.default_rng(0).integers(0, y_count - 1, size=(1, y_count - 1))
    negatives = draws[0] + (draws[0] >= 0)
    hits = np.flatnonzero(negatives == 3)
    loss = warp_loss(fg.tensor(scores), [0], 1.0, rng=0).item()
    if len(hits) == 0:
        assert loss == 0.0
    else:
        n = hits[0] + 1
        assert loss == pytest.approx(rank_weight((y_count - 1) // n) * 1.5)


def test_warp_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    scores = fg.tensor(rng.normal(size=(6, 5)), requires_grad=True)
    target = rng.integers(0, 5, 6)
    assert gradcheck(lambda s: warp_loss(s, target, 0.5, rng=3), [scores])


def test_warp_gradient_is_minus_and_plus_the_weight():
    scores = fg.tensor(np.array([[0.0, 0.2, -3.0]]), requires_grad=True)
    # any draw order: label 1 violates (1 - 0 + 0.2 > 0); label 2 does not (1 - 0 - 3 < 0)
    warp_loss(scores, [0], 1.0, rng=0).backward()
    g = scores.grad.numpy()[0]
    draws = np.random.default_rng(0).integers(0, 2, size=(1, 2))[0] + 1
    n = int(np.flatnonzero(draws == 1)[0]) + 1 if (draws == 1).any() else 0
    w = rank_weight(2 // n) if n else 0.0
    assert np.allclose(g, [-w, w, 0.0])


def test_warp_seeded_by_flowgrad():
    scores = fg.tensor(np.random.default_rng(0).normal(size=(30, 10)))
    target = np.arange(30) % 10
    fg.manual_seed(7)
    a = warp_loss(scores, target, rng=None).item()
    fg.manual_seed(7)
    assert warp_loss(scores, target, rng=None).item() == a


def test_ranking_hinge_matches_numpy_and_torch(torch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 6))
    t = rng.integers(0, 6, 8)
    direct = np.array([sum(max(0.0, 1.0 - x[i, t[i]] + x[i, j]) for j in range(6) if j != t[i])
                       for i in range(8)])
    s = fg.tensor(x, requires_grad=True)
    loss = ranking_hinge_loss(s, t)
    assert loss.item() == pytest.approx(direct.mean())
    loss.backward()
    # torch's multi_margin_loss is the same sum divided by the number of classes
    xt = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.multi_margin_loss(xt, torch.tensor(t), margin=1.0) * 6).backward()
    assert np.allclose(s.grad.numpy(), xt.grad.numpy())
    s32 = fg.tensor(x.astype(np.float32))
    assert ranking_hinge_loss(s32, t, reduction="sum").dtype == fg.float32
    assert ranking_hinge_loss(s32, t, reduction="sum").item() == pytest.approx(direct.sum(),
                                                                               rel=1e-5)


def test_ranking_hinge_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    s = fg.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    assert gradcheck(lambda v: ranking_hinge_loss(v, [0, 1, 2, 3, 1], 0.7), [s])


def test_loss_bad_input():
    s = fg.tensor(np.zeros((3, 4)))
    with pytest.raises(ShapeError, match=r"warp_loss: target of shape \(2,\)"):
        warp_loss(s, [0, 1])
    with pytest.raises(IndexError, match="target class 4 outside"):
        ranking_hinge_loss(s, [0, 1, 4])
    with pytest.raises(ShapeError, match="at least 2 classes"):
        warp_loss(fg.tensor(np.zeros((3, 1))), [0, 0, 0])
    with pytest.raises(ValueError, match="reduction"):
        ranking_hinge_loss(s, [0, 1, 2], reduction="avg")


def test_precision_at_k_by_hand():
    scores = np.array([[0.9, 0.1, 0.5, 0.3],
                       [0.2, 0.8, 0.7, 0.1]])
    relevant = np.array([[1, 0, 0, 1],
                         [0, 0, 1, 1]], dtype=bool)
    # query 0: top-2 = items 0, 2 -> 1 relevant; top-3 = 0, 2, 3 -> 2
    # query 1: top-2 = items 1, 2 -> 1 relevant; top-3 = 1, 2, 0 -> 1
    assert precision_at_k(scores, relevant, 1) == pytest.approx((1 + 0) / 2)
    assert precision_at_k(scores, relevant, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert precision_at_k(scores, relevant, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    # one relevant item per query: precision@1 is the accuracy
    assert precision_at_k(scores, np.array([0, 2]), 1) == 0.5
    assert precision_at_k(scores, np.array([0, 2]), 2) == 0.5
    # ties: the lower index first
    assert precision_at_k(np.zeros((1, 3)), np.array([0]), 1) == 1.0
    with pytest.raises(ValueError, match="k = 5 outside"):
        precision_at_k(scores, relevant, 5)
    with pytest.raises(ShapeError, match="relevant of shape"):
        precision_at_k(scores, relevant[:, :3], 1)


def _identity_model(dim=2):
    return JointEmbedding(dim, dim, dim=dim, image_encoder=fg.nn.Identity(),
                          description_encoder=fg.nn.Identity())


def test_zero_shot_classifier_picks_the_nearest_description():
    model = _identity_model()
    descriptions = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z = ZeroShotClassifier(model, descriptions, classes=[7, 3, 5])
    images = np.array([[2.0, 0.1], [0.1, 3.0], [-1.0, -0.5], [0.2, 0.1]])
    assert z.predict(images).tolist() == [7, 3, 5, 7]
    assert z.predict(images, among=[3, 5]).tolist() == [3, 3, 5, 3]
    assert np.allclose(z.scores(images, among=[5, 7]), images @ descriptions[[2, 0]].T)
    assert z.accuracy(images, [7, 3, 5, 3]) == 0.75
    # calibrated stacking: a penalty on the seen classes moves the last image to class 3
    zc = ZeroShotClassifier(model, descriptions, [7, 3, 5], seen=[7], calibration=0.15)
    assert zc.predict(images).tolist() == [7, 3, 5, 3]


def test_zero_shot_bad_input():
    model = _identity_model()
    with pytest.raises(ShapeError, match=r"descriptions of shape \(2, 3\); expected \(classes, 2\)"):
        ZeroShotClassifier(model, np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="one distinct class id per row"):
        ZeroShotClassifier(model, np.zeros((2, 2)), [0, 0])
    z = ZeroShotClassifier(model, np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="class 4 has no description; described classes: "
                                         r"\[0, 1\]"):
        z.predict(np.zeros((1, 2)), among=[0, 4])
    with pytest.raises(ValueError, match="label 1 is not among the classes scored"):
        z.accuracy(np.zeros((2, 2)), [0, 1], among=[0])
    with pytest.raises(ShapeError, match="embed_descriptions"):
        model(np.zeros((1, 2)), np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="embed_images"):
        model(np.zeros((1, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="label 2 is not one of the classes described"):
        train_joint_embedding(model, np.zeros((2, 2), np.float32), np.array([0, 2]),
                              np.eye(2), [0, 1], epochs=1)


def test_fashion_mnist_attribute_table():
    table = fashion_mnist_attributes()
    assert table.shape == (len(FASHION_MNIST_CLASSES), len(FASHION_MNIST_ATTRIBUTES))
    assert len({tuple(r) for r in table}) == 10  # every class described differently
    assert table.sum(0).min() >= 1  # every attribute used by some class
    names = list(FASHION_MNIST_ATTRIBUTES)
    assert table[FASHION_MNIST_CLASSES.index("Ankle boot"), names.index("feet")] == 1


def test_prototype_descriptions_are_class_means():
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    p = prototype_descriptions(x, y, [1, 0], per_class=2)
    assert p.shape == (2, 4)
    assert np.allclose(p[0], x[[1, 3]].reshape(2, 4).mean(0))
    assert np.allclose(p[1], x[[0, 2]].reshape(2, 4).mean(0))
    with pytest.raises(ValueError, match="class 1 has 3 images, 4 asked"):
        prototype_descriptions(x, y, [1], per_class=4)


@pytest.mark.parametrize("loss", ["warp", "hinge"])
def test_zero_shot_on_synthetic_attributes(loss):
    """Inputs generated from 3 binary attributes; trained on 5 of the 8 combinations, the
    model classifies the 3 unseen combinations from their attribute vectors alone."""
    rng = np.random.default_rng(0)
    combos = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float32)
    mixing = rng.normal(size=(3, 12)).astype(np.float32)
    labels = rng.integers(0, 8, 1200)
    x = (combos[labels] @ mixing + 0.2 * rng.normal(size=(1200, 12))).astype(np.float32)
    held = [3, 5, 6]
    seen = [c for c in range(8) if c not in held]
    train = np.isin(labels, seen)
    fg.manual_seed(0)
    model = JointEmbedding(12, 3, dim=8, image_hidden=(16,))
    history = train_joint_embedding(model, x[train], labels[train], combos[seen], seen,
                                    loss=loss, epochs=8, batch_size=32, lr=1e-2)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    z = ZeroShotClassifier(model, combos, range(8))
    assert z.accuracy(x[~train], labels[~train], among=held) > 0.8

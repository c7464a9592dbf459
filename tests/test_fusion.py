"""Deep data fusion (lecture: "Deep Data Fusion"): tiling a non-spatial source at every
position, the fusion networks' shapes, learning on a tiny task that needs both sources, the
generated digit-context task, and the errors for bad input."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.errors import ShapeError
from flowgrad.representations.fusion import (
    FUSION_MODELS,
    ConvTrunk,
    digit_context_task,
    fuse_tiled,
    fusion_accuracy,
    fusion_model,
    tile,
    train_fusion,
)


def test_tile_copies_the_vector_at_every_position():
    v = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = tile(fg.tensor(v), 4, 5).numpy()
    assert t.shape == (2, 3, 4, 5)
    for i in range(4):
        for j in range(5):
            assert np.array_equal(t[:, :, i, j], v)


def test_tile_gradient_sums_over_positions():
    v = fg.tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    w = np.random.default_rng(1).normal(size=(2, 3, 4, 5))
    (tile(v, 4, 5) * fg.tensor(w)).sum().backward()
    assert np.allclose(v.grad.numpy(), w.sum((2, 3)))
    assert gradcheck(lambda x: tile(x, 2, 3), [v])


def test_fuse_tiled_concatenates_channels():
    rng = np.random.default_rng(2)
    fmap = fg.tensor(rng.normal(size=(2, 4, 3, 3)), requires_grad=True)
    vec = fg.tensor(rng.normal(size=(2, 2)), requires_grad=True)
    out = fuse_tiled(fmap, vec)
    assert out.shape == (2, 6, 3, 3)
    assert np.array_equal(out.detach().numpy()[:, :4], fmap.detach().numpy())
    assert np.array_equal(out.detach().numpy()[:, 4:, 1, 2], vec.detach().numpy())
    assert gradcheck(fuse_tiled, [fmap, vec])


@pytest.mark.parametrize("kind", FUSION_MODELS)
def test_fusion_models_shapes(kind):
    model = fusion_model(kind, 1, 3, 7, channels=(4, 8), hidden=16, image_size=12)
    out = model(fg.randn(5, 1, 12, 12), fg.randn(5, 3))
    assert out.shape == (5, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_tiled_fusion_at_a_later_block_and_pre_processing():
    model = fusion_model("tiled", 2, 3, 4, channels=(4, 8, 8), hidden=8, image_size=16,
                         fuse_at=2, vector_hidden=5)
    assert model.trunk.blocks[2].in_channels == 8 + 5
    assert model.trunk.blocks[0].in_channels == 2
    assert model(fg.randn(2, 2, 16, 16), fg.randn(2, 3)).shape == (2, 4)


def test_fusion_bad_input():
    model = fusion_model("tiled", 1, 3, 4, channels=(4,), hidden=8, image_size=8)
    with pytest.raises(ShapeError, match=r"TiledFusionNet: vector of shape \(2, 5\); expected "
                                         r"\(2, 3\)"):
        model(fg.randn(2, 1, 8, 8), fg.randn(2, 5))
    with pytest.raises(ShapeError, match="vector of shape None"):
        model(fg.randn(2, 1, 8, 8), None)
    with pytest.raises(ShapeError, match=r"image of shape \(2, 3, 8, 8\)"):
        model(fg.randn(2, 3, 8, 8), fg.randn(2, 3))
    with pytest.raises(ShapeError, match=r"vector of shape \(3, 3\)"):
        fusion_model("late", 1, 3, 4, (4,), 8, 8)(fg.randn(2, 1, 8, 8), fg.randn(3, 3))
    with pytest.raises(ShapeError, match="fuse_tiled"):
        fuse_tiled(fg.randn(2, 4, 3, 3), fg.randn(3, 2))
    with pytest.raises(ShapeError, match="tile: vector of shape"):
        tile(fg.randn(2, 3, 1), 2, 2)
    with pytest.raises(ValueError, match="unknown kind 'early'"):
        fusion_model("early", 1, 3, 4)
    with pytest.raises(ValueError, match="fuse_at = 2 outside"):
        ConvTrunk(1, (4, 8), extra_channels=2, fuse_at=2)
    with pytest.raises(ValueError, match="must be distinct"):
        digit_context_task(np.zeros((3, 1, 2, 2)), [1, 2, 3], shifts=(0, 0))


def test_digit_context_task_labels():
    digits = np.arange(200) % 10
    images, contexts, labels = digit_context_task(np.zeros((200, 1, 2, 2)), digits,
                                                  shifts=(0, 1, 3, 6), seed=0)
    assert contexts.shape == (200, 4) and np.all(contexts.sum(1) == 1)
    shift = np.array([0, 1, 3, 6])[contexts.argmax(1)]
    assert np.array_equal(labels, (digits + shift) % 10)
    # neither source determines the label: one digit, several labels; one context, several
    assert len(np.unique(labels[digits == 4])) > 1
    assert len(np.unique(labels[contexts[:, 0] == 1])) > 1


def _xor_task(n, seed):
    """A bright pixel at the left or the right of an 8x8 image, and a one-hot flag: the label
    is (side XOR flag); neither source alone is better than chance."""
    rng = np.random.default_rng(seed)
    side, flag = rng.integers(0, 2, n), rng.integers(0, 2, n)
    images = 0.1 * rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    images[np.arange(n), 0, rng.integers(2, 6, n), np.where(side == 0, 1, 6)] += 1.0
    return images, np.eye(2, dtype=np.float32)[flag], (side ^ flag).astype(np.int64)


def test_tiled_fusion_learns_what_one_source_cannot():
    train, test = _xor_task(256, 0), _xor_task(200, 1)
    acc = {}
    for kind in ("tiled", "image"):
        fg.manual_seed(0)
        model = fusion_model(kind, 1, 2, 2, channels=(8, 8), hidden=16, image_size=8)
        history = train_fusion(model, *train, epochs=12, batch_size=32, lr=1e-2, seed=0)
        acc[kind] = fusion_accuracy(model, *test)
        if kind == "tiled":
            assert history["train_loss"][-1] < 0.2
    assert acc["tiled"] > 0.9
    assert acc["image"] < 0.7

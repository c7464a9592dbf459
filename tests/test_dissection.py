"""Network dissection (Bau et al. 2017) and the generated scenes it is measured on: IoU against
a direct computation, a unit equal to a concept's mask, quantile thresholds, bilinear
upsampling against PyTorch, masks and scene labels of the generator, errors."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.datasets.scenes import OBJECTS, SCENE_TYPES, scene_label, scenes
from flowgrad.errors import ShapeError
from flowgrad.representations.dissection import (
    activation_maps,
    detector_shares,
    dissect,
    iou,
    permutation_test,
    threshold_maps,
    unit_thresholds,
    upsample_maps,
)


@pytest.fixture(scope="module")
def small_scenes():
    return scenes(24, size=32, seed=5)


def test_iou_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    active = rng.random((3, 2, 5, 5)) < 0.3
    masks = rng.random((3, 4, 5, 5)) < 0.4
    masks[:, 3] = False
    got = iou(active, masks)
    assert got.shape == (2, 4)
    for u in range(2):
        for c in range(4):
            inter = sum(np.sum(active[i, u] & masks[i, c]) for i in range(3))
            union = sum(np.sum(active[i, u] | masks[i, c]) for i in range(3))
            assert got[u, c] == pytest.approx(inter / union if union else 0.0)
    # a hand-made case: 2 of 4 active pixels on a 3-pixel mask -> 2 / 5
    a = np.zeros((1, 1, 2, 3), bool)
    m = np.zeros((1, 1, 2, 3), bool)
    a[0, 0, 0, :2] = a[0, 0, 1, :2] = True
    m[0, 0, 0, 1:] = True
    m[0, 0, 1, 1] = True
    assert iou(a, m)[0, 0] == pytest.approx(2 / 5)


def test_a_unit_equal_to_a_concept_mask_detects_exactly_that_concept(small_scenes):
    s = small_scenes
    maps = s.masks.astype(np.float32)  # unit k's map is concept k's mask
    d = dissect(maps, s.masks, s.objects)
    np.testing.assert_allclose(np.diag(d.iou), 1.0)
    off = d.iou[~np.eye(len(OBJECTS), dtype=bool)]
    assert np.all(off == 0.0)  # the masks of different classes are disjoint
    assert list(d.best_concept) == list(range(len(OBJECTS)))
    assert d.detectors().all() and d.share() == 1.0
    assert d.concept_counts() == {c: 1 for c in OBJECTS}
    noise = np.random.default_rng(0).random(maps.shape).astype(np.float32)
    shares = detector_shares({"masks": d, "noise": dissect(noise, s.masks, s.objects)})
    assert shares["masks"] == 1.0 and shares["noise"] == 0.0
    # the same maps at half resolution, upsampled back: the top quantile keeps the interiors,
    # still inside their own concept only
    half = maps.reshape(len(s), len(OBJECTS), 16, 2, 16, 2).mean((3, 5))
    d2 = dissect(half, s.masks, s.objects)
    assert list(d2.best_concept) == list(range(len(OBJECTS)))
    assert np.all(np.diag(d2.iou) > 0) and np.all(d2.iou[~np.eye(4, dtype=bool)] == 0)


def test_thresholds_are_the_units_quantile_and_dead_units_are_active_nowhere():
    rng = np.random.default_rng(1)
    maps = rng.random((10, 3, 4, 4)).astype(np.float32)
    maps[:, 2] = 0.0  # a dead unit
    t = unit_thresholds(maps, 0.9)
    for u in range(3):
        assert t[u] == pytest.approx(np.quantile(maps[:, u], 0.9))
    active = threshold_maps(maps, t)
    frac = active.mean(axis=(0, 2, 3))
    assert frac[0] == pytest.approx(0.1, abs=0.01) and frac[1] == pytest.approx(0.1, abs=0.01)
    assert frac[2] == 0.0
    np.testing.assert_array_equal(active[:, 0], maps[:, 0] >= t[0])


def test_upsampling_shape_and_values_match_torch_bilinear():
    rng = np.random.default_rng(2)
    maps = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    up = upsample_maps(maps, (8, 10))
    assert up.shape == (2, 3, 8, 10)
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps), size=(8, 10),
                                          mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(up, ref, rtol=1e-5, atol=1e-6)
    assert upsample_maps(maps, 7).shape == (2, 3, 7, 7)
    assert upsample_maps(maps, (4, 5)) is maps or np.array_equal(upsample_maps(maps, (4, 5)),
                                                                 maps)


def test_scene_masks_match_the_drawn_pixels():
    s = scenes(40, size=32, seed=3, texture=0.0, noise=0.0, min_contrast=0.35)
    background = np.array([np.median(img[0][~m.any(0)]) for img, m in zip(s.images, s.masks)])
    diff = np.abs(s.images[:, 0] - background[:, None, None])
    inside = s.masks.any(1)
    assert np.all(s.masks.sum(1) <= 1)  # classes never share a pixel
    assert np.all(diff[inside] >= 0.35 / 2 - 1e-4)  # object covers >= half the pixel
    assert np.all(inside[diff > 0.5 + 1e-4])  # covered > half by any object: in its mask
    assert np.all(~inside[diff < 1e-6])  # untouched background: in no mask
    np.testing.assert_array_equal(s.masks.any((2, 3)), s.counts > 0)


def test_scene_labels_follow_the_co_occurrence_definition(small_scenes):
    s = small_scenes
    present = s.masks.any((2, 3))
    np.testing.assert_array_equal(scene_label(present), s.labels)
    for label, row in zip(s.labels, present):
        assert {OBJECTS[c] for c in np.flatnonzero(row)} == set(SCENE_TYPES[label])
    assert np.bincount(s.labels, minlength=len(SCENE_TYPES)).tolist() == [4] * 6
    assert s.counts.max() <= 2 and s.images.shape == (24, 1, 32, 32)
    assert s.images.dtype == np.float32 and 0.0 <= s.images.min() <= s.images.max() <= 1.0
    # custom types: three objects make a scene, a set of no type is -1
    types = (("circle", "square", "bar"), ("triangle",))
    assert scene_label([[1, 1, 0, 1], [0, 0, 2, 0], [1, 0, 0, 0]], types).tolist() == [0, 1, -1]
    t = scenes(6, size=32, seed=0, scene_types=types)
    np.testing.assert_array_equal(scene_label(t.counts, types), t.labels)
    np.testing.assert_array_equal(scenes(6, seed=9).images, scenes(6, seed=9).images)


def test_activation_maps_are_read_with_hooks():
    from flowgrad.recipes.concept_units import SceneNet

    fg.manual_seed(0)
    model = SceneNet((2, 3, 4, 4))
    images = np.random.default_rng(0).random((5, 1, 32, 32)).astype(np.float32)
    maps = activation_maps(model, model.layers(), images, batch_size=2)
    assert {k: v.shape for k, v in maps.items()} == {
        "conv1": (5, 2, 32, 32), "conv2": (5, 3, 16, 16), "conv3": (5, 4, 8, 8),
        "conv4": (5, 4, 8, 8)}
    assert all(v.min() >= 0 for v in maps.values())  # after the ReLUs
    assert not model.relus[0]._forward_hooks  # the hooks are removed


def test_permutation_test_one_sided():
    a, b = np.r_[np.ones(30), np.zeros(10)], np.r_[np.ones(5), np.zeros(35)]
    r = permutation_test(a, b, n_permutations=2000)
    assert r["difference"] == pytest.approx(0.625) and r["p_value"] < 0.001
    assert permutation_test(b, a, n_permutations=2000)["p_value"] > 0.99
    with pytest.raises(ValueError, match="both samples"):
        permutation_test([], b)


def test_bad_input_gives_clear_errors(small_scenes):
    maps = np.zeros((3, 2, 8, 8), np.float32)
    with pytest.raises(ShapeError, match=r"\(3, 2, 8, 8\).*\(3, 4, 32, 32\)"):
        iou(maps > 0, np.zeros((3, 4, 32, 32), bool))
    with pytest.raises(ShapeError, match=r"\(4, 4, 32, 32\).*\(3, 2, 8, 8\)"):
        dissect(maps, np.zeros((4, 4, 32, 32), bool))
    with pytest.raises(ShapeError, match="expected \\(N, units, height, width\\)"):
        upsample_maps(np.zeros((2, 8, 8)), 16)
    with pytest.raises(ShapeError, match="one per unit"):
        threshold_maps(maps, np.zeros(3))
    with pytest.raises(ValueError, match="quantile"):
        unit_thresholds(maps, 1.5)
    with pytest.raises(ValueError, match="3 concept names"):
        dissect(maps, np.zeros((3, 4, 8, 8), bool), concepts=("a", "b", "c"))
    with pytest.raises(ValueError, match="same classes"):
        scenes(4, scene_types=(("circle", "bar"), ("bar", "circle")))
    with pytest.raises(ValueError, match="scene type"):
        scenes(4, scene_types=(("circle", "hexagon"),))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        scene_label(np.zeros((2, 3)))

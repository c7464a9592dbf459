"""The task generators of flowgrad.datasets.modular_tasks: shapes, dtypes, determinism by seed,
and each task's semantics checked by a direct computation (official data definitions of
anirudh9119/RIMs and anirudh9119/shared_workspace)."""

import itertools

import numpy as np
import pytest

from flowgrad.datasets import modular_tasks as mt


def test_exported_from_datasets():
    import flowgrad.datasets as ds

    for name in ("copying", "adding_k", "seq_mnist", "bouncing_balls", "triangles",
                 "sort_of_clevr"):
        assert getattr(ds, name) is getattr(mt, name)


# --- copying ---------------------------------------------------------------------------------

def test_copying_layout_matches_official():
    T, L = 7, 10
    x, y = mt.copying(50, T, seq_len=L, seed=3)
    assert x.shape == y.shape == (50, T + 2 * L) and x.dtype == y.dtype == np.int64
    assert ((x[:, :L] >= 1) & (x[:, :L] <= 8)).all()
    assert (x[:, L:L + T - 1] == 0).all() and (x[:, L + T - 1] == 9).all()
    assert (x[:, L + T:] == 0).all()
    assert (y[:, :L + T] == 0).all()
    np.testing.assert_array_equal(y[:, -L:], x[:, :L])  # the targets are the inputs, shifted
    assert y.max() < mt.COPYING_CLASSES
    assert set(np.unique(x[:, :L])) == set(range(1, 9))


def test_copying_deterministic_and_T1():
    a, b = mt.copying(4, 3, seed=1), mt.copying(4, 3, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], mt.copying(4, 3, seed=2)[0])
    x, _ = mt.copying(2, 1, seq_len=3)
    assert (x[:, 3] == 9).all()  # T = 1: the marker follows the digits at once


@pytest.mark.parametrize("kwargs", [dict(n=0, dormant_T=5), dict(n=2, dormant_T=0),
                                    dict(n=2, dormant_T=5, seq_len=0)])
def test_copying_bad_input(kwargs):
    with pytest.raises(ValueError, match="copying"):
        mt.copying(**kwargs)


# --- adding ----------------------------------------------------------------------------------

def test_adding_k_exact_sum_and_marker_count():
    x, y, k = mt.adding_k(200, 30, k_values=(2, 4, 10), seed=0)
    assert x.shape == (200, 30, 2) and y.shape == (200,) and k.shape == (200,)
    assert x.dtype == y.dtype == np.float32 and k.dtype == np.int64
    markers = x[..., 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(1), k)  # exactly k marked positions
    assert set(np.unique(k)) == {2, 4, 10}
    expected = np.array([x[i, markers[i] == 1, 0].astype(np.float64).sum() for i in range(200)])
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()


def test_adding_k_positions_cover_the_sequence_and_seed():
    x, _, _ = mt.adding_k(2000, 20, k_values=(1,), seed=5)
    counts = x[..., 1].sum(0)
    assert (counts > 50).all()  # every position gets marked (uniform: 100 each on average)
    a, b = mt.adding_k(5, 20, (3,), seed=9), mt.adding_k(5, 20, (3,), seed=9)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("k_values", [(0,), (11,), ()])
def test_adding_k_bad_k(k_values):
    with pytest.raises(ValueError, match="k_values"):
        mt.adding_k(3, 10, k_values)


def test_adding_two_markers_official_layout():
    x, y = mt.adding_two_markers(100, 50, seed=2)
    assert x.shape == (100, 50, 3) and y.shape == (100,)
    np.testing.assert_array_equal(x[..., 1].sum(1), 1)
    np.testing.assert_array_equal(x[..., 2].sum(1), 1)
    i1, i2 = x[..., 1].argmax(1), x[..., 2].argmax(1)
    assert (i1 < 25).all() and (i2 >= 25).all()
    rows = np.arange(100)
    np.testing.assert_allclose(y, x[rows, i1, 0] + x[rows, i2, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="length"):
        mt.adding_two_markers(3, 1)


# --- sequential MNIST ------------------------------------------------------------------------

def test_resample_nearest_doubles_14_to_28():
    img = np.random.default_rng(0).random((3, 14, 14))
    out = mt.resample_nearest(img, 28)
    direct = np.repeat(np.repeat(img, 2, axis=1), 2, axis=2)  # each pixel becomes a 2x2 block
    np.testing.assert_array_equal(out, direct)
    np.testing.assert_array_equal(mt.resample_nearest(out, 14), img)


@pytest.mark.parametrize("size", [14, 16, 19, 24, 28])
def test_resample_nearest_matches_torch(size):
    torch = pytest.importorskip("torch")
    img = np.random.default_rng(1).random((2, 1, 28, 28)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(img), size=(size, size),
                                          mode="nearest").numpy()
    np.testing.assert_array_equal(mt.resample_nearest(img, size), ref)


def test_seq_mnist_from_images_matches_official_prep():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(4, 28, 28)).astype(np.uint8)
    for size in (14, 16, 19, 24):
        got = mt.seq_mnist_from_images(images, size)
        d = torch.from_numpy(images[:, None].astype(np.float32) / 255.0)  # ToTensor
        d = torch.nn.functional.interpolate(d.round(), size=(size, size), mode="nearest")
        ref = d.reshape(4, size * size).round().to(torch.int64).numpy()
        assert got.dtype == np.int64 and got.shape == (4, size * size)
        np.testing.assert_array_equal(got, ref)


def test_seq_mnist_loads_the_data():
    try:
        x, y = mt.seq_mnist(train=False, resolution=19, limit=20)
    except Exception as e:  # the IDX files are not on this machine
        pytest.skip(f"MNIST not available: {e}")
    assert x.shape == (20, 361) and x.dtype == np.int64 and y.shape == (20,)
    assert set(np.unique(x)) <= {0, 1} and 0 < x.mean() < 0.5
    assert y.dtype == np.int64 and (y >= 0).all() and (y <= 9).all()


def test_seq_mnist_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        mt.seq_mnist_from_images(np.zeros((28, 28)), 14)


# --- bouncing balls --------------------------------------------------------------------------

def _energy(v, masses=None):
    m = np.ones(v.shape[-2]) if masses is None else np.asarray(masses)
    return 0.5 * (m[:, None] * v ** 2).sum(axis=(-2, -1))


def test_bouncing_balls_shapes_box_and_energy():
    data = mt.bouncing_balls(6, steps=60, n_balls=4, size=32, radius=0.1, seed=0,
                             speed=(0.04, 0.08))
    assert data.frames.shape == (6, 60, 32, 32) and data.frames.dtype == np.float32
    assert data.positions.shape == data.velocities.shape == (6, 60, 4, 2)
    assert set(np.unique(data.frames)) <= {0.0, 1.0}
    p = data.positions
    assert (p >= 0.1 - 1e-12).all() and (p <= 0.9 + 1e-12).all()  # the balls stay in the box
    e = _energy(data.velocities)
    np.testing.assert_allclose(e, e[:, :1].repeat(60, 1), rtol=1e-10)  # elastic: energy kept
    v = data.velocities
    changed = np.linalg.norm(v[:, 1:] - v[:, :-1], axis=-1) > 1e-9
    assert changed.any()  # there were collisions
    # no overlaps beyond what one integration substep can produce
    d = np.linalg.norm(p[:, :, :, None] - p[:, :, None], axis=-1)
    d[..., np.arange(4), np.arange(4)] = np.inf
    assert d.min() > 2 * 0.1 - 0.08 / 8 * 2


def test_bouncing_balls_deterministic_and_more_balls():
    a = mt.bouncing_balls(2, steps=5, n_balls=7, size=16, seed=4)
    b = mt.bouncing_balls(2, steps=5, n_balls=7, size=16, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.positions.shape == (2, 5, 7, 2)


def test_ball_collision_conserves_momentum_and_energy():
    masses = np.array([1.0, 3.0])
    pos = np.array([[[0.35, 0.50], [0.65, 0.52]]])
    vel = np.array([[[0.04, 0.0], [-0.02, 0.005]]])
    p, v = mt.simulate_balls(1, 5, 2, radius=0.1, masses=masses, initial=(pos, vel),
                             substeps=20)
    # free flight until they touch (gap 0.1 closes at 0.06 per frame), then one collision
    # before any wall is reached
    assert not np.allclose(v[0, -1], vel[0])
    momentum = (masses[:, None] * v[0]).sum(1)
    np.testing.assert_allclose(momentum, momentum[:1].repeat(5, 0), atol=1e-15)
    e = _energy(v[0], masses)
    np.testing.assert_allclose(e, e[0], rtol=1e-12)
    assert (p[0, :, 0, 0] < 0.9).all() and (p[0, :, 1, 0] < 0.9).all()


def test_equal_masses_head_on_swap_velocities():
    pos = np.array([[[0.3, 0.5], [0.6, 0.5]]])
    vel = np.array([[[0.05, 0.0], [-0.05, 0.0]]])
    _, v = mt.simulate_balls(1, 3, 2, radius=0.1, initial=(pos, vel), substeps=10)
    np.testing.assert_allclose(v[0, -1], vel[0, ::-1], atol=1e-15)


def test_wall_reflection():
    pos = np.array([[[0.85, 0.5]]])
    vel = np.array([[[0.1, 0.0]]])
    p, v = mt.simulate_balls(1, 2, 1, radius=0.1, initial=(pos, vel), substeps=1)
    np.testing.assert_allclose(p[0, 1, 0], [0.85, 0.5])  # 0.95 mirrored at 0.9
    np.testing.assert_allclose(v[0, 1, 0], [-0.1, 0.0])


def test_render_balls_direct():
    frames = mt.render_balls(np.array([[[0.5, 0.25]]]), radius=0.2, size=8)
    rows, cols = np.mgrid[0:8, 0:8]
    direct = ((cols + 0.5) / 8 - 0.5) ** 2 + ((rows + 0.5) / 8 - 0.25) ** 2 <= 0.04
    np.testing.assert_array_equal(frames[0], direct.astype(np.float32))
    assert frames[0, :4].sum() > frames[0, 4:].sum()  # y is the row: the ball is near the top


@pytest.mark.parametrize("kwargs, match", [
    (dict(radius=0.6), "radius"), (dict(n_balls=0), "n_balls"),
    (dict(n_balls=40, radius=0.2), "n_balls=40"), (dict(speed=(0.5, 0.1)), "speed"),
    (dict(masses=[1.0, -1.0, 1.0, 1.0]), "masses")])
def test_simulate_balls_bad_input(kwargs, match):
    args = dict(n=2, steps=3, n_balls=4) | kwargs
    with pytest.raises(ValueError, match=match):
        mt.simulate_balls(**args)


# --- triangles -------------------------------------------------------------------------------

def test_triangles_labels_agree_with_side_lengths():
    data = mt.triangles(400, seed=0)
    assert data.images.shape == (400, 1, 64, 64) and data.images.dtype == np.float32
    assert data.labels.dtype == np.int64 and 0.35 < data.labels.mean() < 0.65
    v = data.vertices.astype(np.float64)
    sides = np.array([[np.hypot(*(v[i, a] - v[i, b])) for a, b in ((0, 1), (0, 2), (1, 2))]
                      for i in range(400)])
    spread = sides.max(1) - sides.min(1)
    eq = data.labels == 1
    assert (spread[eq] < mt.EQUILATERAL_TOLERANCE).all()
    assert (spread[~eq] >= mt.EQUILATERAL_TOLERANCE).all()
    assert (sides[eq].min(1) > 0).all()
    assert ((data.vertices >= 1) & (data.vertices <= 63)).all()


def test_triangles_dots_drawn_at_the_vertices():
    data = mt.triangles(20, seed=1)
    assert set(np.unique(data.images)) == {0.0, 1.0}
    for img, vert in zip(data.images[:, 0], data.vertices):
        for x, y in vert:
            if 0 <= x < 64 and 0 <= y < 64:
                assert img[y, x] == 1.0  # row y, column x
        rows, cols = np.nonzero(img)
        d = np.min([np.hypot(cols - x, rows - y) for x, y in vert], axis=0)
        assert d.max() <= 1 * np.sqrt(2) + 2.5  # every lit pixel near a vertex cluster


def test_triangles_deterministic_and_bad_input():
    a, b = mt.triangles(5, seed=3), mt.triangles(5, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    with pytest.raises(ValueError, match="points_per_cluster"):
        mt.triangles(2, points_per_cluster=3)


# --- Sort-of-CLEVR ---------------------------------------------------------------------------

def _direct_answer(kind, q, centers, shapes, size=75):
    """The official generator's rules, written out per question with loops."""
    a = int(np.argmax(q[:6]))
    sub = int(np.argmax(q[15:18]))
    c = [np.asarray(p, dtype=np.float64) for p in centers]
    if kind == "norel":
        return [2 + shapes[a], 0 if c[a][0] < size / 2 else 1,
                0 if c[a][1] < size / 2 else 1][sub]
    if kind == "binary":
        d = [((c[a] - c[j]) ** 2).sum() if j != a else np.inf for j in range(6)]
        far = [((c[a] - c[j]) ** 2).sum() for j in range(6)]
        if sub == 0:
            return 2 + shapes[int(np.argmin(d))]
        if sub == 1:
            return 2 + shapes[int(np.argmax(far))]
        return 4 + sum(shapes[j] == shapes[a] for j in range(6) if j != a)
    b = int(np.argmax(q[6:12]))
    A, B = c[a], c[b]
    others = [c[j] for j in range(6) if j not in (a, b)]
    if sub == 0:
        return 4 + sum(min(A[0], B[0]) <= o[0] <= max(A[0], B[0])
                       and min(A[1], B[1]) <= o[1] <= max(A[1], B[1]) for o in others)
    if sub == 1:
        m = (B[1] - A[1]) / ((B[0] - A[0]) + 1e-10)
        k = A[1] - m * A[0]
        return 0 if any(abs(o[1] - (m * o[0] + k)) <= 12 for o in others) else 1
    count = 0
    for C in others:  # law of cosines, degrees, as the official code
        la, lb, lc = np.linalg.norm(B - C), np.linalg.norm(C - A), np.linalg.norm(A - B)
        cosines = [(lb ** 2 + lc ** 2 - la ** 2) / (2 * lb * lc),
                   (la ** 2 + lc ** 2 - lb ** 2) / (2 * la * lc),
                   (la ** 2 + lb ** 2 - lc ** 2) / (2 * la * lb)]
        angle = max(np.degrees(np.arccos(np.clip(cosines, -1, 1))))
        count += 90 - 1e-9 <= angle < 180 - 1e-9
    return 4 + count


def test_sort_of_clevr_answers_by_direct_computation():
    data = mt.sort_of_clevr(25, questions_per_kind=12, seed=0)
    assert data.images.shape == (25, 3, 75, 75) and data.images.dtype == np.float32
    assert data.centers.shape == (25, 6, 2) and data.shapes.shape == (25, 6)
    for kind, kind_index in zip(("norel", "binary", "ternary"), range(3)):
        qs, ans = data.questions[kind], data.answers[kind]
        assert qs.shape == (25, 12, 18) and ans.shape == (25, 12) and ans.dtype == np.int64
        np.testing.assert_array_equal(qs[..., 12 + kind_index], 1)
        np.testing.assert_array_equal(qs[..., :6].sum(-1), 1)
        np.testing.assert_array_equal(qs[..., 15:].sum(-1), 1)
        np.testing.assert_array_equal(qs[..., 6:12].sum(-1), 1 if kind == "ternary" else 0)
        for i, j in itertools.product(range(25), range(12)):
            expected = _direct_answer(kind, qs[i, j], data.centers[i], data.shapes[i])
            assert ans[i, j] == expected, (kind, i, j)
    ternary = data.questions["ternary"]
    assert (ternary[..., 5] == 0).all() and (ternary[..., 11] == 0).all()  # official: 5 colours
    assert (ternary[..., :6].argmax(-1) != ternary[..., 6:12].argmax(-1)).all()


def test_sort_of_clevr_objects_drawn():
    data = mt.sort_of_clevr(10, questions_per_kind=1, seed=2)
    colors = np.array(list(mt.SORT_OF_CLEVR_COLORS.values())) / 255.0
    c = data.centers
    d2 = ((c[:, :, None] - c[:, None]) ** 2).sum(-1) + 10 ** 6 * np.eye(6)
    assert (d2 >= 100).all()  # centres at least 2 * object_size apart
    assert ((c >= 5) & (c < 70)).all()
    for i in range(10):
        img = data.images[i]
        np.testing.assert_allclose(img[:, 0, 0], 1.0)  # white background in the corner
        for j, (x, y) in enumerate(c[i]):
            # the last-drawn object owns its centre pixel; earlier ones can be covered
            covered = any(np.abs(c[i, k] - [x, y]).max() <= 5 for k in range(j + 1, 6))
            if not covered:
                np.testing.assert_allclose(img[:, y, x], colors[j], atol=1e-6)
        square = data.shapes[i] == 0
        for j in np.nonzero(square)[0]:
            x, y = c[i, j]
            covered = any(np.abs(c[i, k] - [x, y]).max() <= 11 for k in range(j + 1, 6))
            if not covered and 0 <= x + 5 < 75 and 0 <= y + 5 < 75:
                np.testing.assert_allclose(img[:, y + 5, x + 5], colors[j], atol=1e-6)


def test_sort_of_clevr_deterministic_and_bad_input():
    a, b = mt.sort_of_clevr(3, seed=7), mt.sort_of_clevr(3, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.answers["binary"], b.answers["binary"])
    only = mt.sort_of_clevr(2, kinds=("norel",))
    assert set(only.questions) == {"norel"}
    with pytest.raises(ValueError, match="kinds"):
        mt.sort_of_clevr(2, kinds=("quaternary",))
    with pytest.raises(ValueError, match="size=20"):
        mt.sort_of_clevr(2, size=20)

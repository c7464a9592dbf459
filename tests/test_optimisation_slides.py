"""The optimisation slides as tools: Hessian probes (saddle points), the cost of a gradient
(why backprop is powerful), the shape generators (curriculum, guided training) and the quick
variants of their recipes."""

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn
from flowgrad.datasets.shapes import (
    basic_shapes,
    cells,
    geom_shapes,
    pentomino,
    shapes,
)
from flowgrad.debug.cost import gradient_cost, loglog_slope
from flowgrad.debug.hessian import (
    critical_point_report,
    hessian_dense,
    hessian_eigs,
    hessian_vector_product,
    spectrum_fraction_below,
)
from flowgrad.models import MLP

# --- Hessian ------------------------------------------------------------------------------------


def _quadratic(n, seed=0, negatives=None):
    """A symmetric A (with ``negatives`` negative eigenvalues when given) and θ."""
    rng = np.random.default_rng(seed)
    if negatives is None:
        A = rng.standard_normal((n, n))
        A = (A + A.T) / 2
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        w = rng.uniform(0.5, 2.0, n)
        w[:negatives] *= -1
        A = (Q * w) @ Q.T
    return A


class _Vector(nn.Module):
    """model(x) = θ, so loss_fn(model(x), A) = ½ θᵀAθ has Hessian A."""

    def __init__(self, n):
        super().__init__()
        self.theta = nn.Parameter(fg.tensor(np.random.default_rng(1).standard_normal(n)))

    def forward(self, x):
        return self.theta


def _half_quadratic(out, A):
    return 0.5 * (out @ (A @ out))


def test_hvp_matches_exact_hessian_of_quadratic():
    A = _quadratic(7)
    rng = np.random.default_rng(2)
    theta = fg.tensor(rng.standard_normal(7), requires_grad=True)
    b = fg.tensor(rng.standard_normal(7))
    At = fg.tensor(A)

    def loss():
        return 0.5 * (theta @ (At @ theta)) + (b * theta).sum()

    v = rng.standard_normal(7)
    np.testing.assert_allclose(hessian_vector_product(loss, [theta], v), A @ v, atol=1e-7)
    as_list = hessian_vector_product(loss, [theta], [v])  # the list form round-trips
    assert isinstance(as_list, list) and as_list[0].shape == (7,)
    np.testing.assert_allclose(as_list[0], A @ v, atol=1e-7)
    np.testing.assert_allclose(hessian_dense(loss, [theta]), A, atol=1e-7)
    assert np.all(hessian_vector_product(loss, [theta], np.zeros(7)) == 0)
    with pytest.raises(ValueError, match="entries"):
        hessian_vector_product(loss, [theta], np.ones(6))


def _loss_fd_hessian(loss, params, h=1e-4):
    """Dense Hessian from second differences of the loss alone (independent of backprop)."""
    flats = [p._data.reshape(-1) for p in params]
    index = [(i, k) for i, f in enumerate(flats) for k in range(f.size)]
    n = len(index)

    def at(moves):
        saved = [(flats[i], k, flats[i][k]) for (i, k), _ in moves]
        for ((i, k), d) in moves:
            flats[i][k] += d
        with fg.no_grad():
            val = loss().item()
        for f, k, s in saved:
            f[k] = s
        return val

    H = np.empty((n, n))
    for a in range(n):
        for b in range(a, n):
            ia, ib = index[a], index[b]
            if a == b:
                H[a, a] = (at([(ia, h)]) - 2 * at([]) + at([(ia, -h)])) / h ** 2
            else:
                H[a, b] = H[b, a] = (at([(ia, h), (ib, h)]) - at([(ia, h), (ib, -h)])
                                     - at([(ia, -h), (ib, h)]) + at([(ia, -h), (ib, -h)])
                                     ) / (4 * h * h)
    return H


def test_hvp_matches_dense_fd_hessian_of_tiny_tanh_net():
    fg.manual_seed(3)
    model = MLP(sizes=(3, 4, 2), activation="tanh").double()
    rng = np.random.default_rng(0)
    x = fg.tensor(rng.standard_normal((8, 3)))
    y = fg.tensor(rng.integers(0, 2, 8))
    params = list(model.parameters())

    def loss():
        return F.cross_entropy(model(x), y)

    before = [p._data.copy() for p in params]
    H = hessian_dense(loss, params)
    H_fd = _loss_fd_hessian(loss, params)
    assert H.shape == (26, 26)
    np.testing.assert_allclose(H, H_fd, atol=2e-5)
    v = rng.standard_normal(26)
    np.testing.assert_allclose(hessian_vector_product(loss, params, v), H_fd @ v, atol=1e-4)
    for p, b in zip(params, before):  # parameters restored bit for bit
        assert np.array_equal(p._data, b)


def test_hessian_eigs_lanczos_matches_dense_spectrum():
    fg.manual_seed(0)
    model = MLP(sizes=(5, 8, 3), activation="tanh")  # float32 model, probed in float64
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((40, 5)).astype(np.float32), rng.integers(0, 3, 40))
    dense = hessian_eigs(model, F.cross_entropy, batch, k=75, method="dense")
    w = dense.bottom  # all 75 eigenvalues, ascending
    assert dense.n_params == 75 and np.all(np.diff(w) >= 0)
    lanczos = hessian_eigs(model, F.cross_entropy, batch, k=3, method="lanczos")
    assert lanczos.method == "lanczos" and lanczos.matvecs < 75 * 4
    np.testing.assert_allclose(lanczos.top, w[::-1][:3], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(lanczos.bottom, w[:3], rtol=1e-5, atol=1e-8)
    assert lanczos.min < 0 < lanczos.max  # a random net sits near saddles
    top = hessian_eigs(model, F.cross_entropy, batch, k=2, which="top", method="lanczos",
                       return_vectors=True)
    assert top.bottom.size == 0 and top.vectors["top"].shape == (75, 2)
    assert model.training  # probed on a copy: mode and weights untouched


def test_critical_point_report_index_on_known_spectrum():
    n, neg = 60, 15
    A = _quadratic(n, seed=4, negatives=neg)
    model = _Vector(n)
    batch = (np.zeros(1), A)
    exact = critical_point_report(model, _half_quadratic, batch, k=3)
    assert exact.exact and exact.index == pytest.approx(neg / n)
    assert exact.bottom[0] < 0 < exact.top[0] and exact.is_saddle
    g = A @ model.theta._data
    assert exact.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-9)
    slq = critical_point_report(model, _half_quadratic, batch, k=3, dense_limit=0, probes=10,
                                steps=40)
    assert not slq.exact and abs(slq.index - neg / n) < 0.08
    np.testing.assert_allclose(slq.bottom[0], exact.bottom[0], rtol=1e-6)
    frac = spectrum_fraction_below(model, _half_quadratic, batch, 0.0, probes=10, steps=40)
    assert abs(frac - neg / n) < 0.08
    pos = critical_point_report(_Vector(20), _half_quadratic,
                                (np.zeros(1), _quadratic(20, seed=5, negatives=0)))
    assert pos.index == 0 and not pos.is_saddle  # a minimum


# --- the cost of a gradient ---------------------------------------------------------------------


def test_gradient_cost_backprop_slope_below_finite_differences(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    cost = gradient_cost(lambda w: MLP(sizes=(8, w, 4)), [2, 4, 8, 16], (x, y),
                         fd_max_params=None, fd_time_budget=None, repeats=2, min_time=0.005,
                         dtype=np.float64, eps=1e-6)
    assert [r["n_params"] for r in cost.rows] == [30, 56, 108, 212]
    assert not any(r["extrapolated"] for r in cost.rows)
    assert all(r["fd_rel_error"] < 1e-5 for r in cost.rows)  # FD computes the same gradient
    # counted, not timed (wall-clock slopes flip under CPU load): FD makes two loss
    # evaluations per parameter, backprop one forward and one backward pass whatever n
    assert [r["fd_evaluations"] for r in cost.rows] == [60, 112, 216, 424]
    assert all(r["passes"]["backprop"] == 2 for r in cost.rows)
    work = cost.work_slopes
    assert work["forward"] == pytest.approx(1.0) and work["backprop"] == pytest.approx(1.0)
    assert work["finite_differences"] == pytest.approx(2.0)
    assert set(cost.slopes) == {"forward", "backprop", "finite_differences"}
    assert all(np.isfinite(v) for v in cost.slopes.values())
    assert "slopes" in cost.to_markdown()
    assert (tmp_path / "c.png").exists() is False
    cost.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert loglog_slope([10, 100, 1000], [1, 100, 10000]) == pytest.approx(2.0)


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [basic_shapes, geom_shapes])
def test_shapes_deterministic_balanced_and_in_range(make):
    x, y = make(301, size=16, seed=7)
    x2, y2 = make(301, size=16, seed=7)
    x3, _ = make(301, size=16, seed=8)
    assert x.shape == (301, 1, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert np.bincount(y).tolist() == [101, 100, 100]
    assert x.min() >= 0 and x.max() <= 1
    if make is basic_shapes:  # white on black, no noise: corners are background
        assert np.all(x[:, 0, 0, 0] == 0) and x.max() == 1
        areas = [x[y == c].sum(axis=(1, 2, 3)).mean() for c in range(3)]
        assert max(areas) / min(areas) < 1.15  # equal areas by construction
    else:
        assert np.std(x[:, 0, 0, 0]) > 0.1  # random backgrounds


def test_shapes_split_and_flatten():
    s = shapes(30, 12, "basic", size=12, seed=3, flatten=True)
    (xtr, ytr), (xte, yte) = s
    assert xtr.shape == (30, 144) and xte.shape == (12, 144)
    assert not np.array_equal(xtr[:12], xte)
    with pytest.raises(ValueError, match="stage"):
        shapes(3, 3, "hard")


def test_pentomino_labels_follow_the_intermediate_concept():
    x, y, parts = pentomino(400, seed=5)
    x2, y2, parts2 = pentomino(400, seed=5)
    assert np.array_equal(x, x2) and np.array_equal(parts, parts2)
    assert x.shape == (400, 1, 24, 24) and np.bincount(y).tolist() == [200, 200]
    assert np.all((parts > 0).sum(1) == 3)
    for yi, p in zip(y, parts):
        kinds = set(p[p > 0].tolist())
        assert yi == (len(kinds) == 1)
    c = cells(x)
    assert c.shape == (400, 9, 64)
    assert np.array_equal(c.sum(-1) > 0, parts > 0)  # a sprite where the part label says
    assert np.all(c.sum(-1)[parts > 0] == 5)  # pentominoes: five squares


# --- the recipes' quick variants learn ----------------------------------------------------------


def test_noise_injection_quick(tmp_path):
    from flowgrad.recipes import noise_injection

    s = noise_injection.run(out=str(tmp_path), quick=True, progress=False, write=True)
    assert s["gradient_noise_train_loss_mean"] < 2.2  # log 10 = 2.303 at chance
    assert s["gradient_noise_test_error_mean"] < 0.85  # chance 0.9
    assert (tmp_path / "noise_injection.md").exists()
    assert (tmp_path / "noise_injection.json").exists()


def test_curriculum_quick(tmp_path):
    from flowgrad.recipes import curriculum

    s = curriculum.run(out=str(tmp_path), quick=True, progress=False, write=True)
    assert s["no_curriculum_test_error_mean"] < 0.6  # chance 2/3
    assert s["curriculum_0.5_test_error_mean"] < 0.62
    assert "curriculum_0.5" in s["tests"]
    assert (tmp_path / "curriculum.png").exists()


def test_guided_training_quick(tmp_path):
    from flowgrad.recipes import guided_training

    s = guided_training.run(out=str(tmp_path), quick=True, progress=False)
    assert s["guided_test_error_mean"] < 0.4  # chance 0.5
    assert s["guided_cell_accuracy_after_pretraining"][0] > 0.5  # chance 1/11


def test_saddle_points_quick(tmp_path):
    from flowgrad.recipes import saddle_points

    s = saddle_points.run(out=str(tmp_path), quick=True, progress=False, write=True)
    assert s["final_loss_mean"] < s["initial_loss_mean"] - 0.5
    assert s["initial_index_mean"] > 0.05  # the plateau near the origin is a saddle
    assert s["final_index_mean"] < s["initial_index_mean"]
    assert (tmp_path / "saddle_points.md").exists()


def test_backprop_cost_quick(tmp_path):
    from flowgrad.recipes import backprop_cost

    s = backprop_cost.run(out=str(tmp_path), quick=True, progress=False)
    assert s["backprop_slope"] < s["finite_differences_slope"]

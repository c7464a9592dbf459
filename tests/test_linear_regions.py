"""The linear-region counter of flowgrad.representations.regions (Montúfar, Pascanu, Cho & Bengio
2014) against analytic counts: the tent-map net of depth L has 2^L regions on [0, 1], one hidden
layer of n units at most n + 1 on a line (exactly n + 1 when built so), the folding nets reach
the paper's lower bound, n lines in the plane cut 1 + n + (crossings inside) regions; the 1-D walk
against dense sampling, the exact 2-D count against the grid enumeration; the composed tent map
and its fitting experiment; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import nn
from flowgrad.representations.regions import (
    count_linear_regions,
    linear_regions_1d,
    linear_regions_2d,
    montufar_lower_bound,
    network_steps,
    pattern_image,
    shallow_max_regions,
)
from flowgrad.representations.tent_map import (
    fit_units_to_error,
    folding_network,
    tent,
    tent_map,
    tent_network,
)


def _net(widths, n0=1, act=nn.ReLU, seed=0):
    fg.manual_seed(seed)
    layers, fan_in = [], n0
    for w in widths:
        layers += [nn.Linear(fan_in, w, dtype=fg.float64), act()]
        fan_in = w
    return nn.Sequential(*layers, nn.Linear(fan_in, 1, dtype=fg.float64))


def _set(linear, w, b):
    linear.weight.data = fg.tensor(np.asarray(w, dtype=np.float64))
    linear.bias.data = fg.tensor(np.asarray(b, dtype=np.float64))


def _sampled_patterns(model, a, b, n):
    """Activation patterns at n evenly spaced points of the segment (by running the model)."""
    from flowgrad.representations.regions import _forward_patterns

    t = np.linspace(0, 1, n)[:, None]
    x = np.atleast_1d(a) + t * (np.atleast_1d(b) - np.atleast_1d(a))
    return _forward_patterns(network_steps(model), x)


# --- analytic counts on a line ------------------------------------------------------------------

@pytest.mark.parametrize("depth", range(1, 9))
def test_tent_network_computes_the_tent_map_with_two_to_the_depth_regions(depth):
    net = tent_network(depth, dtype=fg.float64)
    x = np.linspace(0, 1, 2049)
    with fg.no_grad():
        y = net(fg.tensor(x[:, None])).numpy()[:, 0]
    np.testing.assert_allclose(y, tent_map(x, depth), atol=1e-12)
    r = linear_regions_1d(net, 0.0, 1.0)
    assert r.count == 2 ** depth == r.function_pieces
    np.testing.assert_allclose(r.breakpoints, np.arange(1, 2 ** depth) / 2 ** depth, atol=1e-12)
    assert count_linear_regions(net, segment=(0, 1)) == 2 ** depth


def test_tent_map_has_two_to_the_depth_minus_one_teeth():
    assert tent(0.25) == 0.5 and tent(0.75) == 0.5 and tent(0.5) == 1.0
    for depth in (1, 3, 5):
        peaks = (2 * np.arange(2 ** (depth - 1)) + 1) / 2 ** depth
        np.testing.assert_allclose(tent_map(peaks, depth), 1.0)
        np.testing.assert_allclose(tent_map(np.arange(2 ** (depth - 1) + 1) / 2 ** (depth - 1),
                                            depth), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="depth"):
        tent_map(0.5, 0)


@pytest.mark.parametrize("seed", range(5))
def test_one_hidden_layer_has_at_most_n_plus_one_regions_on_a_line(seed):
    n = 7
    net = _net([n], seed=seed)
    r = linear_regions_1d(net, -5.0, 5.0)
    w = net[0].weight.detach().numpy()[:, 0]
    b = net[0].bias.detach().numpy()
    kinks = -b / w
    assert r.count == 1 + int(np.sum((kinks > -5) & (kinks < 5))) <= n + 1
    np.testing.assert_allclose(r.breakpoints * 10 - 5, np.sort(kinks[(kinks > -5) & (kinks < 5)]),
                               atol=1e-10)


def test_one_hidden_layer_built_for_n_plus_one_regions_has_exactly_that():
    for n in (1, 4, 11):
        net = _net([n])
        _set(net[0], np.ones((n, 1)), -np.arange(1, n + 1) / (n + 1))
        _set(net[2], (-1.0) ** np.arange(n)[None, :], [0.0])
        r = linear_regions_1d(net, 0, 1)
        assert r.count == n + 1 == shallow_max_regions(1, n) == r.function_pieces


@pytest.mark.parametrize("widths", [[3], [3, 3], [4, 2], [2, 3, 4], [5, 5, 5], [2] * 6])
def test_folding_networks_reach_the_lower_bound_of_montufar_et_al(widths):
    net = folding_network(widths, dtype=fg.float64)
    assert count_linear_regions(net, segment=(0, 1)) == montufar_lower_bound(1, widths)


def test_lower_bound_and_shallow_maximum_by_hand():
    assert montufar_lower_bound(1, [3, 3]) == 3 * 4
    assert montufar_lower_bound(2, [4, 4, 3]) == 2 ** 2 * 2 ** 2 * (1 + 3 + 3)
    assert montufar_lower_bound(2, [5, 3]) == 2 ** 2 * 7  # floor(5 / 2) = 2
    assert montufar_lower_bound(3, [6]) == shallow_max_regions(3, 6) == 1 + 6 + 15 + 20
    assert shallow_max_regions(2, 1) == 2
    n, layers = 8, 4  # Corollary 5's form for n_i = n: (n/n0)^{(L-1) n0} Σ_j C(n, j)
    assert montufar_lower_bound(2, [n] * layers) == (n // 2) ** (2 * (layers - 1)) * sum(
        math.comb(n, j) for j in range(3))
    with pytest.raises(ValueError, match="widths"):
        montufar_lower_bound(3, [4, 2])


# --- the 1-D walk against sampling --------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_exact_walk_agrees_with_dense_sampling_and_finds_true_crossings(seed):
    net = _net([6, 6, 6], seed=seed)
    a, b = -3.0, 3.0
    r = linear_regions_1d(net, a, b)
    sampled = _sampled_patterns(net, a, b, 200_001)
    changes = 1 + int(np.sum(np.any(sampled[1:] != sampled[:-1], axis=1)))
    assert changes <= r.count and r.count - changes <= 1  # sampling can only miss
    # every breakpoint is where some unit's pre-activation is zero
    steps = network_steps(net)
    for t in r.breakpoints:
        h, zeros = np.array([[a + t * (b - a)]]), []
        for step in steps:
            if step[0] == "affine":
                h = h @ step[1].T + step[2]
                zeros.append(np.abs(h).min())
            else:
                h = np.maximum(h, 0)
        assert min(zeros) < 1e-9
    # the patterns of the pieces: neighbours differ, and each matches a sample inside it
    assert all((p != q).any() for p, q in zip(r.patterns[:-1], r.patterns[1:]))
    mids = np.concatenate([[0.0], r.breakpoints, [1.0]])
    mids = 0.5 * (mids[:-1] + mids[1:])
    idx = np.round(mids * 200_000).astype(int)
    np.testing.assert_array_equal(np.stack(r.patterns), sampled[idx])


def test_segment_in_a_higher_dimensional_input_space():
    net = _net([5, 5], n0=3, seed=4)
    a, b = np.array([-2.0, 0.5, 1.0]), np.array([2.0, -1.0, 0.0])
    r = linear_regions_1d(net, a, b)
    sampled = _sampled_patterns(net, a, b, 100_001)
    assert r.count == 1 + int(np.sum(np.any(sampled[1:] != sampled[:-1], axis=1)))


def test_leaky_relu_and_hardtanh_units():
    n = 5
    leaky = _net([n], act=lambda: nn.LeakyReLU(0.1))
    relu = _net([n])
    assert count_linear_regions(leaky, segment=(-4, 4)) == count_linear_regions(
        relu, segment=(-4, 4))
    ht = nn.Sequential(nn.Linear(1, n, dtype=fg.float64), nn.Hardtanh(),
                       nn.Linear(n, 1, dtype=fg.float64))
    _set(ht[0], np.ones((n, 1)), -np.arange(n) * 3.0)  # kinks at k*3 - 1 and k*3 + 1
    assert count_linear_regions(ht, segment=(-10, 20)) == 2 * n + 1
    deep = nn.Sequential(nn.Linear(1, 4, dtype=fg.float64), nn.ReLU6(),
                         nn.Linear(4, 4, dtype=fg.float64), nn.LeakyReLU(),
                         nn.Linear(4, 1, dtype=fg.float64))
    sampled = _sampled_patterns(deep, -20.0, 20.0, 200_001)
    changes = 1 + int(np.sum(np.any(sampled[1:] != sampled[:-1], axis=1)))
    assert 0 <= count_linear_regions(deep, segment=(-20, 20)) - changes <= 1


# --- 2-D ------------------------------------------------------------------------------------------

def _analytic_lines(w, b, box):
    """1 + n + (pairwise crossings inside the box) for lines w_i · x + b_i = 0 that all cross
    the open box (a line arrangement in general position)."""
    (x0, x1), (y0, y1) = box
    inside = 0
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            p = np.linalg.solve(np.stack([w[i], w[j]]), -np.array([b[i], b[j]]))
            inside += x0 < p[0] < x1 and y0 < p[1] < y1
    return 1 + len(b) + inside


@pytest.mark.parametrize("seed", range(3))
def test_one_hidden_layer_in_the_plane_matches_the_line_arrangement(seed):
    n, box = 6, ((-1.0, 1.0), (-1.0, 1.0))
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, np.pi, n)
    w = np.stack([np.cos(angles), np.sin(angles)], 1)
    b = rng.uniform(-0.5, 0.5, n)  # every line passes within 0.5 of the centre: crosses the box
    net = _net([n], n0=2)
    _set(net[0], w, b)
    exact = linear_regions_2d(net, box)
    assert exact.count == _analytic_lines(w, b, box) <= shallow_max_regions(2, n)
    assert len({p.tobytes() for p in exact.patterns}) == exact.count
    area = sum(0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1))
                         - np.dot(p[:, 1], np.roll(p[:, 0], -1))) for p in exact.polygons)
    assert area == pytest.approx(4.0, rel=1e-9)
    assert linear_regions_2d(net, box, method="grid", resolution=120).count == exact.count


@pytest.mark.parametrize("seed", range(2))
def test_exact_2d_count_against_the_grid_enumeration(seed):
    net = _net([6, 6], n0=2, seed=seed)
    box = ((-2.0, 2.0), (-2.0, 2.0))
    exact = linear_regions_2d(net, box)
    coarse = linear_regions_2d(net, box, method="grid", resolution=20)
    fine = linear_regions_2d(net, box, method="grid", resolution=150)
    exact_set = {p.tobytes() for p in exact.patterns}
    assert {p.tobytes() for p in fine.patterns} <= exact_set  # the grid finds only real ones
    assert coarse.count <= fine.count <= exact.count
    assert exact.count - fine.count <= 1
    image = pattern_image(net, box, resolution=100)
    assert image.shape == (100, 100) and len(np.unique(image)) <= exact.count
    assert count_linear_regions(net, domain=box) == exact.count


def test_a_plane_through_a_higher_dimensional_input_space():
    net = _net([4, 4], n0=3, seed=1)
    plane = (np.zeros(3), [1.0, 0.0, 0.0], [0.0, 1.0, 1.0])
    exact = linear_regions_2d(net, ((-1, 1), (-1, 1)), plane=plane)
    grid = linear_regions_2d(net, ((-1, 1), (-1, 1)), method="grid", resolution=80, plane=plane)
    assert 1 <= grid.count <= exact.count


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid, nn.GELU])
def test_non_piecewise_linear_units_are_refused_by_name(act):
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 3), act(), nn.Linear(3, 1))
    with pytest.raises(TypeError, match=rf"module 3 \({act.__name__}\) is not piecewise linear"):
        count_linear_regions(net, segment=(0, 1))


def test_other_bad_input():
    with pytest.raises(TypeError, match="nn.Sequential.*Linear"):
        count_linear_regions(nn.Linear(1, 1), segment=(0, 1))
    net = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(TypeError, match=r"Dropout.*eval"):
        count_linear_regions(net, domain=((0, 1), (0, 1)))
    net.eval()
    assert count_linear_regions(net, domain=((0, 1), (0, 1))) >= 1
    with pytest.raises(ValueError, match="exactly one"):
        count_linear_regions(net)
    with pytest.raises(ValueError, match="2 inputs.*3"):
        count_linear_regions(_net([3], n0=3), domain=((0, 1), (0, 1)))
    with pytest.raises(ValueError, match="3-dimensional"):
        count_linear_regions(_net([3], n0=3), segment=([0, 0], [1, 1]))
    with pytest.raises(ValueError, match="x0 < x1"):
        count_linear_regions(net, domain=((1, 0), (0, 1)))
    with pytest.raises(ValueError, match="'exact' or 'grid'"):
        count_linear_regions(net, domain=((0, 1), (0, 1)), method="sampled")


# --- the fitting experiment -----------------------------------------------------------------------

def test_units_to_error_finds_the_first_architecture_that_fits():
    res = fit_units_to_error(1, [[1], [8]], target_mse=0.01, seeds=2, n_train=128, n_valid=32,
                             n_test=257, steps=300, lr=3e-2)
    assert res["units"] == 8 and [r["units"] for r in res["rows"]] == [1, 8]
    assert res["rows"][0]["test_mse"] > 0.01 >= res["rows"][1]["test_mse"]
    assert len(res["rows"][1]["valid_mse_per_seed"]) == 2

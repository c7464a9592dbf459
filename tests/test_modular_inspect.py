"""flowgrad.modular.inspect: activation maps and attention heatmaps are written, ball events are
exact on hand-made trajectories, and the ball-following score measures what its docstring says
(mutual information, normalised, and correlation checked against direct computations)."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.datasets import modular_tasks as mt
from flowgrad.errors import ShapeError
from flowgrad.modular import inspect as ins

# --- figures ---------------------------------------------------------------------------------

def test_activation_map_written(tmp_path):
    masks = np.random.default_rng(0).random((12, 3, 6)) < 0.5
    for sample in (0, 2, "mean"):
        path = tmp_path / f"map_{sample}.png"
        fig = ins.activation_map(masks, sample=sample, path=path)
        assert path.stat().st_size > 1000 and fig.axes
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, masks.mean(1).T)  # modules as rows, steps as columns
    fig = ins.activation_map(fg.tensor(masks[:, 0].astype(np.float32)))  # (T, K), a Tensor
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), masks[:, 0].T)


def test_activation_map_bad_input():
    with pytest.raises(ShapeError, match=r"\(T, B, K\)"):
        ins.activation_map(np.zeros(5))
    with pytest.raises(ValueError, match="sample=7"):
        ins.activation_map(np.zeros((4, 2, 3)), sample=7)


def test_attention_heatmap_select(tmp_path):
    attn = np.random.default_rng(1).random((10, 2, 4, 2))  # (T, B, K, [null, input])
    path = tmp_path / "attn.png"
    fig = ins.attention_heatmap(attn, select=(slice(None), 1, slice(None), 1), path=path,
                                xlabel="module", ylabel="step", x_labels="abcd")
    assert path.exists()
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), attn[:, 1, :, 1])
    comm = np.random.default_rng(2).random((2, 4, 5, 5))
    fig = ins.attention_heatmap(comm, select=(0, 3))
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), comm[0, 3])
    with pytest.raises(ShapeError, match=r"\(2, 4, 5, 5\)"):
        ins.attention_heatmap(comm)


def test_input_activity():
    attn = np.random.default_rng(3).random((3, 2, 4, 2))
    np.testing.assert_array_equal(ins.input_activity(attn), attn[..., 1])
    with pytest.raises(ShapeError, match="null"):
        ins.input_activity(np.zeros((3, 4, 3)))


# --- ball events -----------------------------------------------------------------------------

def test_collision_events_on_a_wall_bounce():
    pos = np.array([[[0.85, 0.5]]])
    vel = np.array([[[0.04, 0.0]]])
    p, _ = mt.simulate_balls(1, 8, 1, radius=0.1, initial=(pos, vel), substeps=4)
    # x: 0.85, 0.89, the bounce inside the next interval (0.93 -> 0.87), 0.83, ...: the
    # displacements +0.04, -0.02, -0.04, ... change around steps 1 and 2
    np.testing.assert_allclose(p[0, :4, 0, 0], [0.85, 0.89, 0.87, 0.83])
    events = ins.ball_events(p)  # (T, B, N)
    assert events.shape == (8, 1, 1) and events.dtype == bool
    np.testing.assert_array_equal(np.nonzero(events[:, 0, 0])[0], [1, 2])
    single = ins.ball_events(p[0])
    np.testing.assert_array_equal(single, events[:, 0])


def test_collision_events_match_simulated_velocity_changes():
    data = mt.bouncing_balls(3, steps=40, n_balls=4, size=8, seed=1, speed=(0.03, 0.06),
                             substeps=1)
    events = ins.ball_events(data.positions)
    v = data.velocities.transpose(1, 0, 2, 3)  # (T, B, N, 2)
    changed = np.zeros(events.shape, dtype=bool)  # the velocity changed between t - 1 and t
    changed[1:] = np.linalg.norm(v[1:] - v[:-1], axis=-1) > 1e-9
    assert changed.any() and not events[0].any() and not events[-1].any()
    # every collision is an event at its step, and every event is within one step of one
    np.testing.assert_array_equal(events[1:-1] | changed[1:-1], events[1:-1])
    near = changed.copy()
    near[:-1] |= changed[1:]
    assert (near[events]).all()


def test_region_events():
    p = np.array([[0.1, 0.1], [0.45, 0.2], [0.7, 0.7]])[None]  # one step, three balls
    ev = ins.ball_events(p, kind="region", region=(0.0, 0.0, 0.4, 0.4), radius=0.06)
    np.testing.assert_array_equal(ev, [[True, True, False]])
    with pytest.raises(ValueError, match="region"):
        ins.ball_events(p, kind="region")
    with pytest.raises(ValueError, match="kind='speed'"):
        ins.ball_events(p, kind="speed")
    with pytest.raises(ShapeError, match="positions"):
        ins.ball_events(np.zeros((4, 3)))


# --- the ball-following score ----------------------------------------------------------------

def _mi_direct(a, e):
    total = 0.0
    for va in (0, 1):
        for ve in (0, 1):
            pj = np.mean((a == va) & (e == ve))
            if pj > 0:
                total += pj * np.log2(pj / (np.mean(a == va) * np.mean(e == ve)))
    return total


def test_score_finds_the_followed_ball():
    rng = np.random.default_rng(0)
    events = rng.random((50, 8, 3)) < 0.3  # (T, B, balls)
    activity = np.stack([events[..., 2], ~events[..., 0], rng.random((50, 8)) < 0.5,
                         np.zeros((50, 8), dtype=bool)], axis=-1)  # (T, B, 4 modules)
    out = ins.ball_following_score(activity, events)
    assert out["matrix"].shape == (4, 3)
    assert out["ball"][0] == 2 and out["ball"][1] == 0
    np.testing.assert_allclose(out["score"][:2], 1.0)  # a function of the event: NMI 1
    assert out["score"][2] < 0.05  # independent
    np.testing.assert_array_equal(out["matrix"][3], 0.0)  # a constant module
    mi = ins.ball_following_score(activity, events, measure="mi")["matrix"]
    a, e = activity.reshape(-1, 4), events.reshape(-1, 3)
    for k in range(4):
        for j in range(3):
            assert mi[k, j] == pytest.approx(_mi_direct(a[:, k], e[:, j]), abs=1e-12)


def test_score_correlation_and_thresholds():
    rng = np.random.default_rng(1)
    activity = rng.random((30, 5))  # (T, K) soft activity, e.g. input attention weights
    events = rng.random((30, 2))
    corr = ins.ball_following_score(activity, events, measure="correlation")["matrix"]
    direct = np.corrcoef(activity.T, events.T)[:5, 5:]
    np.testing.assert_allclose(corr, direct, atol=1e-12)
    binary = (activity[:, :1] > 0.7)
    mi = ins.ball_following_score(activity, binary, measure="mi", threshold=0.7)["matrix"]
    assert mi[0, 0] == pytest.approx(_mi_direct(binary[:, 0], binary[:, 0]))


def test_score_bad_input():
    with pytest.raises(ShapeError, match="leading axes"):
        ins.ball_following_score(np.zeros((5, 2, 3)), np.zeros((6, 2, 1)))
    with pytest.raises(ValueError, match="measure='kl'"):
        ins.ball_following_score(np.zeros((5, 3)), np.zeros((5, 1)), measure="kl")


def test_score_on_generated_balls():
    data = mt.bouncing_balls(4, steps=30, n_balls=4, size=8, seed=2, speed=(0.04, 0.08))
    events = ins.ball_events(data.positions)
    activity = np.concatenate([events[..., ::-1], np.ones(events.shape[:2] + (1,), bool)], -1)
    out = ins.ball_following_score(activity, events)
    np.testing.assert_array_equal(out["ball"][:4], [3, 2, 1, 0])
    np.testing.assert_allclose(out["score"][:4], 1.0)
    assert out["score"][4] == 0.0


def test_attention_ball_overlap():
    positions = np.array([[[[0.25, 0.25], [0.75, 0.75]]] * 2])  # (B=1, T=2, 2 balls, 2)
    maps = np.zeros((2, 1, 3, 8, 8))  # (T, B, K, H, W)
    maps[:, 0, 0, 2, 2] = 1.0  # module 0 on ball 0 (pixel centre (0.3125, 0.3125))
    maps[:, 0, 1, 5, 5] = 2.0  # module 1 on ball 1
    maps[:, 0, 2] = 1.0 / 64  # module 2 uniform
    out = ins.attention_ball_overlap(maps, positions, radius=0.15)
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    np.testing.assert_allclose(out[1], [0.0, 1.0])
    disk = mt.render_balls(positions[0, 0, :1], radius=0.15, size=8).sum()
    np.testing.assert_allclose(out[2], disk / 64)
    with pytest.raises(ShapeError, match=r"\(T, B, K, H, W\)"):
        ins.attention_ball_overlap(maps[0], positions, 0.1)


def test_activation_map_of_a_rim(tmp_path):
    try:
        from flowgrad.modular import RIM
    except ImportError:
        pytest.skip("flowgrad.modular.RIM not available")
    rim = RIM(4, 12, num_units=4, k_active=2)
    rim(fg.randn(6, 3, 4))
    assert ins.activation_map(rim.masks, path=tmp_path / "rim.png")
    assert ins.attention_heatmap(rim.attns, select=(slice(None), 0, slice(None), 1))
    out = ins.ball_following_score(rim.masks, np.zeros((6, 3, 2), dtype=bool))
    assert out["matrix"].shape == (4, 2)

"""flowgrad.rl: GAE and the PPO loss against hand and NumPy computations, the recurrent state
reset, the MiniGrid vector's seeding, auto-reset and exact resume, the three memories' shapes,
the errors, and PPO learning a tiny environment."""

import sys

import numpy as np
import pytest

pytest.importorskip("minigrid")

import flowgrad as fg
from flowgrad.rl import (
    MEMORIES,
    PPO,
    ActorCritic,
    PPOConfig,
    VectorEnv,
    evaluate,
    gae,
    make_env,
    ppo_loss,
    sample_actions,
)

EMPTY = "MiniGrid-Empty-5x5-v0"  # agent at (1, 1) facing right, goal at (3, 3), 100 steps
LEFT, RIGHT, FORWARD = 0, 1, 2


# --- GAE and the PPO loss ------------------------------------------------------------------------

def test_gae_matches_a_hand_computed_example():
    # env 0 ends its episode at step 1 (mask 0), env 1 runs on; gamma 0.9, lambda 0.5
    rewards = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    values = np.array([[0.5, 0.1], [1.0, 0.2], [0.2, 0.3]])
    masks = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    adv, ret = gae(rewards, values, masks, np.array([0.4, 0.5]), gamma=0.9, lam=0.5)
    # env 0: d2 = 2 + .9*.4 - .2 = 2.16; d1 = 0 - 1 = -1 (cut); d0 = 1 + .9*1 - .5 = 1.4,
    # A0 = 1.4 + .45 * (-1) = 0.95.  env 1: d2 = 1 + .45 - .3 = 1.15; d1 = .27 - .2 = .07,
    # A1 = .07 + .45 * 1.15 = .5875; d0 = .18 - .1 = .08, A0 = .08 + .45 * .5875 = .344375
    expected = np.array([[0.95, 0.344375], [-1.0, 0.5875], [2.16, 1.15]])
    np.testing.assert_allclose(adv, expected, rtol=1e-6)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-6)
    assert adv.dtype == ret.dtype == np.float32


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rng = np.random.default_rng(0)
    t, gamma = 6, 0.9
    r, v, last = rng.random((t, 1)), rng.random((t, 1)), rng.random(1)
    adv, _ = gae(r, v, np.ones((t, 1)), last, gamma=gamma, lam=1.0)
    for s in range(t):
        g = sum(gamma ** k * r[s + k, 0] for k in range(t - s)) + gamma ** (t - s) * last[0]
        assert adv[s, 0] == pytest.approx(g - v[s, 0], rel=1e-5)


def test_gae_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"gae: last_value of shape \(3,\)"):
        gae(np.zeros((4, 2)), np.zeros((4, 2)), np.ones((4, 2)), np.zeros(3))


def _ppo_batch(m=24, a=3, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(m, a))
    values = rng.normal(size=m)
    actions = rng.integers(0, a, size=m)
    logp_now = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    # old log-probabilities moved so that many ratios leave [1 - eps, 1 + eps] on both sides
    old_logp = logp_now[np.arange(m), actions] + rng.normal(scale=0.4, size=m)
    old_values = values + rng.normal(scale=0.5, size=m)
    adv, ret = rng.normal(size=m), rng.normal(size=m)
    return logits, values, actions, old_logp, old_values, adv, ret


def test_ppo_loss_matches_numpy():
    logits, values, actions, old_logp, old_values, adv, ret = _ppo_batch()
    eps, vc, ec = 0.2, 0.5, 0.01
    loss, stats = ppo_loss(fg.tensor(logits, dtype=fg.float64), fg.tensor(values, dtype=fg.float64),
                           actions, old_logp, old_values, adv, ret, eps, vc, ec)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ratio = np.exp(logp[np.arange(len(actions)), actions] - old_logp)
    assert ((ratio < 1 - eps) | (ratio > 1 + eps)).mean() > 0.2  # the clip is exercised
    policy = -np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv).mean()
    clipped = old_values + np.clip(values - old_values, -eps, eps)
    value = np.maximum((values - ret) ** 2, (clipped - ret) ** 2).mean()
    entropy = -(np.exp(logp) * logp).sum(1).mean()
    # the targets are cast to float32 (as the rollout stores them)
    assert loss.item() == pytest.approx(policy + vc * value - ec * entropy, rel=1e-5)
    assert stats["policy_loss"] == pytest.approx(policy, rel=1e-5)
    assert stats["value_loss"] == pytest.approx(value, rel=1e-5)
    assert stats["entropy"] == pytest.approx(entropy, rel=1e-5)
    assert stats["clip_fraction"] == pytest.approx(np.mean(np.abs(ratio - 1) > eps))


def test_ppo_loss_gradients_match_torch():
    torch = pytest.importorskip("torch")
    logits, values, actions, old_logp, old_values, adv, ret = _ppo_batch(seed=1)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    lg, v = fg.tensor(f32(logits), requires_grad=True), fg.tensor(f32(values), requires_grad=True)
    loss, _ = ppo_loss(lg, v, actions, old_logp, old_values, adv, ret)
    loss.backward()
    tl = torch.tensor(f32(logits), requires_grad=True)
    tv = torch.tensor(f32(values), requires_grad=True)
    t = lambda a: torch.tensor(f32(a))  # noqa: E731
    logp_all = torch.log_softmax(tl, -1)
    ratio = (logp_all.gather(1, torch.tensor(actions)[:, None]).squeeze(1) - t(old_logp)).exp()
    policy = -torch.min(ratio * t(adv), ratio.clamp(0.8, 1.2) * t(adv)).mean()
    clipped = t(old_values) + (tv - t(old_values)).clamp(-0.2, 0.2)
    value = torch.max((tv - t(ret)) ** 2, (clipped - t(ret)) ** 2).mean()
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    (policy + 0.5 * value - 0.01 * entropy).backward()
    np.testing.assert_allclose(lg.grad.numpy(), tl.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(v.grad.numpy(), tv.grad.numpy(), atol=1e-6)


def test_ppo_loss_names_a_mismatched_array():
    logits, values, actions, old_logp, old_values, adv, ret = _ppo_batch()
    with pytest.raises(ValueError, match=r"ppo_loss: advantages of shape \(5,\), expected \(24,\)"):
        ppo_loss(fg.tensor(logits), fg.tensor(values), actions, old_logp, old_values, adv[:5],
                 ret)


def test_sample_actions_follows_the_softmax():
    logits = np.log(np.array([[0.2, 0.5, 0.3]] * 20000))
    actions, logp = sample_actions(logits, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / 20000, [0.2, 0.5, 0.3],
                               atol=0.015)
    np.testing.assert_allclose(logp, np.log([0.2, 0.5, 0.3])[actions], rtol=1e-6)
    greedy, _ = sample_actions(logits[:2], np.random.default_rng(0), greedy=True)
    assert greedy.tolist() == [1, 1]


# --- policies -------------------------------------------------------------------------------------

def _obs(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 11, size=(*shape, 7, 7, 3)).astype(np.uint8)


@pytest.mark.parametrize("memory", MEMORIES)
def test_policy_shapes_for_every_memory(memory):
    fg.manual_seed(0)
    policy = ActorCritic(memory=memory)
    state = policy.initial_state(4)
    assert len(state) == {"rims_workspace": 3, "rmc": 1}.get(memory, 2)
    logits, value, state = policy.step(_obs((4,)), state, np.ones(4))
    assert tuple(logits.shape) == (4, 3) and tuple(value.shape) == (4,)
    assert all(tuple(s.shape)[0] == 4 for s in state)
    assert int(np.prod(state[0].shape[1:])) == policy.hidden_size  # the RMC's (4, 4 slots, 32)
    logits, values, final = policy(_obs((4, 5)), policy.initial_state(4), np.ones((4, 5)))
    assert tuple(logits.shape) == (4, 5, 3) and tuple(values.shape) == (4, 5)
    assert [tuple(s.shape) for s in final] == [tuple(s.shape) for s in state]
    assert ActorCritic(memory=memory, num_actions=7).actor[-1].out_features == 7


@pytest.mark.parametrize("memory", MEMORIES)
def test_recurrent_state_is_reset_where_an_episode_ended(memory):
    fg.manual_seed(1)
    policy = ActorCritic(memory=memory)
    with fg.no_grad():
        state = policy.initial_state(2)
        for i in range(3):  # a state far from the initial one
            _, _, state = policy.step(_obs((2,), seed=i), state, np.ones(2))
        fresh = policy.initial_state(2)
        reset = policy.reset_state(state, np.array([0.0, 1.0]))
        for part, start, kept in zip(reset, fresh, state):
            np.testing.assert_array_equal(part.numpy()[0], start.numpy()[0])
            np.testing.assert_array_equal(part.numpy()[1], kept.numpy()[1])
            assert not np.allclose(kept.numpy()[0], start.numpy()[0])
        # inside a sequence: after a mask of 0 at step 2, env 0 behaves as from a fresh start
        obs = _obs((2, 5), seed=7)
        masks = np.ones((2, 5))
        masks[0, 2] = 0.0
        logits, values, _ = policy(obs, state, masks)
        alone, alone_values, _ = policy(obs[:1, 2:], policy.initial_state(1), np.ones((1, 3)))
        np.testing.assert_allclose(logits.numpy()[0, 2:], alone.numpy()[0], atol=1e-6)
        np.testing.assert_allclose(values.numpy()[0, 2:], alone_values.numpy()[0], atol=1e-6)
        before, _, _ = policy(obs[:1, :2], tuple(s[:1] for s in state), np.ones((1, 2)))
        np.testing.assert_allclose(logits.numpy()[0, :2], before.numpy()[0], atol=1e-6)


def test_bad_memory_name_is_named():
    with pytest.raises(ValueError, match=r"unknown memory 'gru'; expected one of lstm, rims, "):
        ActorCritic(memory="gru")
    from flowgrad.recipes import fourroom

    with pytest.raises(ValueError, match=r"fourroom: unknown memory 'rim'"):
        fourroom.run(memories=("rim",), write=False, progress=False, out="unused")


def test_observations_of_the_wrong_shape_are_refused():
    policy = ActorCritic()
    with pytest.raises(ValueError, match=r"observations of shape \(4, 7, 7\)"):
        policy.step(np.zeros((4, 7, 7), np.uint8), policy.initial_state(4), np.ones(4))


# --- environments ---------------------------------------------------------------------------------

def test_bad_env_id_is_named():
    with pytest.raises(ValueError, match=r"unknown environment id 'MiniGrid-FiveRooms-v0'"):
        VectorEnv("MiniGrid-FiveRooms-v0", 2)
    with pytest.raises(ValueError, match=r"'CartPole-v1' has no \(7, 7, 3\) 'image'"):
        make_env("CartPole-v1")


def test_missing_minigrid_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "minigrid", None)
    with pytest.raises(ImportError, match=r"pip install flowgrad\[rl\]"):
        make_env(EMPTY)


def _play(env, actions):
    out = []
    for a in actions:
        out.append(env.step(a))
    return out


def test_vector_env_seeding_is_reproducible():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(30, 3))
    runs = []
    for seed in (5, 5, 6):
        env = VectorEnv("MiniGrid-FourRooms-v0", 3, seed=seed)
        runs.append((env.reset(), _play(env, actions)))
    (o1, s1), (o2, s2), (o3, _) = runs
    np.testing.assert_array_equal(o1, o2)
    for a, b in zip(s1, s2):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(o1, o3)           # another seed, other rooms
    assert len({o1[i].tobytes() for i in range(3)}) == 3  # each env its own layout


def test_vector_env_auto_resets_and_records_episodes():
    env = VectorEnv(EMPTY, 2, seed=0)
    start = env.reset()
    # env 0 walks to the goal in 5 steps (forward, forward, right, forward, forward);
    # env 1 turns left on the spot
    plan = [[FORWARD, LEFT], [FORWARD, LEFT], [RIGHT, LEFT], [FORWARD, LEFT], [FORWARD, LEFT]]
    steps = _play(env, np.array(plan))
    obs, reward, done = steps[-1]
    assert done.tolist() == [True, False] and not any(s[2].any() for s in steps[:-1])
    assert reward[0] == pytest.approx(1 - 0.9 * 5 / 100)
    np.testing.assert_array_equal(obs[0], start[0])  # already the next episode's first view
    eps = env.pop_episodes()
    assert eps["env"].tolist() == [0] and eps["length"].tolist() == [5]
    assert eps["success"].tolist() == [True] and eps["return"][0] == pytest.approx(0.955)
    assert len(env.pop_episodes()["return"]) == 0
    short = VectorEnv(EMPTY, 1, seed=0, max_steps=3)  # a timeout is an end without success
    short.reset()
    _, r, d = _play(short, np.array([[LEFT]] * 3))[-1]
    assert d.tolist() == [True] and r.tolist() == [0.0]
    assert short.pop_episodes()["success"].tolist() == [False]
    with pytest.raises(ValueError, match=r"actions must lie in 0..6"):
        env.step(np.array([0, 7]))


def test_vector_env_state_round_trip_continues_exactly():
    rng = np.random.default_rng(1)
    env = VectorEnv("MiniGrid-FourRooms-v0", 3, seed=2)
    env.reset()
    _play(env, rng.integers(0, 3, size=(120, 3)))  # past at least one reset (100-step limit)
    state = env.state_dict()
    later = rng.integers(0, 3, size=(150, 3))
    expected = _play(env, later)
    other = VectorEnv("MiniGrid-FourRooms-v0", 3, seed=99)
    other.load_state_dict(state)
    for a, b in zip(expected, _play(other, later)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


# --- PPO ------------------------------------------------------------------------------------------

TINY = dict(num_envs=4, rollout=16, recurrence=8, batch_size=32)


def test_ppo_resumes_from_a_checkpoint_exactly(tmp_path):
    def agent():
        fg.manual_seed(0)
        policy = ActorCritic(memory="lstm")
        return PPO(policy, VectorEnv(EMPTY, 4, seed=3), PPOConfig(**TINY), seed=3)

    straight = agent()
    straight.train(4 * 64, progress=False)
    path = tmp_path / "ppo.safetensors"
    first = agent()
    first.train(2 * 64, progress=False, checkpoint=path)
    resumed = agent()
    resumed.train(4 * 64, progress=False, checkpoint=path)  # loads the 2-update checkpoint
    assert resumed.updates == straight.updates == 4 and resumed.frames == 256
    for (k, a), b in zip(straight.policy.state_dict().items(),
                         resumed.policy.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert [h["return"] for h in resumed.history] == [h["return"] for h in straight.history]
    fg.manual_seed(0)
    with pytest.raises(ValueError, match=r"checkpoint's seed 3 differs from this run's 4"):
        PPO(ActorCritic(memory="lstm"), VectorEnv(EMPTY, 4, seed=3), PPOConfig(**TINY),
            seed=4).load(path)


def test_ppo_config_errors_name_the_values():
    with pytest.raises(ValueError, match=r"recurrence=5 must divide rollout=16"):
        PPOConfig(rollout=16, recurrence=5).check()
    with pytest.raises(ValueError, match=r"the env vector has 2 environments, the config "
                                         r"num_envs=16"):
        PPO(ActorCritic(), VectorEnv(EMPTY, 2), PPOConfig())


def test_evaluate_plays_the_episodes_asked_for_reproducibly():
    a = evaluate(None, EMPTY, episodes=7, seed=1, num_envs=3)
    b = evaluate(None, EMPTY, episodes=7, seed=1, num_envs=3)
    assert a["episodes"] == 7 and a["returns"] == b["returns"]
    assert 0.0 <= a["success_rate"] <= 1.0


def test_ppo_improves_the_return_on_a_tiny_env():
    from flowgrad.utils.threads import limit_threads

    fg.manual_seed(0)
    policy = ActorCritic(memory="lstm")
    before = evaluate(policy, EMPTY, episodes=32, seed=0, num_envs=8)
    cfg = PPOConfig(num_envs=8, rollout=32, recurrence=8, batch_size=256)
    algo = PPO(policy, VectorEnv(EMPTY, 8, seed=0), cfg, seed=0)
    with limit_threads(1):  # small GEMMs: one BLAS thread is several times faster
        history = algo.train(6144, progress=False)
    after = evaluate(policy, EMPTY, episodes=32, seed=0, num_envs=8)
    assert len(history) == 24 and history[-1]["frames"] == 6144
    # an optimal agent gets 0.955 (5 steps); the untrained one wanders (about 0.5)
    assert after["return_mean"] > before["return_mean"] + 0.2, (before, after)
    assert after["length_mean"] < 0.5 * before["length_mean"]

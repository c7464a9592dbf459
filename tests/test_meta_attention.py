"""Fast and slow learning (Madan et al. 2021, arXiv 2105.08710): the split of a modular model's
parameters into attention and modules; the inner loop moves only the fast group, the outer
loop only the slow group, with the first-order meta-gradient; both assignments (the paper's
fast modules / slow attention, and the reverse); bad input; a few meta-steps learn."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.modular.meta_attention import MetaAttentionLearner, split_parameters
from flowgrad.modular.rims import RIMCell
from flowgrad.modular.scoff import SCOFF
from flowgrad.modular.workspace import SharedWorkspace
from flowgrad.nn.module import Module

SMALL = dict(input_key_size=4, input_value_size=4, comm_key_size=2, comm_value_size=2,
             comm_heads=2)


class Regressor(Module):
    """A SCOFF (or RIM) over a sequence with a linear read-out at every step."""

    def __init__(self, kind="scoff"):
        super().__init__()
        if kind == "scoff":
            self.rnn = SCOFF(2, 8, 4, 2, 3, cell="gru", schema_key_size=3, **SMALL)
        else:
            from flowgrad.modular.rims import RIM

            self.rnn = RIM(2, 8, 4, 3, cell="gru", **SMALL)
        self.head = fg.nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def make_batch(rng, scale=1.0, steps=4, n=16):
    """Running sums of the inputs, times a task-dependent scale (the task changes with it)."""
    v = rng.uniform(0, 1, (steps, n))
    x = np.stack([v, np.full_like(v, scale)], -1).astype(np.float32)
    y = (scale * np.cumsum(v, 0) / 2)[..., None].astype(np.float32)
    return fg.tensor(x), fg.tensor(y)


def snapshot(params: dict) -> dict:
    return {k: p.detach().numpy().copy() for k, p in params.items()}


def test_split_parameters():
    fg.manual_seed(0)
    model = Regressor()
    attention, modules = split_parameters(model)
    assert attention and modules
    assert all(k.startswith(("rnn.cell.input_attention.", "rnn.cell.communication.",
                             "rnn.cell.schema_attention.")) for k in attention)
    assert set(modules) == {k for k in dict(model.named_parameters()) if k not in attention}
    assert "rnn.cell.schema_cell.weight_ih" in modules and "head.weight" in modules
    names = [k for k, _ in model.named_parameters()]
    assert list(attention) == [k for k in names if k in attention]  # named_parameters order
    # a RIM with a shared workspace: the workspace is attention too
    rim = RIMCell(3, 8, 4, 2, cell="gru", workspace=SharedWorkspace(2, num_slots=2,
                                                                    num_heads=1), **SMALL)
    attention, modules = split_parameters(rim)
    assert any(k.startswith("workspace.") for k in attention)
    assert all(k.startswith("cell.") for k in modules)


@pytest.mark.parametrize("fast", ["modules", "attention"])
def test_inner_loop_moves_only_fast_outer_only_slow(fast):
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Regressor()
    learner = MetaAttentionLearner(model, mse, fast=fast, inner_lr=0.05, inner_steps=3,
                                   outer_lr=0.01)
    attention, modules = split_parameters(model)
    fast_group, slow_group = (attention, modules) if fast == "attention" else (modules,
                                                                                attention)
    assert learner.fast_parameters.keys() == fast_group.keys()
    support, query = make_batch(rng), make_batch(rng)
    before_fast, before_slow = snapshot(fast_group), snapshot(slow_group)
    inner = learner.adapt(support)
    assert len(inner) == 3 and inner[-1] < inner[0]
    after_fast = snapshot(fast_group)
    for k, v in snapshot(slow_group).items():  # the slow group did not move at all
        np.testing.assert_array_equal(v, before_slow[k])
    moved = [k for k in fast_group if not np.array_equal(after_fast[k], before_fast[k])]
    assert moved == list(fast_group), set(fast_group) - set(moved)
    learner.outer_step(query)
    for k, v in snapshot(fast_group).items():  # the outer step leaves the fast group alone
        np.testing.assert_array_equal(v, after_fast[k])
    after_slow = snapshot(slow_group)
    moved = [k for k in slow_group if not np.array_equal(after_slow[k], before_slow[k])]
    assert moved == list(slow_group), set(slow_group) - set(moved)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("fast", ["modules", "attention"])
def test_outer_update_is_first_order_gradient_at_adapted_parameters(fast):
    """With SGD as the outer optimizer, the slow parameters move by -lr times the query loss's
    gradient evaluated at the adapted fast parameters (no term through the inner updates)."""
    fg.manual_seed(1)
    rng = np.random.default_rng(1)
    model = Regressor().double()
    support, query = (tuple(t.double() for t in make_batch(rng)) for _ in range(2))
    lr = 0.1
    learner = MetaAttentionLearner(model, mse, fast=fast, inner_lr=0.05, inner_steps=2,
                                   outer_optimizer=lambda ps: fg.optim.SGD(ps, lr=lr))
    fg.manual_seed(3)
    learner.adapt(support)
    adapted = snapshot(dict(model.named_parameters()))
    fg.manual_seed(4)
    loss = mse(model, query)
    loss.backward()
    expected = {k: adapted[k] - lr * (0.0 if p.grad is None else p.grad.detach().numpy())
                for k, p in learner.slow_parameters.items()}
    model.zero_grad()
    fg.manual_seed(4)
    learner.outer_step(query)
    for k, p in learner.slow_parameters.items():
        np.testing.assert_allclose(p.detach().numpy(), expected[k], rtol=1e-12, atol=1e-15)
    for k, p in learner.fast_parameters.items():
        np.testing.assert_array_equal(p.detach().numpy(), adapted[k])


def test_rim_model_and_zero_inner_steps():
    fg.manual_seed(2)
    rng = np.random.default_rng(2)
    model = Regressor("rim")
    learner = MetaAttentionLearner(model, mse, fast="attention", inner_steps=0)
    before = snapshot(dict(model.named_parameters()))
    assert learner.adapt(make_batch(rng)) == []
    for k, v in snapshot(dict(model.named_parameters())).items():
        np.testing.assert_array_equal(v, before[k])
    out = learner.step(make_batch(rng))
    assert out["inner"] == [] and np.isfinite(out["outer"])


def test_bad_input():
    fg.manual_seed(0)
    model = Regressor()
    with pytest.raises(ValueError, match="fast must be one of .*got 'slow'"):
        MetaAttentionLearner(model, mse, fast="slow")
    with pytest.raises(ValueError, match="inner_steps must be an int >= 0, got -1"):
        MetaAttentionLearner(model, mse, inner_steps=-1)
    with pytest.raises(ValueError, match="no attention parameters"):
        MetaAttentionLearner(fg.nn.Linear(2, 1), mse)
    with pytest.raises(ValueError, match="only attention parameters"):
        MetaAttentionLearner(model.rnn.cell.schema_attention, mse)


@pytest.mark.parametrize("fast", ["modules", "attention"])
def test_meta_training_learns(fast):
    """Twenty meta-steps on tasks that differ by the output scale: the query loss after
    adaptation falls well below its first value."""
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Regressor()
    learner = MetaAttentionLearner(model, mse, fast=fast, inner_lr=0.05, inner_steps=1,
                                   outer_lr=0.02)
    outer = []
    for _ in range(20):
        scale = rng.choice([0.5, 1.0])
        out = learner.step(make_batch(rng, scale), make_batch(rng, scale))
        outer.append(out["outer"])
    assert np.mean(outer[-5:]) < 0.5 * np.mean(outer[:3]), outer

"""SharedWorkspace (flowgrad.modular): the write competition (exactly top-k writers per slot and
head; masked specialists never write), the broadcast read, the memory carried across calls,
finite differences, state_dict, bad input; and the workspace on a transformer's positions
(a TransformerEncoderLayer's output (B, T, d) through the workspace, trained on a toy task)."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.modular import SharedWorkspace


def test_shapes_and_learned_initial_memory():
    ws = SharedWorkspace(6, num_slots=3, num_heads=2)
    assert ws.slot_size == 6
    np.testing.assert_array_equal(ws.memory_init.detach().numpy(), np.eye(3, 6))
    h = fg.randn(4, 5, 6)
    out, memory = ws(h)
    assert tuple(out.shape) == (4, 5, 6) and tuple(memory.shape) == (4, 3, 6)
    out2, memory2 = ws(out, memory)
    assert not np.allclose(memory2.detach().numpy(), memory.detach().numpy())
    assert tuple(SharedWorkspace(6, 4, slot_size=8, num_heads=4)(h)[1].shape) == (4, 4, 8)


@pytest.mark.parametrize("topk", [1, 3])
def test_hard_write_lets_exactly_topk_specialists_write(topk):
    ws = SharedWorkspace(6, num_slots=3, num_heads=2, topk=topk)
    ws(fg.randn(4, 5, 6))
    w = ws.last_write
    assert w.shape == (4, 2, 3, 5)
    assert ((w > 0).sum(-1) == topk).all()
    # the writers are the specialists with the largest attention among all of them
    soft = SharedWorkspace(6, num_slots=3, num_heads=2)
    soft.load_state_dict(ws.state_dict())
    h = fg.randn(4, 5, 6)
    soft(h)
    ws(h)
    full, kept = soft.last_write, ws.last_write
    for row_full, row_kept in zip(full.reshape(-1, 5), kept.reshape(-1, 5)):
        winners = row_kept > 0
        assert row_full[winners].min() >= row_full[~winners].max()
        np.testing.assert_allclose(row_kept[winners], row_full[winners], rtol=1e-6)
    np.testing.assert_allclose(full.sum(-1), 1.0, rtol=1e-5)


def test_masked_specialists_neither_write_nor_read():
    ws = SharedWorkspace(6, num_slots=3, num_heads=2, topk=2)
    h = fg.randn(2, 5, 6)
    mask = np.array([[True, False, True, True, False], [False, False, True, False, True]])
    out, _ = ws(h, None, fg.tensor(mask))
    assert (ws.last_write[~np.broadcast_to(mask[:, None, None, :], ws.last_write.shape)]
            == 0).all()
    np.testing.assert_array_equal(out.detach().numpy()[~mask], h.numpy()[~mask])
    assert not np.allclose(out.detach().numpy()[mask], h.numpy()[mask])


@pytest.mark.parametrize("topk", [None, 2])
def test_workspace_gradcheck(topk):
    ws = SharedWorkspace(4, num_slots=2, slot_size=4, num_heads=2, topk=topk).double()
    h = fg.randn(2, 3, 4, dtype=fg.float64, requires_grad=True)
    m0 = fg.randn(2, 2, 4, dtype=fg.float64, requires_grad=True)
    fg.autograd.gradcheck(lambda h, m, *p: ws(h, m), [h, m0, *ws.parameters()])
    mask = fg.tensor(np.array([[True, False, True], [True, True, False]]))
    fg.autograd.gradcheck(lambda h: ws(h, None, mask), [h])


def test_state_dict_round_trip(tmp_path):
    ws = SharedWorkspace(6, num_slots=3, num_heads=2, topk=2)
    path = tmp_path / "ws.safetensors"
    fg.save(ws.state_dict(), str(path))
    other = SharedWorkspace(6, num_slots=3, num_heads=2, topk=2)
    other.load_state_dict(fg.load(str(path)))
    h = fg.randn(2, 5, 6)
    a, b = ws(h), other(h)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.detach().numpy(), y.detach().numpy())
    assert "memory_init" in ws.state_dict()


def test_bad_input():
    with pytest.raises(ValueError, match=r"slot_size=6 is not divisible by num_heads=4"):
        SharedWorkspace(6)
    with pytest.raises(ValueError, match="topk=0"):
        SharedWorkspace(8, topk=0)
    ws = SharedWorkspace(8, num_slots=2, topk=3)
    with pytest.raises(ShapeError, match="unit_size=8"):
        ws(fg.randn(2, 3, 7))
    with pytest.raises(ShapeError, match=r"memory of shape \(2, 3, 8\)"):
        ws(fg.randn(2, 3, 8), fg.randn(2, 3, 8))
    with pytest.raises(ValueError, match="topk=3 is larger than the number of specialists 2"):
        ws(fg.randn(2, 2, 8))


class _TransformerWithWorkspace(fg.nn.Module):
    """Embedding, one TransformerEncoderLayer, the shared workspace over the positions
    (TR+HSW with topk, TR+SSW without), mean pooling, a linear classifier."""

    def __init__(self, vocab, d, topk):
        super().__init__()
        self.embed = fg.nn.Embedding(vocab, d)
        self.pos = fg.nn.Parameter(fg.randn(8, d) * 0.1)
        self.layer = fg.nn.TransformerEncoderLayer(d, 2, dim_feedforward=2 * d, dropout=0.0,
                                                   batch_first=True)
        self.workspace = SharedWorkspace(d, num_slots=4, num_heads=2, topk=topk)
        self.out = fg.nn.Linear(d, 2)

    def forward(self, tokens):
        x = self.layer(self.embed(tokens) + self.pos[:tokens.shape[1]])   # (B, T, d)
        x, _ = self.workspace(x)
        return self.out(x.mean(1))


@pytest.mark.parametrize("topk", [3, None])
def test_transformer_positions_through_the_workspace_learn(topk):
    """Toy task: does the sequence contain the token 1? A transformer layer followed by the
    shared workspace over its positions learns it in a few dozen Adam steps."""
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _TransformerWithWorkspace(6, 16, topk)
    opt = fg.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        tokens = rng.integers(2, 6, size=(32, 8))
        y = rng.integers(0, 2, size=32)
        where = rng.integers(0, 8, size=32)
        tokens[np.arange(32)[y == 1], where[y == 1]] = 1
        loss = fg.nn.functional.cross_entropy(model(fg.tensor(tokens)), fg.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    if topk is not None:
        assert ((model.workspace.last_write > 0).sum(-1) == topk).all()

"""The attentions of flowgrad.modular: topk_mask (exactly k, the largest, ties to the lower
index), InputAttention over [null, input] and CommunicationAttention against the same equations
written in torch (forward and every gradient, float64 and float32), the blocked-gradient rule of
masked communication, finite differences, state_dict both ways, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.modular import CommunicationAttention, InputAttention, blocked_grad, topk_mask

torch = pytest.importorskip("torch")

TOL = {"float32": dict(atol=2e-5, rtol=1e-4), "float64": dict(atol=1e-10, rtol=1e-8)}


# --- topk_mask ----------------------------------------------------------------------------------


def test_topk_mask_picks_exactly_k_largest():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 7))
    for k in range(8):
        mask = topk_mask(fg.tensor(scores), k).detach().numpy()
        assert mask.dtype == bool and (mask.sum(1) == k).all()
        if 0 < k < 7:
            for row, m in zip(scores, mask):
                assert row[m].min() > row[~m].max()
    # the same selection as torch.topk where there are no ties
    ref = torch.topk(torch.tensor(scores), 3, dim=1).indices.detach().numpy()
    mask = topk_mask(scores, 3).detach().numpy()
    for r, m in zip(ref, mask):
        assert set(r) == set(np.flatnonzero(m))


def test_topk_mask_ties_go_to_the_lower_index():
    scores = fg.tensor([[1.0, 2.0, 2.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0],
                        [5.0, 1.0, 5.0, 1.0, 1.0]])
    assert topk_mask(scores, 2).detach().numpy().tolist() == [
        [False, True, True, False, False], [True, True, False, False, False],
        [True, False, True, False, False]]
    assert topk_mask(scores, 3).detach().numpy()[2].tolist() == [True, True, True, False, False]


def test_topk_mask_errors():
    with pytest.raises(ValueError, match=r"k=4 must be an int in \[0, 3\]"):
        topk_mask(fg.randn(2, 3), 4)
    with pytest.raises(ValueError, match="k=-1"):
        topk_mask(fg.randn(2, 3), -1)
    with pytest.raises(ShapeError, match=r"\(2, 3, 1\)"):
        topk_mask(fg.randn(2, 3, 1), 1)


def test_blocked_grad_masks_the_gradient_only():
    x = fg.randn(2, 3, 4, requires_grad=True)
    mask = np.array([[True, False, True], [False, False, True]])
    y = blocked_grad(x, mask[:, :, None])
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy())
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 3.0 * np.broadcast_to(mask[:, :, None],
                                                                         (2, 3, 4)))


# --- InputAttention -----------------------------------------------------------------------------


def _torch_input_attention(att, x, h, heads):
    """[null, x] attention in torch: softmax over the scores [0·q, q·k(x)] of zero and x."""
    wq = torch.tensor(att.query_weight.detach().numpy(), requires_grad=True)
    wk = torch.tensor(att.key.weight.detach().numpy(), requires_grad=True)
    wv = torch.tensor(att.value.weight.detach().numpy(), requires_grad=True)
    b, k, _ = h.shape
    slots = torch.stack([torch.zeros_like(x), x], 1)                 # (B, 2, I)
    q = torch.einsum("bku,kud->bkd", h, wq).reshape(b, k, heads, -1)
    keys = (slots @ wk.T).reshape(b, 2, heads, -1)
    vals = (slots @ wv.T).reshape(b, 2, heads, -1)
    scores = torch.einsum("bkhd,bshd->bkhs", q, keys) / math.sqrt(q.shape[-1])
    attn = scores.softmax(-1)
    values = torch.einsum("bkhs,bshd->bkhd", attn, vals).reshape(b, k, -1)
    return values, attn.mean(2), (wq, wk, wv)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("heads", [1, 2])
def test_input_attention_matches_softmax_over_null_and_input(dtype, heads):
    att = InputAttention(5, 3, 4, key_size=6, value_size=8, num_heads=heads).to(
        getattr(fg, dtype))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5)).astype(dtype)
    h = rng.standard_normal((2, 3, 4)).astype(dtype)
    wv, wa = rng.standard_normal((2, 3, 8)).astype(dtype), rng.standard_normal((2, 3, 2)).astype(
        dtype)
    xf, hf = fg.tensor(x, requires_grad=True), fg.tensor(h, requires_grad=True)
    values, attn = att(xf, hf)
    ((values * fg.tensor(wv)).sum() + (attn * fg.tensor(wa)).sum()).backward()
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    tv, ta, tw = _torch_input_attention(att, xt, ht, heads)
    ((tv * torch.tensor(wv)).sum() + (ta * torch.tensor(wa)).sum()).backward()
    np.testing.assert_allclose(values.detach().numpy(), tv.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(attn.detach().numpy(), ta.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(attn.detach().numpy().sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(hf.grad.numpy(), ht.grad.numpy(), **TOL[dtype])
    for p, t in zip([att.query_weight, att.key.weight, att.value.weight], tw):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), **TOL[dtype])


def test_input_attention_gradcheck_and_dropout():
    att = InputAttention(5, 3, 4, key_size=6, value_size=8, num_heads=2).double()
    x = fg.randn(2, 5, dtype=fg.float64, requires_grad=True)
    h = fg.randn(2, 3, 4, dtype=fg.float64, requires_grad=True)
    fg.autograd.gradcheck(lambda x, h, *p: att(x, h), [x, h, *att.parameters()])
    drop = InputAttention(5, 3, 4, value_size=400, dropout=0.5)
    v_train = drop(fg.randn(2, 5), fg.randn(2, 3, 4))[0].detach().numpy()
    assert (v_train == 0).mean() > 0.3
    drop.eval()
    x, h = fg.randn(2, 5), fg.randn(2, 3, 4)
    np.testing.assert_array_equal(drop(x, h)[0].detach().numpy(), drop(x, h)[0].detach().numpy())


def test_input_attention_errors():
    att = InputAttention(5, 3, 4)
    with pytest.raises(ShapeError, match=r"input_size=5"):
        att(fg.randn(2, 6), fg.randn(2, 3, 4))
    with pytest.raises(ShapeError, match=r"num_units=3, unit_size=4"):
        att(fg.randn(2, 5), fg.randn(2, 4, 4))
    with pytest.raises(ValueError, match=r"value_size=7 must be divisible by num_heads=2"):
        InputAttention(5, 3, 4, value_size=7, num_heads=2)


# --- CommunicationAttention ---------------------------------------------------------------------


def _torch_communication(comm, h, mask=None):
    wqkv = torch.tensor(comm.qkv_weight.detach().numpy(), requires_grad=True)
    wo = torch.tensor(comm.output.weight.detach().numpy(), requires_grad=True)
    bo = torch.tensor(comm.output.bias.detach().numpy(), requires_grad=True)
    b, k, u = h.shape
    nh, dk, dv = comm.num_heads, comm.key_size, comm.value_size
    if mask is not None:  # the official blocked_grad: identity, gradient times the mask
        m = torch.tensor(mask[..., None], dtype=h.dtype)
        h_in = h * m + (h * (1 - m)).detach()
    else:
        h_in = h
    qkv = torch.einsum("bku,kud->bkd", h_in, wqkv).reshape(b, k, nh, -1).transpose(1, 2)
    q, key, v = qkv.split([dk, dk, dv], -1)
    a = (q @ key.transpose(-2, -1) / math.sqrt(dk)).softmax(-1)
    o = (a @ v).transpose(1, 2).reshape(b, k, nh * dv)
    cand, gate = torch.nn.functional.linear(o, wo, bo).chunk(2, -1)
    out = h_in + gate.sigmoid() * cand.tanh()
    if mask is not None:
        out = torch.where(torch.tensor(mask[..., None]), out, h)
    return out, (wqkv, wo, bo)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("masked", [False, True])
def test_communication_matches_torch(dtype, masked):
    comm = CommunicationAttention(4, 5, key_size=3, value_size=6, num_heads=2).to(
        getattr(fg, dtype))
    rng = np.random.default_rng(2)
    h = rng.standard_normal((3, 4, 5)).astype(dtype)
    w = rng.standard_normal((3, 4, 5)).astype(dtype)
    mask = np.array([[True, False, True, False], [False, True, True, True],
                     [True, True, False, False]]) if masked else None
    hf = fg.tensor(h, requires_grad=True)
    out = comm(hf, None if mask is None else fg.tensor(mask))
    (out * fg.tensor(w)).sum().backward()
    ht = torch.tensor(h, requires_grad=True)
    tout, tw = _torch_communication(comm, ht, mask)
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(hf.grad.numpy(), ht.grad.numpy(), **TOL[dtype])
    for p, t in zip([comm.qkv_weight, comm.output.weight, comm.output.bias], tw):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), **TOL[dtype])
    if masked:
        # inactive rows: bit-identical, and only the identity path carries their gradient
        np.testing.assert_array_equal(out.detach().numpy()[~mask], h[~mask])
        np.testing.assert_array_equal(hf.grad.numpy()[~mask], w[~mask])


def test_communication_gradcheck():
    comm = CommunicationAttention(3, 4, key_size=2, value_size=3, num_heads=2).double()
    h = fg.randn(2, 3, 4, dtype=fg.float64, requires_grad=True)
    fg.autograd.gradcheck(lambda h, *p: comm(h), [h, *comm.parameters()])
    # with every unit active the mask changes nothing
    full = fg.tensor(np.ones((2, 3), dtype=bool))
    np.testing.assert_array_equal(comm(h, full).detach().numpy(), comm(h).detach().numpy())


def test_communication_errors():
    comm = CommunicationAttention(3, 4)
    with pytest.raises(ShapeError, match=r"num_units=3, unit_size=4"):
        comm(fg.randn(2, 3, 5))
    with pytest.raises(ShapeError, match=r"mask of shape \(2, 2\)"):
        comm(fg.randn(2, 3, 4), fg.tensor(np.ones((2, 2), dtype=bool)))
    with pytest.raises(ValueError, match="num_heads must be a positive int, got 0"):
        CommunicationAttention(3, 4, num_heads=0)


def test_state_dict_both_ways_with_torch_tensors():
    att = InputAttention(5, 3, 4, key_size=6, value_size=8)
    comm = CommunicationAttention(3, 4, key_size=2, value_size=3, num_heads=2)
    for module, shapes in ((att, {"query_weight": (3, 4, 6), "key.weight": (6, 5),
                                  "value.weight": (8, 5)}),
                           (comm, {"qkv_weight": (3, 4, 14), "output.weight": (8, 6),
                                   "output.bias": (8,)})):
        sd = module.state_dict()
        assert {k: tuple(v.shape) for k, v in sd.items()} == shapes
        as_torch = {k: torch.tensor(v.detach().numpy()) for k, v in sd.items()}
        other = type(module)(*((5, 3, 4) if module is att else (3, 4)),
                             **({"key_size": 6, "value_size": 8} if module is att else
                                {"key_size": 2, "value_size": 3, "num_heads": 2}))
        other.load_state_dict({k: v.detach().numpy() for k, v in as_torch.items()})
        for k, v in other.state_dict().items():
            np.testing.assert_array_equal(v.detach().numpy(), sd[k].detach().numpy())

"""The algorithmic tasks (targets checked by decoding every example) and the Neural Turing
Machine (Graves, Wayne & Danihelka 2014): addressing against a NumPy reference and against the
same formulas in torch (forward and gradients), weightings are distributions, finite-difference
gradient check of a whole tiny NTM, state_dict round trip, and learning a tiny copy task."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.datasets.algorithmic import (
    BOS,
    EOS,
    FIRST_SYMBOL,
    PAD,
    associative_recall,
    copy_pairs,
    copy_task,
    reversal_pairs,
)
from flowgrad.models.memory import (
    NTM,
    LSTMBaseline,
    NTMConfig,
    address,
    bit_errors,
    content_weights,
    masked_bce,
    parameter_count,
    sharpen,
    shift_weights,
)

# --- datasets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_seq2seq_pairs_targets(reverse):
    make = reversal_pairs if reverse else copy_pairs
    b = make(50, 2, 7, n_symbols=5, seed=3)
    n, width = b.src.shape
    assert b.tgt_in.shape == b.tgt_out.shape == (n, width + 1)
    assert b.src_lengths.min() >= 2 and b.src_lengths.max() <= 7 and width == b.src_lengths.max()
    for i, length in enumerate(b.src_lengths):
        seq = b.src[i, :length]
        assert ((seq >= FIRST_SYMBOL) & (seq < FIRST_SYMBOL + 5)).all()
        assert (b.src[i, length:] == PAD).all()
        target = seq[::-1] if reverse else seq
        np.testing.assert_array_equal(b.tgt_out[i, :length], target)
        assert b.tgt_out[i, length] == EOS and (b.tgt_out[i, length + 1:] == PAD).all()
        assert b.tgt_in[i, 0] == BOS
        np.testing.assert_array_equal(b.tgt_in[i, 1:length + 1], target)
        assert (b.tgt_in[i, length + 1:] == PAD).all()
    again = make(50, 2, 7, n_symbols=5, seed=3)
    np.testing.assert_array_equal(again.src, b.src)
    assert not np.array_equal(make(50, 2, 7, n_symbols=5, seed=4).src, b.src)
    longer = make(10, 12, 15, seed=5)
    assert longer.src_lengths.min() >= 12


def test_copy_task_targets():
    d = copy_task(40, 1, 6, bits=5, seed=2)
    assert d.inputs.shape == (40, 13, 6) and d.targets.shape == (40, 13, 5)
    assert d.mask.shape == (40, 13) and d.inputs.dtype == np.float32
    for i, length in enumerate(d.lengths):
        assert d.inputs[i, length, 5] == 1 and d.inputs[:, :, 5].sum() == 40
        assert (d.inputs[i, length + 1:] == 0).all() and (d.inputs[i, :length, 5] == 0).all()
        np.testing.assert_array_equal(d.targets[i, length + 1:2 * length + 1],
                                      d.inputs[i, :length, :5])
        assert d.mask[i].sum() == length and d.mask[i, length + 1:2 * length + 1].all()
        assert d.targets[i, d.mask[i] == 0].sum() == 0


def test_associative_recall_targets():
    bits, item_len = 4, 3
    d = associative_recall(30, 2, 5, bits=bits, item_len=item_len, seed=1)
    steps = (5 + 1) * (item_len + 1) + 1 + item_len
    assert d.inputs.shape == (30, steps, bits + 2) and d.targets.shape == (30, steps, bits)
    for i, k in enumerate(d.lengths):
        x = d.inputs[i]
        starts = np.flatnonzero(x[:, bits])
        assert len(starts) == k
        items = [x[s + 1:s + 1 + item_len, :bits] for s in starts]
        q0, q1 = np.flatnonzero(x[:, bits + 1])
        assert q1 - q0 == item_len + 1
        query = x[q0 + 1:q1, :bits]
        j = next(j for j, item in enumerate(items) if np.array_equal(item, query))
        assert j < k - 1
        answer = np.flatnonzero(d.mask[i])
        np.testing.assert_array_equal(answer, np.arange(q1 + 1, q1 + 1 + item_len))
        np.testing.assert_array_equal(d.targets[i, answer], items[j + 1])
        assert (x[q1 + 1:] == 0).all()


def test_task_arguments_are_checked():
    with pytest.raises(ValueError, match="copy_task"):
        copy_task(4, 5, 3)
    with pytest.raises(ValueError, match="associative_recall"):
        associative_recall(4, 1, 3)


# --- addressing --------------------------------------------------------------------------------

def _np_address(memory, previous, key, beta, gate, shift, gamma):
    """Section 3.3 written out in NumPy with explicit loops over batch, heads and slots."""
    B, H, N = previous.shape
    out = np.zeros_like(previous)
    r = shift.shape[-1] // 2
    for b in range(B):
        for h in range(H):
            cos = np.array([key[b, h] @ memory[b, i] / (np.linalg.norm(key[b, h])
                                                         * np.linalg.norm(memory[b, i]) + 1e-8)
                            for i in range(N)])
            e = np.exp(beta[b, h, 0] * cos - (beta[b, h, 0] * cos).max())
            wc = e / e.sum()
            wg = gate[b, h, 0] * wc + (1 - gate[b, h, 0]) * previous[b, h]
            ws = np.array([sum(wg[(i - j) % N] * shift[b, h, j + r] for j in range(-r, r + 1))
                           for i in range(N)])
            wp = ws ** gamma[b, h, 0]
            out[b, h] = wp / wp.sum()
    return out


def _addressing_inputs(rng, B=2, H=3, N=7, M=4, S=3):
    previous = rng.random((B, H, N))
    shift = rng.random((B, H, S))
    return dict(memory=rng.standard_normal((B, N, M)),
                previous=previous / previous.sum(-1, keepdims=True),
                key=rng.standard_normal((B, H, M)), beta=rng.random((B, H, 1)) * 5,
                gate=rng.random((B, H, 1)), shift=shift / shift.sum(-1, keepdims=True),
                gamma=1 + rng.random((B, H, 1)) * 3)


@pytest.mark.parametrize("S", [1, 3, 5])
def test_address_matches_numpy_reference(S):
    arrays = _addressing_inputs(np.random.default_rng(S), S=S)
    w = address(**{k: fg.tensor(v) for k, v in arrays.items()}).numpy()
    np.testing.assert_allclose(w, _np_address(**arrays), atol=1e-9, rtol=1e-7)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    assert (w >= 0).all()


def test_shift_and_sharpen_special_cases():
    w = fg.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]]], dtype=fg.float64)
    right = fg.tensor([[[0.0, 0.0, 1.0]]], dtype=fg.float64)  # all mass on shift +1
    np.testing.assert_allclose(shift_weights(w, right).numpy(), [[[0, 0, 1, 0, 0]]])
    left = fg.tensor([[[1.0, 0.0, 0.0]]], dtype=fg.float64)
    np.testing.assert_allclose(shift_weights(w, left).numpy(), [[[1, 0, 0, 0, 0]]])
    wrap = fg.tensor([[[0.0, 0.0, 0.0, 0.0, 1.0]]], dtype=fg.float64)
    np.testing.assert_allclose(shift_weights(wrap, right).numpy(), [[[1, 0, 0, 0, 0]]])
    soft = fg.tensor([[[0.1, 0.2, 0.3, 0.4]]], dtype=fg.float64)
    np.testing.assert_allclose(sharpen(soft, fg.tensor([[[1.0]]], dtype=fg.float64)).numpy(),
                               soft.numpy(), atol=1e-10)
    sharp = sharpen(soft, fg.tensor([[[50.0]]], dtype=fg.float64)).numpy()
    assert sharp[0, 0, 3] > 0.99
    with pytest.raises(fg.ShapeError, match="shift_weights"):
        shift_weights(w, fg.ones(1, 1, 2, dtype=fg.float64))


def test_content_weights_peak_on_matching_row():
    memory = fg.tensor(np.eye(5)[None], dtype=fg.float64)
    key = fg.tensor([[[0, 0, 3.0, 0, 0]]], dtype=fg.float64)
    w = content_weights(memory, key, fg.tensor([[[100.0]]], dtype=fg.float64)).numpy()
    assert w[0, 0, 2] > 0.999 and abs(w.sum() - 1) < 1e-12


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_address_forward_and_gradients_match_torch(dtype):
    torch = pytest.importorskip("torch")
    arrays = _addressing_inputs(np.random.default_rng(7))
    arrays = {k: v.astype(dtype) for k, v in arrays.items()}
    upstream = np.random.default_rng(8).standard_normal(arrays["previous"].shape).astype(dtype)

    def torch_address(memory, previous, key, beta, gate, shift, gamma):
        dots = key @ memory.transpose(1, 2)
        norms = (key * key).sum(-1, keepdim=True).sqrt() * \
            (memory * memory).sum(-1).sqrt().unsqueeze(1)
        wc = torch.softmax(beta * dots / (norms + 1e-8), -1)
        wg = gate * wc + (1 - gate) * previous
        r = shift.shape[-1] // 2
        ws = sum(torch.roll(wg, j, -1) * shift[..., j + r:j + r + 1] for j in range(-r, r + 1))
        return torch.softmax(gamma * torch.log(ws + 1e-12), -1)

    tt = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    ft = {k: fg.tensor(v, requires_grad=True) for k, v in arrays.items()}
    tw, fw = torch_address(**tt), address(**ft)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == "float32" else dict(atol=1e-10, rtol=1e-8)
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), **tol)
    (tw * torch.tensor(upstream)).sum().backward()
    (fw * fg.tensor(upstream)).sum().backward()
    for k in arrays:
        np.testing.assert_allclose(ft[k].grad.numpy(), tt[k].grad.numpy(), **tol, err_msg=k)


def test_address_gradcheck():
    arrays = _addressing_inputs(np.random.default_rng(11), B=1, H=2, N=5, M=3)
    inputs = [fg.tensor(arrays[k], requires_grad=True)
              for k in ("memory", "previous", "key", "beta", "gate", "shift", "gamma")]
    assert gradcheck(address, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


# --- the machine -------------------------------------------------------------------------------

def _tiny_ntm(dtype=fg.float64, **kwargs):
    fg.manual_seed(0)
    config = dict(input_size=3, output_size=2, controller_size=4, memory_slots=5,
                  memory_width=3, read_heads=1, shift_range=1)
    config.update(kwargs)
    return NTM(NTMConfig(**config)).to(dtype)


def test_ntm_shapes_and_weightings_are_distributions():
    model = _tiny_ntm(fg.float32, read_heads=2)
    x = fg.randn(4, 6, 3)
    logits, weights = model(x, return_weights=True)
    assert logits.shape == (4, 6, 2) and weights.shape == (4, 6, 3, 5)
    w = weights.detach().numpy()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert (w >= 0).all()
    with pytest.raises(fg.ShapeError, match="NTM"):
        model(fg.randn(4, 6, 2))


def test_ntm_gradcheck_every_parameter_and_input():
    model = _tiny_ntm()
    x = fg.tensor(np.random.default_rng(0).standard_normal((2, 3, 3)), requires_grad=True)
    params = list(model.parameters())

    def run(x, *ps):
        return model(x)

    assert gradcheck(run, [x, *params], eps=1e-6, atol=1e-6, rtol=1e-4)


def test_ntm_state_dict_round_trip(tmp_path):
    model = _tiny_ntm(fg.float32)
    names = [k for k, _ in model.named_parameters()]
    assert names == ["read_init", "controller.weight_ih", "controller.weight_hh",
                     "controller.bias_ih", "controller.bias_hh", "heads.weight", "heads.bias",
                     "output.weight", "output.bias"]
    path = tmp_path / "ntm.safetensors"
    fg.save(model.state_dict(), path)
    other = NTM(model.config)
    other.load_state_dict(fg.load(path))
    x = fg.randn(2, 5, 3)
    np.testing.assert_array_equal(other(x).detach().numpy(), model(x).detach().numpy())
    # the head layout: R + 1 heads of (M key, beta, gate, 2r+1 shifts, gamma), then e and a
    assert model.heads.weight.shape == (2 * (3 + 3 + 3) + 2 * 3, 4)


def test_lstm_baseline_and_measures():
    model = LSTMBaseline(3, 2, 5)
    assert model(fg.randn(4, 6, 3)).shape == (4, 6, 2)
    assert parameter_count(model) == 4 * 5 * (3 + 5 + 2) + 5 * 2 + 2
    logits = np.array([[[1.0, -1.0], [2.0, 2.0]]])
    targets = np.array([[[1.0, 1.0], [0.0, 0.0]]])
    assert bit_errors(logits, targets, np.array([[1.0, 0.0]])).tolist() == [1]
    assert bit_errors(logits, targets, np.array([[1.0, 1.0]])).tolist() == [3]
    loss = masked_bce(fg.zeros(1, 2, 2), fg.tensor(targets, dtype=fg.float32),
                      fg.tensor([[1.0, 0.0]]))
    assert abs(loss.item() - np.log(2)) < 1e-6


def test_ntm_learns_a_tiny_copy():
    """Copy of 1-4 vectors of 4 bits: the NTM gets under a tenth of chance's bit errors within
    500 steps (measured every 50 steps; typically after 200-300)."""
    fg.manual_seed(0)
    model = NTM(NTMConfig(input_size=5, output_size=4, controller_size=32, memory_slots=12,
                          memory_width=8))
    optimizer = fg.optim.Adam(model.parameters(), lr=1e-2)
    held_out = copy_task(100, 1, 4, bits=4, seed=123)
    chance = 0.5 * held_out.mask.sum() * 4 / len(held_out.lengths)
    for step in range(1, 501):
        d = copy_task(16, 1, 4, bits=4, seed=step)
        loss = masked_bce(model(fg.from_numpy(d.inputs)), fg.from_numpy(d.targets),
                          fg.from_numpy(d.mask))
        optimizer.zero_grad()
        loss.backward()
        fg.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if step % 50 == 0:
            with fg.no_grad():
                logits = model(fg.from_numpy(held_out.inputs)).numpy()
            errors = bit_errors(logits, held_out.targets, held_out.mask).mean()
            if errors < 0.1 * chance:
                break
    assert errors < 0.1 * chance, (step, errors, chance)
    print(f"tiny copy learned after {step} steps: {errors:.2f} bit errors (chance {chance:.2f})")

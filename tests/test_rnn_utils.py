"""fg.nn.utils.rnn against torch.nn.utils.rnn: padding, packing and unpacking (values, index
fields, gradients through them, errors), and the recurrent layers on packed batches."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.nn.utils import rnn as FR

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn


def _np(t):
    return None if t is None else np.asarray(t.detach().cpu().numpy())


def _weights(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def _seqs(lengths, feature=(2,), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + feature) for n in lengths]


def _backprop(lib, out, seed=1):
    (out * lib.tensor(_weights(tuple(out.shape), seed))).sum().backward()


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence(batch_first, padding_side):
    arrays = _seqs([3, 5, 1], feature=(2, 3))
    res = {}
    for lib, R in ((fg, FR), (torch, TR)):
        seqs = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = R.pad_sequence(seqs, batch_first=batch_first, padding_value=-7.5,
                             padding_side=padding_side)
        _backprop(lib, out)
        res[lib.__name__] = [_np(out)] + [_np(s.grad) for s in seqs]
    for a, b in zip(res["flowgrad"], res["torch"]):
        np.testing.assert_array_equal(a, b)


def test_pad_sequence_errors():
    with pytest.raises(ValueError, match="Expected padding_side to be one of left or right, but "
                                         "got mid."):
        FR.pad_sequence([fg.zeros(2, 3)], padding_side="mid")
    with pytest.raises(ValueError, match=r"sequence 1 has shape \(4, 2\) but sequence 0 has "
                                         r"\(2, 3\)"):
        FR.pad_sequence([fg.zeros(2, 3), fg.zeros(4, 2)])


@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([5, 3, 3, 1], True),
                                                    ([3, 5, 1, 3], False),
                                                    ([2, 2, 2, 2], False)])
def test_pack_padded_sequence(lengths, enforce_sorted, batch_first, as_tensor):
    x = np.random.default_rng(0).standard_normal((4, 5, 2) if batch_first else (5, 4, 2))
    res = {}
    for lib, R in ((fg, FR), (torch, TR)):
        xt = lib.tensor(x, requires_grad=True)
        ls = lib.tensor(lengths) if as_tensor else lengths
        p = R.pack_padded_sequence(xt, ls, batch_first=batch_first,
                                   enforce_sorted=enforce_sorted)
        _backprop(lib, p.data)
        res[lib.__name__] = [_np(f) for f in p] + [_np(xt.grad)]
        assert type(p).__name__ == "PackedSequence" and p._fields == (
            "data", "batch_sizes", "sorted_indices", "unsorted_indices")
    for k, (a, b) in enumerate(zip(res["flowgrad"], res["torch"])):
        assert (a is None) == (b is None), k
        if a is not None:
            assert a.dtype == b.dtype, k
            np.testing.assert_array_equal(a, b, err_msg=str(k))


@pytest.mark.parametrize("total_length", [None, 7])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pad_packed_sequence(enforce_sorted, batch_first, total_length):
    lengths = [4, 3, 1] if enforce_sorted else [3, 1, 4]
    arrays = _seqs(lengths)
    res = {}
    for lib, R in ((fg, FR), (torch, TR)):
        seqs = [lib.tensor(a, requires_grad=True) for a in arrays]
        packed = R.pack_sequence(seqs, enforce_sorted=enforce_sorted)
        out, ls = R.pad_packed_sequence(packed, batch_first=batch_first, padding_value=2.5,
                                        total_length=total_length)
        _backprop(lib, out)
        res[lib.__name__] = [_np(out), _np(ls)] + [_np(s.grad) for s in seqs]
    for a, b in zip(res["flowgrad"], res["torch"]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_unpack_and_unpad_sequence():
    arrays = _seqs([2, 4, 3])
    res = {}
    for lib, R in ((fg, FR), (torch, TR)):
        seqs = [lib.tensor(a, requires_grad=True) for a in arrays]
        unpacked = R.unpack_sequence(R.pack_sequence(seqs, enforce_sorted=False))
        padded = R.pad_sequence(seqs, batch_first=True)
        unpadded = R.unpad_sequence(padded, lib.tensor([2, 4, 3]), batch_first=True)
        total = sum((u * lib.tensor(_weights(tuple(u.shape), k))).sum()
                    for k, u in enumerate(unpacked + unpadded))
        total.backward()
        res[lib.__name__] = [_np(u) for u in unpacked + unpadded] + [_np(s.grad) for s in seqs]
    for a, b in zip(res["flowgrad"], res["torch"]):
        np.testing.assert_array_equal(a, b)
    time_major = FR.unpad_sequence(FR.pad_sequence([fg.tensor(a) for a in arrays]), [2, 4, 3])
    for a, u in zip(arrays, time_major):
        np.testing.assert_array_equal(u.numpy(), a)


def test_invert_permutation_and_packed_sequence_methods():
    perm = [2, 0, 3, 1]
    np.testing.assert_array_equal(FR.invert_permutation(fg.tensor(perm)).numpy(),
                                  TR.invert_permutation(torch.tensor(perm)).numpy())
    assert FR.invert_permutation(None) is None
    p = FR.pack_sequence([fg.zeros(3, 2), fg.zeros(2, 2)])
    assert p.double().data.dtype == fg.float64 and p.to(fg.float64).batch_sizes is p.batch_sizes
    assert p.float() is p and not p.is_cuda and p.cpu().data.shape == (5, 2)
    q = FR.PackedSequence(fg.zeros(3, 2), fg.tensor([2, 1]), fg.tensor([1, 0]))
    np.testing.assert_array_equal(q.unsorted_indices.numpy(), [1, 0])


def _errors(lib, R):
    x = lib.zeros(4, 3, 2)
    return {
        "unsorted": lambda: R.pack_padded_sequence(x, [2, 3, 1]),
        "unsorted_sequences": lambda: R.pack_sequence([lib.zeros(2), lib.zeros(3)]),
        "zero_length": lambda: R.pack_padded_sequence(x, [2, 3, 0], enforce_sorted=False),
        "count": lambda: R.pack_padded_sequence(x, [2, 1]),
        "count_batch_first": lambda: R.pack_padded_sequence(x, [3, 3, 1], batch_first=True),
        "total_length": lambda: R.pad_packed_sequence(R.pack_padded_sequence(x, [4, 3, 1]),
                                                      total_length=2),
    }


@pytest.mark.parametrize("case", list(_errors(torch, TR)))
def test_errors_match_torch(case):
    with pytest.raises(Exception) as expected:
        _errors(torch, TR)[case]()
    with pytest.raises(type(expected.value)) as got:
        _errors(fg, FR)[case]()
    assert str(expected.value) in str(got.value)


def test_length_beyond_the_padded_steps_is_refused():
    with pytest.raises(ValueError, match="a length of 6 exceeds the 4 time steps"):
        FR.pack_padded_sequence(fg.zeros(4, 3, 2), [6, 3, 1])


# --- recurrent layers on packed batches ----------------------------------------------------------

KINDS = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"})}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bidirectional,enforce_sorted", [(False, True), (True, False),
                                                          (True, True), (False, False)])
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_on_packed_batch_matches_torch(kind, bidirectional, enforce_sorted, dtype):
    name, extra = KINDS[kind]
    tm = getattr(torch.nn, name)(3, 4, 2, bidirectional=bidirectional, **extra)
    tm = tm.to(getattr(torch, dtype))
    fm = getattr(fg.nn, name)(3, 4, 2, bidirectional=bidirectional, **extra,
                              dtype=getattr(fg, dtype))
    fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4, 3)).astype(dtype)
    d = 2 if bidirectional else 1
    states = [rng.standard_normal((2 * d, 4, 4)).astype(dtype)
              for _ in range(2 if kind == "lstm" else 1)]
    res = {}
    for lib, R, m in ((fg, FR, fm), (torch, TR, tm)):
        xt = lib.tensor(x, requires_grad=True)
        st = [lib.tensor(s, requires_grad=True) for s in states]
        packed = R.pack_padded_sequence(xt, lengths, enforce_sorted=enforce_sorted)
        out, hn = m(packed, tuple(st) if kind == "lstm" else st[0])
        assert type(out).__name__ == "PackedSequence"
        padded, ls = R.pad_packed_sequence(out)
        outs = [padded, *hn] if kind == "lstm" else [padded, hn]
        total = sum((o * lib.tensor(_weights(tuple(o.shape), k).astype(dtype))).sum()
                    for k, o in enumerate(outs))
        total.backward()
        res[lib.__name__] = ([_np(o) for o in outs] + [_np(ls), _np(xt.grad)]
                             + [_np(s.grad) for s in st] + [_np(p.grad) for p in m.parameters()])
    tol = dict(atol=1e-10, rtol=1e-8) if dtype == "float64" else dict(atol=1e-5, rtol=1e-4)
    for k, (a, b) in enumerate(zip(res["flowgrad"], res["torch"])):
        assert a.shape == b.shape, k
        np.testing.assert_allclose(a, b, **tol, err_msg=str(k))


def test_packed_input_without_initial_state_and_checks():
    m = fg.nn.LSTM(3, 4)
    packed = FR.pack_sequence([fg.zeros(4, 3), fg.zeros(2, 3)])
    out, (h, c) = m(packed)
    assert out.data.shape == (6, 4) and h.shape == (1, 2, 4) and c.shape == (1, 2, 4)
    np.testing.assert_array_equal(out.batch_sizes.numpy(), [2, 2, 1, 1])
    with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size. "
                                         "Expected 3, got 5"):
        m(FR.pack_sequence([fg.zeros(4, 5), fg.zeros(2, 5)]))
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(1, 2, 4\), got "
                                         r"\[1, 3, 4\]"):
        m(packed, (fg.zeros(1, 3, 4), fg.zeros(1, 2, 4)))

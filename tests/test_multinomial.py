"""fg.multinomial / Tensor.multinomial: torch's argument checks and output dtype and shapes; the
draws cannot be torch's (another random engine), so their distribution is tested: frequencies
within a chi-square bound, distinct samples without replacement, zero weights never drawn, and
the same indices under the same seed."""

import numpy as np
import pytest

import flowgrad as fg


def _chi2_ok(counts, probs, n):
    """Pearson's statistic below the 0.9999 quantile of chi-square (Wilson-Hilferty)."""
    keep = probs > 0
    expected = n * probs[keep]
    stat = float((((counts[keep] - expected) ** 2) / expected).sum())
    k = int(keep.sum()) - 1
    z = 3.719  # the standard normal's 0.9999 quantile
    bound = k * (1 - 2 / (9 * k) + z * np.sqrt(2 / (9 * k))) ** 3
    return stat < bound, stat, bound


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frequencies_with_replacement(dtype):
    fg.manual_seed(0)
    w = np.array([1.0, 0.0, 2.0, 5.0, 0.5, 1.5])
    n = 200_000
    s = fg.multinomial(fg.tensor(w.astype(dtype)), n, replacement=True)
    assert s.dtype == np.int64 and s.shape == (n,) and not s.requires_grad
    counts = np.bincount(s.numpy(), minlength=len(w))
    assert counts[1] == 0
    ok, stat, bound = _chi2_ok(counts, w / w.sum(), n)
    assert ok, (stat, bound)


def test_frequencies_rows():
    g = fg.Generator().manual_seed(3)
    w = np.array([[0.2, 0.3, 0.5, 0.0], [4.0, 0.0, 0.0, 1.0]])
    s = fg.tensor(w).multinomial(50_000, True, generator=g).numpy()
    assert s.shape == (2, 50_000)
    for row, ws in zip(s, w):
        counts = np.bincount(row, minlength=4)
        assert np.all(counts[ws == 0] == 0)
        assert _chi2_ok(counts, ws / ws.sum(), len(row))[0]


def test_without_replacement_distinct_and_first_draw_distribution():
    fg.manual_seed(1)
    w = np.array([3.0, 1.0, 0.0, 2.0, 4.0])
    W = fg.tensor(np.tile(w, (20_000, 1)))
    s = fg.multinomial(W, 4).numpy()
    assert s.shape == (20_000, 4) and s.dtype == np.int64
    assert all(len(set(r)) == 4 for r in s[:2000])
    assert not np.any(s == 2)  # four positive weights: the zero one is never needed
    # the first index of each row is one draw from the weights
    assert _chi2_ok(np.bincount(s[:, 0], minlength=5), w / w.sum(), len(s))[0]
    # the second, given the first: P(second = j | first = i) = w_j / (W - w_i)
    sel = s[:, 0] == 4
    cond = w.copy()
    cond[4] = 0
    assert _chi2_ok(np.bincount(s[sel, 1], minlength=5), cond / cond.sum(), int(sel.sum()))[0]


def test_without_replacement_all_categories_is_a_permutation():
    s = fg.multinomial(fg.tensor([1.0, 0.0, 3.0]), 3).numpy()
    assert sorted(s) == [0, 1, 2] and s[-1] == 1  # the zero weight only after the others


def test_reproducible_under_seed():
    w = fg.tensor([0.1, 0.2, 0.3, 0.4])
    fg.manual_seed(7)
    a = fg.multinomial(w, 10, True).numpy()
    b = w.multinomial(3).numpy()
    fg.manual_seed(7)
    np.testing.assert_array_equal(fg.multinomial(w, 10, True).numpy(), a)
    np.testing.assert_array_equal(w.multinomial(3).numpy(), b)
    g1, g2 = fg.Generator().manual_seed(5), fg.Generator().manual_seed(5)
    np.testing.assert_array_equal(fg.multinomial(w, 8, True, generator=g1).numpy(),
                                  fg.multinomial(w, 8, True, generator=g2).numpy())
    np.testing.assert_array_equal(fg.multinomial(w, 4, generator=11).numpy(),
                                  fg.multinomial(w, 4, generator=11).numpy())


def test_errors_as_torch(torch):
    bad = [
        (lambda m: m.multinomial(m.tensor([1.0, 2.0, 3.0]), 4), "n_sample > prob_dist"),
        (lambda m: m.multinomial(m.tensor([0.0, 0.0]), 1), "sum of probabilities <= 0"),
        (lambda m: m.multinomial(m.tensor([[1.0, 1.0], [0.0, 0.0]]), 1, True),
         "sum of probabilities <= 0"),
        (lambda m: m.multinomial(m.tensor([1.0, -2.0]), 1), "element < 0"),
        (lambda m: m.multinomial(m.tensor([1.0, float("inf")]), 1), "element < 0"),
        (lambda m: m.multinomial(m.tensor([1.0, float("nan")]), 1), "element < 0"),
        (lambda m: m.multinomial(m.ones(2, 2, 2), 1), "1 or 2 dim"),
        (lambda m: m.multinomial(m.tensor(1.0), 1), "1 or 2 dim"),
        (lambda m: m.multinomial(m.tensor([1, 2]), 1), "floating-point"),
        (lambda m: m.multinomial(m.tensor([1.0, 2.0]), 0), "n_sample <= 0"),
    ]
    for f, msg in bad:
        for m in (torch, fg):
            with pytest.raises(RuntimeError, match=msg):
                f(m)
    for m in (torch, fg):
        with pytest.raises(TypeError):
            m.multinomial(m.tensor([1.0, 2.0]), 1.5)


def test_edge_shapes_as_torch(torch):
    # more samples than positive weights without replacement: allowed, as in torch
    s = fg.multinomial(fg.tensor([[0.0, 0.0, 1.0]]), 2).numpy()
    assert s.shape == (1, 2) and s[0, 0] == 2
    assert torch.multinomial(torch.tensor([[0.0, 0.0, 1.0]]), 2)[0, 0] == 2
    assert fg.multinomial(fg.zeros(0, 3), 2).shape == (0, 2)
    assert tuple(torch.multinomial(torch.zeros(0, 3), 2).shape) == (0, 2)

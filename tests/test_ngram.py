"""flowgrad.models.ngram: interpolated modified Kneser-Ney (Chen & Goodman 1998) and deleted
interpolation with EM weights (Jelinek & Mercer 1980; Bengio et al. 2003's baseline).

Hand-computed probabilities on a toy stream, a dictionary-of-tuples reference implementation
on random streams, normalisation for orders 1..5, EM's monotone held-out likelihood."""

import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.datasets.text import UnknownTokenError, Vocabulary
from flowgrad.models import InterpolatedNGram, KneserNey
from flowgrad.models.ngram import NGramCounts, _modified_kn_discounts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# The toy stream a b a b c a over V = {a, b, c, d} (d never occurs), ids 0..3.
A, B, C, D = 0, 1, 2, 3
TOY = [A, B, A, B, C, A]
FIXED = [[0.5, 0.75, 1.0], [0.5, 1.0, 1.5], [0.5, 1.0, 1.5]]  # [D1, D2, D3+] of orders 1, 2, 3


# --- Kneser-Ney by hand ----------------------------------------------------------------------------

def test_kneser_ney_bigram_by_hand():
    kn = KneserNey(2, vocab=4, discounts=FIXED[:2]).fit(TOY)
    # Unigram level, continuation counts N1+(. w) over the bigram types ab, ba, bc, ca:
    #   a <- {b, c}: 2,  b <- {a}: 1,  c <- {b}: 1,  d: 0;  total 4.
    #   alpha(a) = (2 - D2) / 4 = (2 - 0.75) / 4 = 0.3125, alpha(b) = alpha(c) = (1 - 0.5) / 4
    #   = 0.125; gamma = (D1 * 2 + D2 * 1) / 4 = (1 + 0.75) / 4 = 0.4375, spread over |V| = 4:
    #   P1 = alpha + 0.109375 -> a 0.421875, b 0.234375, c 0.234375, d 0.109375.
    p1 = np.array([0.421875, 0.234375, 0.234375, 0.109375])
    np.testing.assert_allclose(kn.next_distribution([]), p1, rtol=0, atol=1e-15)
    # Bigram level, raw counts. Context b: c(ba) = c(bc) = 1, total 2, D1 = 0.5:
    #   P(a|b) = (1 - 0.5)/2 + gamma(b) P1(a), gamma(b) = 0.5 * 2 / 2 = 0.5
    #          = 0.25 + 0.5 * 0.421875 = 0.4609375
    #   P(c|b) = 0.25 + 0.5 * 0.234375 = 0.3671875, P(b|b) = 0.1171875, P(d|b) = 0.0546875.
    assert kn.prob(A, [B]) == pytest.approx(0.4609375, abs=1e-15)
    np.testing.assert_allclose(kn.next_distribution([B]),
                               [0.4609375, 0.1171875, 0.3671875, 0.0546875], atol=1e-15)
    # Context a: c(ab) = 2, total 2, D2 = 1.0: P(b|a) = (2 - 1)/2 + (1.0 * 1 / 2) * 0.234375.
    assert kn.prob(B, [A]) == pytest.approx(0.5 + 0.5 * 0.234375, abs=1e-15)
    # Context d was never seen: back off to P1.
    np.testing.assert_allclose(kn.next_distribution([D]), p1, atol=1e-15)
    # log_prob / perplexity of the stream "b a" scored from its start: P1(b) * P(a|b).
    lp = kn.log_prob([B, A])
    assert lp == pytest.approx(math.log(0.234375) + math.log(0.4609375), abs=1e-12)
    assert kn.perplexity([B, A]) == pytest.approx(math.exp(-lp / 2), rel=1e-12)
    # history: a preceding token is context, not scored.
    assert kn.log_prob([A], history=[B]) == pytest.approx(math.log(0.4609375), abs=1e-12)


def test_kneser_ney_trigram_by_hand():
    kn = KneserNey(3, vocab=4, discounts=FIXED).fit(TOY)
    # Bigram level now uses continuation counts N1+(. x y) over the trigram types
    #   aba, bab, abc, bca: ab <- {b} 1, ba <- {a} 1, bc <- {a} 1, ca <- {b} 1.
    #   Context b: N1+(.ba) = N1+(.bc) = 1 -> as before P2(a|b) = 0.4609375, P2(c|b) =
    #   0.3671875, P2(b|b) = 0.1171875. Context a: N1+(.ab) = 1, total 1:
    #   P2(b|a) = (1 - 0.5)/1 + (0.5 * 1 / 1) * 0.234375 = 0.6171875.
    # Trigram level, raw counts. Context (a, b): c(aba) = c(abc) = 1, total 2:
    #   gamma(ab) = 0.5 * 2 / 2 = 0.5
    #   P(c|a b) = (1 - 0.5)/2 + 0.5 * P2(c|b) = 0.25 + 0.5 * 0.3671875 = 0.43359375
    #   P(b|a b) = 0 + 0.5 * P2(b|b) = 0.05859375
    assert kn.prob(C, [A, B]) == pytest.approx(0.43359375, abs=1e-15)
    assert kn.prob(B, [A, B]) == pytest.approx(0.05859375, abs=1e-15)
    # Context (b, a): c(bab) = 1, total 1: P(b|b a) = 0.5 + 0.5 * P2(b|a) = 0.80859375.
    assert kn.prob(B, [B, A]) == pytest.approx(0.80859375, abs=1e-15)
    # Context (c, a) is the end of the stream, never followed: P(.|c a) = P2(.|a).
    np.testing.assert_allclose(kn.next_distribution([C, A]), kn.next_distribution([A]),
                               atol=1e-15)
    assert kn.prob(B, [C, A]) == pytest.approx(0.6171875, abs=1e-15)
    # Only the last two context tokens matter.
    assert kn.prob(C, [D, D, A, B]) == pytest.approx(0.43359375, abs=1e-15)


def test_modified_discounts_from_count_of_counts():
    counts = np.array([1] * 10 + [2] * 4 + [3] * 3 + [4] * 2 + [7])  # n1..n4 = 10, 4, 3, 2
    Y = 10 / (10 + 2 * 4)
    np.testing.assert_allclose(_modified_kn_discounts(counts),
                               [0, 1 - 2 * Y * 4 / 10, 2 - 3 * Y * 3 / 4, 3 - 4 * Y * 2 / 3])


# --- a dictionary-of-tuples reference --------------------------------------------------------------

def _reference_kn(stream, n, V):
    """Modified KN written the slow way, straight from Chen & Goodman's equations."""
    grams = [Counter()] + [Counter(tuple(stream[i:i + k]) for i in range(len(stream) - k + 1))
                           for k in range(1, n + 1)]
    counts = [None] * (n + 1)
    counts[n] = grams[n]
    for k in range(1, n):
        counts[k] = Counter(g[1:] for g in grams[k + 1])  # N1+(. g)
    disc = [None] + [_modified_kn_discounts(np.array(list(counts[k].values())))
                     for k in range(1, n + 1)]

    def prob(w, h):
        k = len(h) + 1
        if k == 0 or k > n:
            return 1.0 / V if k == 0 else prob(w, h[1:])
        lower = prob(w, h[1:]) if k > 1 else 1.0 / V
        follow = {g[-1]: c for g, c in counts[k].items() if g[:-1] == h and c > 0}
        total = sum(follow.values())
        if total == 0:
            return lower
        D = disc[k]
        mass = sum(D[min(c, 3)] for c in follow.values())
        c = follow.get(w, 0)
        return max(c - D[min(c, 3)], 0) / total + mass / total * lower

    return lambda w, h: prob(w, tuple(h)[max(0, len(h) - (n - 1)):] if n > 1 else ())


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_kneser_ney_matches_reference(n):
    rng = np.random.default_rng(n)
    V = 6
    stream = [int(x) for x in rng.choice(5, size=300, p=[0.4, 0.25, 0.2, 0.1, 0.05])]
    kn = KneserNey(n, vocab=V).fit(np.array(stream))
    ref = _reference_kn(stream, n, V)
    contexts = [()] + [tuple(stream[i:i + n - 1]) for i in range(0, 40, 3)] + \
        [tuple(rng.integers(0, V, size=n - 1).tolist()) for _ in range(10)]
    for h in contexts:
        h = h if n > 1 else ()
        dist = kn.next_distribution(h)
        want = [ref(w, h) for w in range(V)]
        np.testing.assert_allclose(dist, want, rtol=1e-12, atol=1e-15)
    # sequence scoring agrees with the distributions
    seq = stream[:30]
    lp = kn.log_prob(seq, reduction="none")
    for t in range(len(seq)):
        assert lp[t] == pytest.approx(math.log(ref(seq[t], tuple(seq[max(0, t - n + 1):t]))),
                                      abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_distributions_sum_to_one_seen_and_unseen(n):
    words = ("the cat sat on the mat . the dog sat on the log . a cat saw the dog . "
             "the dog saw a cat on a mat .").split()
    vocab = Vocabulary.build(words + ["unseen"], unk="<unk>")  # <unk> and "unseen": count 0
    kn = KneserNey(n, vocab=vocab).fit(words)
    ji = InterpolatedNGram(n, vocab=vocab).fit(words, heldout="the cat sat on a log .".split())
    seen = [tuple(words[i:i + n - 1]) for i in range(len(words) - n + 1)]
    unseen = [tuple(c) for c in itertools.product(["<unk>", "dog", "unseen"], repeat=n - 1)]
    for model in (kn, ji):
        for h in set(seen) | set(unseen) | {(), ("the",)}:
            d = model.next_distribution(list(h))
            assert d.shape == (len(vocab),) and np.all(d > 0)
            assert d.sum() == pytest.approx(1.0, abs=1e-12)
            w = vocab.itos[len(h) % len(vocab)]
            assert model.prob(w, list(h)) == pytest.approx(d[vocab[w]], abs=1e-15)


# --- deleted interpolation -------------------------------------------------------------------------

def test_interpolated_bigram_and_trigram_by_hand():
    m = InterpolatedNGram(2, vocab=4, buckets=None).fit(TOY)
    # ML: P1 = a 3/6, b 2/6, c 1/6, d 0; P2(.|b) = a 1/2, c 1/2; P2(b|a) = 1; P2(a|c) = 1.
    m.weights = np.array([[0.1, 0.3, 0.6]])  # [l0 (uniform), l1, l2]
    # P(a|b) = 0.1/4 + 0.3 * 3/6 + 0.6 * 1/2 = 0.025 + 0.15 + 0.3 = 0.475
    assert m.prob(A, [B]) == pytest.approx(0.475, abs=1e-15)
    # P(d|b) = 0.1/4 = 0.025 (d was never seen)
    assert m.prob(D, [B]) == pytest.approx(0.025, abs=1e-15)
    # Unseen context d: P2 is replaced by P1, P(a|d) = 0.025 + (0.3 + 0.6) * 0.5 = 0.475.
    assert m.prob(A, [D]) == pytest.approx(0.475, abs=1e-15)
    t = InterpolatedNGram(3, vocab=4, buckets=None).fit(TOY)
    t.weights = np.array([[0.1, 0.2, 0.3, 0.4]])
    # Context (a, b): c(aba) = c(abc) = 1, so P3(c|a b) = 1/2; P2(c|b) = 1/2; P1(c) = 1/6:
    # P(c|a b) = 0.1/4 + 0.2/6 + 0.3/2 + 0.4/2 = 0.025 + 0.0333... + 0.15 + 0.2 = 0.408333...
    assert t.prob(C, [A, B]) == pytest.approx(0.025 + 0.2 / 6 + 0.15 + 0.2, abs=1e-15)
    # Context (c, a) is never followed: P3 -> P2(.|a), P(b|c a) = 0.025 + 0.2 * 2/6 + 0.7 * 1.
    assert t.prob(B, [C, A]) == pytest.approx(0.025 + 0.2 * 2 / 6 + 0.7, abs=1e-15)


@pytest.mark.parametrize("buckets", [None, (0, 1, 3)])
def test_em_weights_monotone_normalised_and_stationary(buckets):
    rng = np.random.default_rng(0)
    train = rng.choice(8, size=2000, p=np.linspace(1, 3, 8) / 16).tolist()
    train = [w if i % 7 else (train[i - 1] + 1) % 8 for i, w in enumerate(train)]  # some structure
    held = [int(x) for x in rng.choice(9, size=600)]  # id 8 never occurs in train
    m = InterpolatedNGram(3, vocab=9, buckets=buckets).fit(train, heldout=held)
    h = np.array(m.history)
    assert len(h) > 3 and np.all(np.diff(h) >= -1e-9)
    assert h[-1] > h[0] + 1.0  # better than the uniform starting weights
    np.testing.assert_allclose(m.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(m.weights >= 0)
    assert m.log_prob(held) == pytest.approx(h[-1], abs=1e-6 * abs(h[-1]))
    # At EM's fixed point, each bucket's mean of P_j / P_mix is 1 for every weight > 0.
    m.fit_weights(held, max_iter=5000, tol=1e-15)
    Q, b = m._components(np.array(held))
    mix = np.einsum("ij,ij->i", Q, m.weights[b])
    for q in np.unique(b):
        ratio = (Q[b == q] / mix[b == q, None]).mean(axis=0)
        big = m.weights[q] > 1e-3
        np.testing.assert_allclose(ratio[big], 1.0, atol=1e-4)


def test_bucketed_weights_depend_on_context_frequency():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 5, size=3000).tolist()
    m = InterpolatedNGram(2, vocab=6, buckets=(0, 1, 1000)).fit(train, heldout=train[:500])
    assert m.weights.shape == (3, 3)
    b_held = m._components(np.array(train[:500]))[1]
    assert np.bincount(b_held, minlength=3).tolist() == [1, 499, 0]
    # bucket 2 has no held-out position: it gets the pooled weights, close to bucket 1's
    np.testing.assert_allclose(m.weights[2], m.weights[1], atol=1e-2)
    assert not np.allclose(m.weights[0], m.weights[1], atol=1e-2)
    b = m._bucket(np.array([0, 1, 999, 1000, 10**6]))
    assert b.tolist() == [0, 1, 1, 2, 2]


# --- interface -------------------------------------------------------------------------------------

def test_words_unknown_to_unk_and_errors():
    words = "a b a c a b".split()
    kn = KneserNey(2).fit(words)  # builds a vocabulary with <unk>
    assert kn.vocab.unk == "<unk>" and len(kn.vocab) == 4
    assert kn.prob("zebra", ["a"]) == kn.prob("<unk>", ["a"])
    assert kn.prob("b", ["zebra"]) == kn.prob("b", ["<unk>"])
    assert kn.perplexity(fg.tensor(kn.vocab.encode(words))) == pytest.approx(
        kn.perplexity(words))
    strict = KneserNey(2, vocab=Vocabulary.build(words)).fit(words)
    with pytest.raises(UnknownTokenError, match="'zebra'"):
        strict.prob("zebra", ["a"])
    with pytest.raises(RuntimeError, match="not fitted"):
        KneserNey(3).prob(0, [1])
    with pytest.raises(ValueError, match="orders 1..5"):
        KneserNey(6)
    with pytest.raises(ValueError, match="order must be an int >= 1"):
        InterpolatedNGram(0)
    with pytest.raises(ValueError, match=r"token ids must be in 0..2"):
        KneserNey(2, vocab=3).fit([0, 1, 5])
    with pytest.raises(ValueError, match=r"token ids must be in 0..2, got 0..7"):
        KneserNey(2, vocab=3).fit([0, 1, 2]).log_prob(np.array([0, 7]))
    with pytest.raises(ValueError, match="reduction"):
        kn.log_prob(words, reduction="max")
    with pytest.raises(TypeError, match="no Vocabulary"):
        KneserNey(2, vocab=5).fit([0, 1, 2]).prob("a")


def test_ngram_counts_tables():
    t = NGramCounts([A, B, A, B, C, A], 3, 4)
    assert t.counts[1].tolist() == [3, 2, 1, 0]
    bigrams = {(int(k) // 4, int(k) % 4): int(c) for k, c in zip(t.keys[2], t.counts[2])}
    assert bigrams == {(A, B): 2, (B, A): 1, (B, C): 1, (C, A): 1}
    assert t.n_types(3) == 4 and t.counts[3].tolist() == [1, 1, 1, 1]
    g = t.stream_ids([A, B, C, D])
    assert g[2][0] == -1 and g[2][1] == t.context_id([A, B]) and g[2][3] == -1
    assert g[3][2] >= 0 and g[3][3] == -1 and t.context_id([D, A]) == -1


@pytest.mark.skipif(not (SHARED / "ptb").is_dir(), reason="../shared/data/ptb is not here")
def test_ptb_valid_kneser_ney_normalised():
    from flowgrad.datasets.text import PennTreebank
    ptb = PennTreebank(download=False)
    kn = KneserNey(4, vocab=ptb.vocab).fit(ptb.valid)
    assert kn.next_distribution(["<eos>", "the"]).sum() == pytest.approx(1.0, abs=1e-9)
    assert kn.next_distribution(ptb.tokens("valid")[10:13]).sum() == pytest.approx(1, abs=1e-9)
    lp = kn.log_prob(ptb.test[:5000], reduction="none")
    assert np.all(np.isfinite(lp)) and lp.shape == (5000,)

"""Count-based n-gram language models, the baselines of Bengio et al. 2003 ("A Neural
Probabilistic Language Model", JMLR 3, Tables 1-2) and of Mikolov's PTB results (KN5 141.2):

- ``InterpolatedNGram``: deleted interpolation (Jelinek & Mercer 1980), P = sum_k l_k P_k^ML +
  l_0 / |V|, the weights fit by EM on held-out data, per bucket of the context's frequency as in
  Bengio et al. 2003 (``buckets=None``: one global set of weights).
- ``KneserNey``: interpolated modified Kneser-Ney (Chen & Goodman 1998, TR-10-98):
  discounts D1, D2, D3+ per order from the count-of-counts, continuation counts N1+(. h w) for
  the lower orders, down to a uniform distribution over the vocabulary.

Sentence boundaries: a corpus is one stream of tokens, as in the NPLM paper; nothing is added at
sentence starts beyond what the corpus holds (PTB's and WikiText's <eos> is an ordinary token,
so it is also the context of each sentence's first word). A scored sequence starts with the
context it has (the first token gets the unigram estimate), unless ``history`` gives the tokens
before it.

The tables are NumPy arrays: a k-gram's id is its rank among the sorted keys
``id(context (k-1)-gram) * |V| + word``, so each order is one ``np.unique`` and one
``np.searchsorted`` per query, and the k-grams of one context are a contiguous range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..datasets.text import Vocabulary

__all__ = ["InterpolatedNGram", "KneserNey", "NGramCounts"]


class NGramCounts:
    """The k-gram types (k = 1..order) of one int token stream over a vocabulary of size V.

    For k >= 2: ``keys[k]`` sorted unique int64 keys ``ctx * V + w`` (ctx the id of the
    (k-1)-gram context), ``counts[k]`` their counts and ``suffix[k]`` the id of the (k-1)-gram
    made of their last k-1 words. 1-gram ids are the word ids; ``counts[1]`` has length V."""

    def __init__(self, ids, order: int, vocab_size: int) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        V = self.V = int(vocab_size)
        self.order = order
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"token ids must be in 0..{V - 1}, got {ids.min()}..{ids.max()}")
        self.keys: list = [None, np.arange(V, dtype=np.int64)]
        self.counts: list = [None, np.bincount(ids, minlength=V).astype(np.int64)]
        self.suffix: list = [None, None]
        gid = ids  # id of the (k-1)-gram ending at each position t >= k-2
        for k in range(2, order + 1):
            if gid.size < 2:
                self.keys.append(np.zeros(0, np.int64))
                self.counts.append(np.zeros(0, np.int64))
                self.suffix.append(np.zeros(0, np.int64))
                gid = np.zeros(0, np.int64)
                continue
            key = gid[:-1] * V + ids[k - 1:]
            uniq, first, inv, cnt = np.unique(key, return_index=True, return_inverse=True,
                                              return_counts=True)
            self.keys.append(uniq)
            self.counts.append(cnt.astype(np.int64))
            self.suffix.append(gid[1:][first])
            gid = inv.reshape(-1).astype(np.int64)

    def n_types(self, k: int) -> int:
        return len(self.keys[k])

    def find(self, k: int, key) -> np.ndarray:
        """The ids of k-gram ``key``s (-1 where absent or where ``key`` < 0)."""
        key = np.asarray(key, dtype=np.int64)
        if k == 1:
            return np.where((key >= 0) & (key < self.V), key, -1)
        table = self.keys[k]
        if table.size == 0:
            return np.full(key.shape, -1, np.int64)
        pos = np.minimum(np.searchsorted(table, key), table.size - 1)
        return np.where((key >= 0) & (table[pos] == key), pos, -1)

    def stream_ids(self, ids) -> list:
        """For a stream ``ids``: entry k (k = 1..order) is the id of the k-gram ending at each
        position (length len(ids); -1 where it is not in the tables or t < k-1)."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.size
        out = [None, ids.copy()]
        for k in range(2, self.order + 1):
            g = np.full(n, -1, np.int64)
            if n >= k:
                prev = out[k - 1][k - 2:n - 1]
                g[k - 1:] = self.find(k, np.where(prev >= 0, prev * self.V + ids[k - 1:], -1))
            out.append(g)
        return out

    def context_id(self, context: Sequence[int]) -> int:
        """The id of the j-gram ``context`` (j = len(context) >= 1), -1 when unseen."""
        g = int(context[0])
        for k in range(2, len(context) + 1):
            if g < 0:
                return -1
            g = int(self.find(k, g * self.V + int(context[k - 1])))
        return g

    def range_of(self, k: int, ctx: int) -> tuple[int, int]:
        """The slice of k-gram ids whose context is the (k-1)-gram ``ctx``."""
        table = self.keys[k]
        lo, hi = np.searchsorted(table, [ctx * self.V, (ctx + 1) * self.V])
        return int(lo), int(hi)


class _NGramModel:
    """What both models share: the vocabulary, encoding, and scoring a sequence."""

    def __init__(self, order: int, vocab=None) -> None:
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        self.order = order
        self.vocab: Vocabulary | None = None
        self.vocab_size: int | None = None
        if isinstance(vocab, Vocabulary):
            self.vocab, self.vocab_size = vocab, len(vocab)
        elif vocab is not None:
            self.vocab_size = int(vocab)
        self.tables: NGramCounts | None = None

    # encoding ----------------------------------------------------------------------------------
    def _encode(self, tokens) -> np.ndarray:
        """Word strings (through the vocabulary) or int ids -> int64 ids."""
        if hasattr(tokens, "numpy") and not isinstance(tokens, np.ndarray):
            tokens = tokens.numpy()
        if isinstance(tokens, np.ndarray) and tokens.dtype.kind in "iu":
            return self._in_range(tokens.astype(np.int64).ravel())
        tokens = list(tokens)
        if all(isinstance(t, (int, np.integer)) for t in tokens):
            return self._in_range(np.asarray(tokens, dtype=np.int64))
        if self.vocab is None:
            raise TypeError(f"{type(self).__name__} got word strings but has no Vocabulary; "
                            f"pass vocab=Vocabulary(...) or fit on strings first")
        return self.vocab.encode(tokens)  # unknown words -> <unk> (or UnknownTokenError)

    def _in_range(self, ids: np.ndarray) -> np.ndarray:
        V = self.vocab_size
        if V is not None and ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"token ids must be in 0..{V - 1}, got {ids.min()}..{ids.max()}")
        return ids

    def _word_id(self, word) -> int:
        if isinstance(word, (int, np.integer)):
            return int(word)
        return int(self._encode([word])[0])

    def _check_fitted(self) -> NGramCounts:
        if self.tables is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(tokens) first")
        return self.tables

    def _count(self, tokens) -> np.ndarray:
        """Build the tables; words without a vocabulary get one (with <unk>), ids without a
        size get max id + 1."""
        if hasattr(tokens, "numpy") and not isinstance(tokens, np.ndarray):
            tokens = tokens.numpy()
        if not isinstance(tokens, np.ndarray):
            tokens = list(tokens)
        if self.vocab is None and self.vocab_size is None and len(tokens) \
                and isinstance(tokens[0], str):
            self.vocab = Vocabulary.build(tokens, unk="<unk>")
            self.vocab_size = len(self.vocab)
        ids = self._encode(tokens)
        if self.vocab_size is None:
            self.vocab_size = int(ids.max()) + 1 if ids.size else 1
        self.tables = NGramCounts(ids, self.order, self.vocab_size)
        return ids

    # scoring -----------------------------------------------------------------------------------
    def _probs(self, ids: np.ndarray) -> np.ndarray:  # per-position probabilities
        raise NotImplementedError

    def log_prob(self, sequence, history=None, reduction: str = "sum"):
        """Natural-log probability of ``sequence`` (words or ids), each token given the ones
        before it (and ``history``, tokens that precede it and are not scored).
        ``reduction``: "sum" (a float), "mean" or "none" (the per-token array)."""
        self._check_fitted()
        ids = self._encode(sequence)
        h = self._encode(history) if history is not None else np.zeros(0, np.int64)
        lp = np.log(self._probs(np.concatenate([h, ids]))[h.size:])
        if reduction == "none":
            return lp
        if reduction == "sum":
            return float(lp.sum())
        if reduction == "mean":
            return float(lp.mean())
        raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")

    def perplexity(self, sequence, history=None) -> float:
        """exp(-mean log P(w_t | context)) over every token of ``sequence``."""
        return math.exp(-self.log_prob(sequence, history, reduction="mean"))

    def prob(self, word, context=()) -> float:
        """P(word | context); only the last order-1 tokens of ``context`` matter."""
        self._check_fitted()
        ctx = list(self._encode(list(context)))[-(self.order - 1):] if self.order > 1 else []
        return float(self._probs(np.asarray(ctx + [self._word_id(word)], np.int64))[-1])

    def _context_ids(self, context) -> list:
        """c[k] = id of the (k-1)-gram made of the last k-1 context tokens (k = 2..order),
        -1 when unseen or the context is shorter."""
        t = self._check_fitted()
        ctx = self._encode(list(context)) if len(context) else np.zeros(0, np.int64)
        out = [None, None]
        for k in range(2, self.order + 1):
            out.append(t.context_id(ctx[-(k - 1):]) if ctx.size >= k - 1 else -1)
        return out


def _modified_kn_discounts(counts: np.ndarray) -> np.ndarray:
    """[0, D1, D2, D3+] from the count-of-counts n1..n4 (Chen & Goodman 1998, section 3):
    Y = n1/(n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3. A zero
    count-of-count (tiny corpora) reuses the discount below it; each D_i is clipped to [0, i]."""
    n = [int(np.count_nonzero(counts == i)) for i in range(5)]
    Y = n[1] / (n[1] + 2 * n[2]) if n[1] + 2 * n[2] > 0 else 0.5
    d1 = 1 - 2 * Y * n[2] / n[1] if n[1] > 0 else 0.5
    d2 = 2 - 3 * Y * n[3] / n[2] if n[2] > 0 else d1
    d3 = 3 - 4 * Y * n[4] / n[3] if n[3] > 0 else d2
    return np.array([0.0, min(max(d1, 0.0), 1.0), min(max(d2, 0.0), 2.0),
                     min(max(d3, 0.0), 3.0)])


class KneserNey(_NGramModel):
    """Interpolated modified Kneser-Ney of order 1..5 (Chen & Goodman 1998):

        P_k(w | h) = max(c_k(hw) - D_k(c_k(hw)), 0) / c_k(h.) + gamma_k(h) P_{k-1}(w | h'),
        gamma_k(h) = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / c_k(h.),

    with c_n the raw counts at the highest order and the continuation counts N1+(. h w) below;
    P_0 = 1/|V|; an unseen context h gives P_k = P_{k-1}. ``discounts`` (optional) fixes
    [D1, D2, D3+] per order 1..n instead of the count-of-counts estimates."""

    def __init__(self, order: int = 5, vocab=None, discounts=None) -> None:
        super().__init__(order, vocab)
        if order > 5:
            raise ValueError(f"KneserNey supports orders 1..5, got {order}")
        self._fixed = None if discounts is None else [np.concatenate([[0.0], np.asarray(
            d, dtype=np.float64)]) for d in discounts]
        if self._fixed is not None and len(self._fixed) != order:
            raise ValueError(f"discounts needs one [D1, D2, D3+] per order 1..{order}, got "
                             f"{len(self._fixed)}")

    def fit(self, tokens) -> KneserNey:
        """Count the n-grams of a token stream (words or int ids)."""
        self._count(tokens)
        t, n, V = self.tables, self.order, self.vocab_size
        self.discounts, self.alpha, self.gamma, self.total = [None], [None], [None], [None]
        for k in range(1, n + 1):
            if k == n:
                c = t.counts[k].astype(np.float64)
            else:  # continuation counts N1+(. w_{k-gram}): distinct left extensions
                c = np.bincount(t.suffix[k + 1], minlength=t.n_types(k)).astype(np.float64)
            D = self._fixed[k - 1] if self._fixed is not None else _modified_kn_discounts(c)
            d = D[np.minimum(c, 3).astype(np.int64)]
            n_ctx = 1 if k == 1 else t.n_types(k - 1)
            ctx = np.zeros(c.size, np.int64) if k == 1 else t.keys[k] // V
            total = np.bincount(ctx, weights=c, minlength=n_ctx)
            mass = np.bincount(ctx, weights=np.where(c > 0, d, 0.0), minlength=n_ctx)
            safe = np.where(total > 0, total, 1.0)
            self.discounts.append(D)
            self.alpha.append(np.maximum(c - d, 0.0) / safe[ctx])
            self.gamma.append(np.where(total > 0, mass / safe, 1.0))
            self.total.append(total)
        return self

    def _probs(self, ids: np.ndarray) -> np.ndarray:
        g = self._check_fitted().stream_ids(ids)
        p = self._unigram()[ids]
        for k in range(2, self.order + 1):
            ctx = np.full(ids.size, -1, np.int64)
            ctx[1:] = g[k - 1][:-1]
            seen = ctx >= 0
            seen[seen] = self.total[k][ctx[seen]] > 0
            kg = g[k]
            a = np.where(kg >= 0, self.alpha[k][np.maximum(kg, 0)], 0.0)
            p = np.where(seen, a + self.gamma[k][np.maximum(ctx, 0)] * p, p)
        return p

    def _unigram(self) -> np.ndarray:
        if self.total[1][0] > 0:
            return self.alpha[1] + self.gamma[1][0] / self.vocab_size
        return np.full(self.vocab_size, 1.0 / self.vocab_size)

    def next_distribution(self, context=()) -> np.ndarray:
        """P(. | context) over the whole vocabulary (float64, sums to 1)."""
        cids = self._context_ids(context)
        p = self._unigram().copy()
        for k in range(2, self.order + 1):
            c = cids[k]
            if c < 0 or self.total[k][c] <= 0:
                continue
            lo, hi = self.tables.range_of(k, c)
            p *= self.gamma[k][c]
            p[self.tables.keys[k][lo:hi] % self.vocab_size] += self.alpha[k][lo:hi]
        return p


DEFAULT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 500, 2000)


class InterpolatedNGram(_NGramModel):
    """Deleted interpolation (Jelinek & Mercer 1980), the trigram baseline of Bengio et al.
    2003:  P(w | h) = l_n(q) P_n(w | h) + ... + l_1(q) P_1(w) + l_0(q) / |V|,  with P_k the
    maximum-likelihood estimate c(h_k w) / c(h_k .) (the next lower estimate where the context
    h_k is unseen) and the weights l(q) depending on the bucket q of the highest-order
    context's count c(h .): ``buckets`` are the lower bucket edges (None: one global set).
    ``fit(train, heldout)`` counts on ``train`` and fits the weights by EM on ``heldout``
    (``fit_weights``); without held-out data the weights are uniform."""

    def __init__(self, order: int = 3, vocab=None, buckets=DEFAULT_BUCKETS) -> None:
        super().__init__(order, vocab)
        self.buckets = np.asarray((0,) if buckets is None else buckets, dtype=np.int64)
        if self.buckets[0] != 0 or np.any(np.diff(self.buckets) <= 0):
            raise ValueError(f"buckets must be increasing lower edges starting at 0, "
                             f"got {list(self.buckets)}")
        nb = len(self.buckets)
        self.weights = np.full((nb, order + 1), 1.0 / (order + 1))
        self.history: list[float] = []

    def fit(self, tokens, heldout=None, **em) -> InterpolatedNGram:
        self._count(tokens)
        t, V = self.tables, self.vocab_size
        self.total = [None, np.array([t.counts[1].sum()], np.float64)]
        self.ml = [None, t.counts[1] / max(self.total[1][0], 1.0)]
        for k in range(2, self.order + 1):
            ctx = t.keys[k] // V
            total = np.bincount(ctx, weights=t.counts[k], minlength=t.n_types(k - 1))
            self.total.append(total)
            self.ml.append(t.counts[k] / np.where(total > 0, total, 1.0)[ctx])
        if heldout is not None:
            self.fit_weights(heldout, **em)
        return self

    def _bucket(self, count) -> np.ndarray:
        return np.searchsorted(self.buckets, count, side="right") - 1

    def _components(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per position: the (M, order+1) matrix [1/|V|, P_1, ..., P_n] and the bucket."""
        t = self._check_fitted()
        g = t.stream_ids(ids)
        Q = np.empty((ids.size, self.order + 1))
        Q[:, 0] = 1.0 / self.vocab_size
        Q[:, 1] = self.ml[1][ids]
        count = np.zeros(ids.size)
        for k in range(2, self.order + 1):
            ctx = np.full(ids.size, -1, np.int64)
            ctx[1:] = g[k - 1][:-1]
            tot = np.where(ctx >= 0, self.total[k][np.maximum(ctx, 0)], 0.0)
            kg = g[k]
            ml = np.where(kg >= 0, self.ml[k][np.maximum(kg, 0)], 0.0)
            Q[:, k] = np.where(tot > 0, ml, Q[:, k - 1])
            count = tot
        if self.order == 1:
            count = np.full(ids.size, self.total[1][0])
        return Q, self._bucket(count)

    def _probs(self, ids: np.ndarray) -> np.ndarray:
        Q, b = self._components(ids)
        return np.einsum("ij,ij->i", Q, self.weights[b])

    def fit_weights(self, heldout, max_iter: int = 200, tol: float = 1e-9) -> list:
        """EM for the mixture weights on ``heldout`` (each bucket's weights are the mean
        posterior responsibilities of its positions; buckets without held-out positions get
        the pooled ones). Returns and keeps ``history``, the held-out log-likelihood before
        each step and after the last; EM makes it non-decreasing."""
        ids = self._encode(heldout)
        Q, b = self._components(ids)
        nb = len(self.buckets)
        n_in = np.bincount(b, minlength=nb).astype(np.float64)
        W = np.full((nb, self.order + 1), 1.0 / (self.order + 1))
        history = []
        for it in range(max_iter + 1):
            mix = np.einsum("ij,ij->i", Q, W[b])
            ll = float(np.log(mix).sum())
            done = it == max_iter or (len(history) > 0 and ll - history[-1] <= tol * abs(ll))
            history.append(ll)
            if done:
                break
            R = Q * W[b] / mix[:, None]
            sums = np.stack([np.bincount(b, weights=R[:, j], minlength=nb)
                             for j in range(self.order + 1)], axis=1)
            pooled = R.mean(axis=0)
            W = np.where(n_in[:, None] > 0, sums / np.maximum(n_in, 1.0)[:, None], pooled)
        self.weights, self.history = W, history
        return history

    def next_distribution(self, context=()) -> np.ndarray:
        """P(. | context) over the whole vocabulary (float64, sums to 1)."""
        cids = self._context_ids(context)
        t, V = self.tables, self.vocab_size
        comps = [np.full(V, 1.0 / V), self.ml[1].astype(np.float64)]
        count = self.total[1][0] if self.order == 1 else 0.0
        for k in range(2, self.order + 1):
            c = cids[k]
            if c < 0 or self.total[k][c] <= 0:
                comps.append(comps[-1])
                count = 0.0
                continue
            lo, hi = t.range_of(k, c)
            p = np.zeros(V)
            p[t.keys[k][lo:hi] % V] = self.ml[k][lo:hi]
            comps.append(p)
            count = self.total[k][c]
        w = self.weights[int(self._bucket(count))]
        return sum(wj * cj for wj, cj in zip(w, comps))

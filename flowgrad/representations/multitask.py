"""Multitask learning with a shared representation (lecture: "Multitask Learning"; Collobert &
Weston, ICML 2008; Collobert, Weston, Bottou, Karlen, Kavukcuoglu & Kuksa, "Natural Language
Processing (Almost) from Scratch", JMLR 12, 2011).

The window approach: each word is tagged from a window of ``window`` words centred on it
(padded with ``padding_idx`` at sentence ends). Every word of the window is looked up in a shared
table of word embeddings (optionally beside a small table for its capitalisation, Collobert et
al. 2011, section 3.5), the vectors are concatenated and passed through a shared hidden layer
(Linear + HardTanh, as in the 2011 paper); two heads read the hidden layer:

* the tagging head: a Linear map to one score per tag, trained with softmax cross-entropy on the
  labelled windows only. A window without a tag has target ``-1`` (missing): its loss is left
  out and the mean is over the labelled windows (``masked_cross_entropy``; the lecture's
  "Multiple Output Variables": ignore the losses of missing targets), so it gives exactly zero
  gradient through the tagging head;
* the language-model head: a Linear map to one score per window, trained, as Collobert & Weston
  do, with a pairwise ranking criterion: a true window should score at least 1 above the same
  window with its centre word replaced by a random word of the dictionary,
  mean(max(0, 1 − f(x) + f(x̃))) (``ranking_lm_loss``). Every window, labelled or not, is text,
  so the whole unlabelled corpus trains the shared layers through this head.

A batch mixes labelled and unlabelled windows; ``multitask_loss`` adds the two losses.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..errors import DTypeError, IndexOutOfRangeError, ShapeError
from ..nn import functional as F
from ..tensor import Tensor, as_tensor
from ..tensor_functions import cat
from .likelihood import masked_cross_entropy

__all__ = ["MISSING", "CAPS_CLASSES", "WindowNetwork", "capitalization", "corrupt_centre",
           "make_windows", "most_frequent_tag", "multitask_loss", "predict_tags",
           "ranking_lm_loss", "tagging_loss"]

MISSING = -1  # the tag target of an unlabelled window
CAPS_CLASSES = 5  # padding, no capital, first letter capital, all capitals, a capital inside


def capitalization(word: str) -> int:
    """The capitalisation feature of Collobert et al. 2011 (section 3.5): 1 no capital letter,
    2 an initial capital, 3 every letter a capital (two letters or more), 4 a capital inside
    only; 0 is the padding."""
    if not any(c.isupper() for c in word):
        return 1
    letters = [c for c in word if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return 3
    return 2 if word[0].isupper() else 4


def make_windows(sentences, window: int, padding_idx: int = 0) -> np.ndarray:
    """Every word's window: (number of words, ``window``) int64 ids, row i the ids around the
    i-th word of the concatenated ``sentences`` (lists or arrays of ids), ``padding_idx`` beyond
    a sentence's ends. ``window`` must be odd."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"make_windows: window must be a positive odd number, got {window}")
    half = window // 2
    lengths = np.fromiter((len(sent) for sent in sentences), np.int64)
    n = int(lengths.sum())
    flat = np.fromiter(itertools.chain.from_iterable(sentences), np.int64, count=n)
    length_of = np.repeat(lengths, lengths)
    position = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = np.full((n, window), padding_idx, np.int64)
    for j, d in enumerate(range(-half, half + 1)):
        inside = (position + d >= 0) & (position + d < length_of)
        out[inside, j] = flat[np.flatnonzero(inside) + d]
    return out


def _check_windows(op: str, words, window: int, num: int, name: str = "words") -> np.ndarray:
    arr = words.numpy() if isinstance(words, Tensor) else np.asarray(words)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{op}: {name} must hold integer ids, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != window:
        raise ShapeError(f"{op}: {name} of shape {tuple(arr.shape)}, expected (N, {window}): one "
                         f"row of {window} ids per window (the network's window width)")
    if arr.size and (arr.min() < 0 or arr.max() >= num):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise IndexOutOfRangeError(f"{op}: {name} holds id {bad}, outside 0 .. {num - 1} "
                                   f"(shape {tuple(arr.shape)})")
    return arr.astype(np.int64, copy=False)


class WindowNetwork(nn.Module):
    """Collobert & Weston's window network with a tagging head and a language-model head on a
    shared representation.

    Args: vocab_size, n_tags; window (odd, default 5); embedding_dim (50); hidden (200);
    caps_dim: size of the capitalisation embedding (0: no capitalisation feature);
    lm_head: False builds the single-task tagger (no language-model head, same layers
    otherwise); padding_idx: the id of the padding word (its embedding stays 0).

    Shapes: words (N, window) int64 ids (and caps (N, window) in 0 .. 4 when caps_dim > 0) ->
    ``forward``/``tag_logits`` (N, n_tags), ``lm_scores`` (N,), ``hidden`` (N, hidden)."""

    def __init__(self, vocab_size: int, n_tags: int, window: int = 5, embedding_dim: int = 50,
                 hidden: int = 200, caps_dim: int = 0, lm_head: bool = True,
                 padding_idx: int = 0, dtype=None) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"WindowNetwork: window must be a positive odd number, got {window}")
        if vocab_size < 2 or n_tags < 1 or embedding_dim < 1 or hidden < 1 or caps_dim < 0:
            raise ValueError(f"WindowNetwork: bad sizes vocab_size={vocab_size}, n_tags={n_tags}"
                             f", embedding_dim={embedding_dim}, hidden={hidden}, "
                             f"caps_dim={caps_dim}")
        self.vocab_size, self.n_tags, self.window = vocab_size, n_tags, window
        self.padding_idx, self.caps_dim = padding_idx, caps_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx,
                                      dtype=dtype)
        with no_grad():  # Collobert et al. 2011 start the lookup table small
            self.embedding.weight.mul_(0.1)
        self.caps = (nn.Embedding(CAPS_CLASSES, caps_dim, padding_idx=0, dtype=dtype)
                     if caps_dim else None)
        self.shared = nn.Linear(window * (embedding_dim + caps_dim), hidden, dtype=dtype)
        self.tagger = nn.Linear(hidden, n_tags, dtype=dtype)
        self.scorer = nn.Linear(hidden, 1, dtype=dtype) if lm_head else None

    def hidden(self, words, caps=None) -> Tensor:
        op = f"{type(self).__name__}"
        w = _check_windows(op, words, self.window, self.vocab_size)
        x = self.embedding(as_tensor(w))
        if self.caps is not None:
            if caps is None:
                raise ValueError(f"{op}: built with caps_dim={self.caps_dim}, so it needs the "
                                 "capitalisation ids caps (N, window) beside the words")
            c = _check_windows(op, caps, self.window, CAPS_CLASSES, "caps")
            if c.shape != w.shape:
                raise ShapeError(f"{op}: caps of shape {c.shape} must match words {w.shape}")
            x = cat([x, self.caps(as_tensor(c))], dim=2)
        x = x.reshape(w.shape[0], -1)
        return F.hardtanh(self.shared(x))

    def tag_logits(self, words, caps=None) -> Tensor:
        return self.tagger(self.hidden(words, caps))

    forward = tag_logits

    def lm_scores(self, words, caps=None) -> Tensor:
        if self.scorer is None:
            raise RuntimeError(f"{type(self).__name__}: built with lm_head=False (the "
                               "single-task tagger) has no language-model head")
        return self.scorer(self.hidden(words, caps)).reshape(-1)


def corrupt_centre(words, rng, low: int = 2, high: int | None = None,
                   vocab_size: int | None = None) -> np.ndarray:
    """A copy of the windows ``words`` (N, W) with each centre word replaced by a word drawn
    uniformly from ids ``low`` .. ``high`` − 1 (Collobert & Weston 2008: "the middle word
    replaced by a random word"; ids below ``low`` are the padding and unknown words)."""
    arr = np.array(words.numpy() if isinstance(words, Tensor) else words, dtype=np.int64)
    high = vocab_size if high is None else high
    if arr.ndim != 2 or arr.shape[1] % 2 == 0:
        raise ShapeError(f"corrupt_centre: windows of shape {tuple(arr.shape)}, expected (N, W) "
                         "with W odd")
    if high is None or not low < high:
        raise ValueError(f"corrupt_centre: need low < high, got low={low}, high={high}")
    arr[:, arr.shape[1] // 2] = rng.integers(low, high, size=arr.shape[0])
    return arr


def ranking_lm_loss(true_scores, corrupt_scores, margin: float = 1.0,
                    reduction: str = "mean") -> Tensor:
    """Collobert & Weston's language-model criterion: max(0, margin − f(x) + f(x̃)) per pair of
    a true window x and its corruption x̃, averaged (or summed, or "none")."""
    s, c = as_tensor(true_scores), as_tensor(corrupt_scores)
    if tuple(s.shape) != tuple(c.shape):
        raise ShapeError(f"ranking_lm_loss: true scores of shape {tuple(s.shape)} and corrupt "
                         f"scores of shape {tuple(c.shape)} must match (one pair per window)")
    loss = F.relu(c - s + margin)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"ranking_lm_loss: reduction must be 'mean', 'sum' or 'none', got "
                     f"{reduction!r}")


def _tag_targets(op: str, tags, n: int, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    t = tags.numpy() if isinstance(tags, Tensor) else np.asarray(tags)
    if t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: tags must be integer tag ids ({MISSING} for a missing tag), "
                         f"got dtype {t.dtype}")
    if t.shape != (n,):
        raise ShapeError(f"{op}: tags of shape {t.shape}, expected ({n},): one tag per window")
    bad = (t < MISSING) | (t >= n_tags)
    if bad.any():
        i = int(np.argmax(bad))
        raise IndexOutOfRangeError(f"{op}: tag {int(t[i])} at index {i} is not a tag of the "
                                   f"network (0 .. {n_tags - 1}, or {MISSING} for missing)")
    observed = t != MISSING
    return np.where(observed, t, 0).astype(np.int64), observed


def tagging_loss(logits, tags) -> Tensor:
    """Softmax cross-entropy over the windows whose tag is given, the mean over those only;
    a window with tag ``MISSING`` (−1) adds nothing, gradients included (0 if none given)."""
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ShapeError(f"tagging_loss: logits of shape {tuple(logits.shape)}, expected "
                         "(N, n_tags)")
    target, observed = _tag_targets("tagging_loss", tags, logits.shape[0], logits.shape[1])
    return masked_cross_entropy(logits, as_tensor(target), as_tensor(observed))


def multitask_loss(model: WindowNetwork, words, tags, rng=None, caps=None,
                   lm_weight: float = 1.0, margin: float = 1.0) -> tuple[Tensor, dict]:
    """The loss of a mixed batch of windows (N, W): tagging cross-entropy on the windows with a
    tag (``tags`` (N,), −1 where missing) plus ``lm_weight`` × the ranking loss of every window
    against its centre-corrupted copy (a random dictionary word, drawn with ``rng``; the
    corrupted window keeps the centre's capitalisation feature). One forward pass of the shared
    layers serves both the true and the corrupted windows. With ``lm_weight`` 0 or a model
    without the LM head, only the tagging loss. Returns (total, {"tag": ..., "lm": ...})."""
    op = "multitask_loss"
    w = _check_windows(op, words, model.window, model.vocab_size)
    target, observed = _tag_targets(op, tags, w.shape[0], model.n_tags)
    use_lm = model.scorer is not None and lm_weight != 0
    if not use_lm:
        logits = model.tag_logits(w, caps)
        loss = masked_cross_entropy(logits, as_tensor(target), as_tensor(observed))
        return loss, {"tag": loss}
    if rng is None:
        raise ValueError(f"{op}: the language-model term needs rng to draw the corrupt words")
    n = w.shape[0]
    low = 2 if model.vocab_size > 2 else 1
    both = np.concatenate([w, corrupt_centre(w, rng, low, model.vocab_size)])
    both_caps = None if caps is None else np.concatenate([np.asarray(caps)] * 2)
    h = model.hidden(both, both_caps)
    logits = model.tagger(h[:n])
    scores = model.scorer(h).reshape(-1)
    tag = masked_cross_entropy(logits, as_tensor(target), as_tensor(observed))
    lm = ranking_lm_loss(scores[:n], scores[n:], margin)
    return tag + lm * float(lm_weight), {"tag": tag, "lm": lm}


def predict_tags(model: WindowNetwork, words, caps=None, batch_size: int = 8192) -> np.ndarray:
    """The arg-max tag of every window, in batches, without building a graph."""
    w = _check_windows("predict_tags", words, model.window, model.vocab_size)
    out = []
    with no_grad():
        for s in range(0, len(w), batch_size):
            c = None if caps is None else np.asarray(caps)[s:s + batch_size]
            out.append(model.tag_logits(w[s:s + batch_size], c).numpy().argmax(1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def most_frequent_tag(train_words, train_tags, test_words) -> np.ndarray:
    """The baseline tagger: each word's most frequent tag in the training pairs; a word never
    seen in training gets the most frequent tag overall. Inputs are flat id arrays."""
    tw, tt = np.asarray(train_words, np.int64), np.asarray(train_tags, np.int64)
    if tw.shape != tt.shape or tw.ndim != 1:
        raise ShapeError(f"most_frequent_tag: train words {tw.shape} and tags {tt.shape} must be "
                         "flat arrays of the same length")
    n_tags = int(tt.max()) + 1
    n_words = int(max(tw.max(), np.max(test_words, initial=0))) + 1
    counts = np.zeros((n_words, n_tags), np.int64)
    np.add.at(counts, (tw, tt), 1)
    best = counts.argmax(1)
    best[counts.sum(1) == 0] = np.bincount(tt, minlength=n_tags).argmax()
    return best[np.asarray(test_words, np.int64)]

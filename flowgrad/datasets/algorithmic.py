"""Generated algorithmic tasks for models with memory (lecture: "Memory-Extended Networks").

Seq2seq pairs over tokens (PAD=0, BOS=1, EOS=2, symbols 3..):

- ``copy_pairs``: the target is the source;
- ``reversal_pairs``: the target is the source reversed.

Each returns ``Seq2SeqBatch(src, src_lengths, tgt_in, tgt_out)``: src (n, S) padded with PAD,
tgt_in = BOS + target, tgt_out = target + EOS, both (n, T) padded with PAD; lengths are drawn
uniformly in [min_len, max_len], so test sets of longer sequences come from the same call.

Bit-vector sequence tasks of Graves, Wayne & Danihelka, "Neural Turing Machines" (2014,
arXiv 1410.5401), batch first, float32:

- ``copy_task`` (section 4.1): random binary vectors, then a delimiter; the target is the
  sequence again, after the delimiter;
- ``associative_recall`` (section 4.3): items of several binary vectors, each after an item
  delimiter, then a query item between two query delimiters; the target is the item that
  followed the query item in the list.

Each returns ``BitTask(inputs, targets, mask, lengths)``: inputs (n, T, channels), targets
(n, T, bits), mask (n, T) equal to 1 where a target is to be predicted; padding at the end.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PAD", "BOS", "EOS", "FIRST_SYMBOL", "Seq2SeqBatch", "BitTask", "copy_pairs",
           "reversal_pairs", "seq2seq_pairs", "copy_task", "associative_recall"]

PAD, BOS, EOS = 0, 1, 2
FIRST_SYMBOL = 3


class Seq2SeqBatch(NamedTuple):
    src: np.ndarray
    src_lengths: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray


class BitTask(NamedTuple):
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray  # the task's size per example: vectors copied, or items in the list


def _check_range(name: str, n: int, min_len: int, max_len: int, least: int = 1) -> None:
    if n < 1:
        raise ValueError(f"{name}: n must be >= 1, got {n}")
    if not least <= min_len <= max_len:
        raise ValueError(f"{name}: need {least} <= min_len <= max_len, got min_len={min_len}, "
                         f"max_len={max_len}")


def seq2seq_pairs(n: int, min_len: int, max_len: int, n_symbols: int = 10,
                  reverse: bool = False, seed: int = 0) -> Seq2SeqBatch:
    """``n`` random symbol sequences (symbols FIRST_SYMBOL .. FIRST_SYMBOL + n_symbols - 1),
    lengths uniform in [min_len, max_len]; the target is the source, reversed if ``reverse``."""
    _check_range("seq2seq_pairs", n, min_len, max_len)
    if n_symbols < 1:
        raise ValueError(f"seq2seq_pairs: n_symbols must be >= 1, got {n_symbols}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n).astype(np.int64)
    width = int(lengths.max())
    symbols = rng.integers(FIRST_SYMBOL, FIRST_SYMBOL + n_symbols, size=(n, width))
    valid = np.arange(width)[None, :] < lengths[:, None]
    src = np.where(valid, symbols, PAD).astype(np.int64)
    target = src.copy()
    if reverse:  # position j of row i takes source position lengths[i] - 1 - j
        index = np.clip(lengths[:, None] - 1 - np.arange(width)[None, :], 0, width - 1)
        target = np.where(valid, np.take_along_axis(src, index, axis=1), PAD)
    tgt_in = np.full((n, width + 1), PAD, dtype=np.int64)
    tgt_out = np.full((n, width + 1), PAD, dtype=np.int64)
    tgt_in[:, 0] = BOS
    tgt_in[:, 1:] = target
    tgt_out[:, :-1] = target
    tgt_out[np.arange(n), lengths] = EOS
    return Seq2SeqBatch(src, lengths, tgt_in, tgt_out)


def copy_pairs(n: int, min_len: int, max_len: int, n_symbols: int = 10,
               seed: int = 0) -> Seq2SeqBatch:
    """Seq2seq copy: the target is the source (see ``seq2seq_pairs``)."""
    return seq2seq_pairs(n, min_len, max_len, n_symbols, reverse=False, seed=seed)


def reversal_pairs(n: int, min_len: int, max_len: int, n_symbols: int = 10,
                   seed: int = 0) -> Seq2SeqBatch:
    """Seq2seq reversal: the target is the source reversed (see ``seq2seq_pairs``)."""
    return seq2seq_pairs(n, min_len, max_len, n_symbols, reverse=True, seed=seed)


def copy_task(n: int, min_len: int, max_len: int, bits: int = 8, seed: int = 0,
              dtype=np.float32) -> BitTask:
    """The NTM copy task (Graves et al. 2014, section 4.1) with ``bits``-bit random vectors.

    Example of length L: steps 0..L-1 show the vectors (channels 0..bits-1), step L shows the
    delimiter (channel ``bits``), steps L+1..2L are blank and the target there is the sequence
    again. inputs (n, 2*max_len + 1, bits + 1), targets (n, 2*max_len + 1, bits)."""
    _check_range("copy_task", n, min_len, max_len)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n).astype(np.int64)
    steps = 2 * max_len + 1
    seq = rng.integers(0, 2, size=(n, max_len, bits)).astype(dtype)
    seq *= (np.arange(max_len)[None, :] < lengths[:, None])[..., None]
    inputs = np.zeros((n, steps, bits + 1), dtype=dtype)
    targets = np.zeros((n, steps, bits), dtype=dtype)
    mask = np.zeros((n, steps), dtype=dtype)
    rows = np.arange(n)
    inputs[:, :max_len, :bits] = seq
    inputs[rows, lengths, bits] = 1.0
    for i, length in enumerate(lengths):
        targets[i, length + 1:2 * length + 1] = seq[i, :length]
        mask[i, length + 1:2 * length + 1] = 1.0
    return BitTask(inputs, targets, mask, lengths)


def associative_recall(n: int, min_items: int, max_items: int, bits: int = 6,
                       item_len: int = 3, seed: int = 0, dtype=np.float32) -> BitTask:
    """Associative recall (Graves et al. 2014, section 4.3): items of ``item_len`` random
    ``bits``-bit vectors.

    Example of k items: each item is one step with the item delimiter (channel ``bits``) then
    its ``item_len`` vectors; then the query delimiter (channel ``bits + 1``), one of the
    first k - 1 items, the query delimiter again; the next ``item_len`` steps are blank and
    their target is the item that followed the query. Sequence length (k + 1) * (item_len + 1)
    + 1 + item_len, padded to that of ``max_items``; inputs have bits + 2 channels."""
    _check_range("associative_recall", n, min_items, max_items, least=2)
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_items, max_items + 1, size=n).astype(np.int64)
    block = item_len + 1
    steps = (max_items + 1) * block + 1 + item_len
    items = rng.integers(0, 2, size=(n, max_items, item_len, bits)).astype(dtype)
    query = (rng.random(n) * (counts - 1)).astype(np.int64)  # uniform in 0..k-2
    inputs = np.zeros((n, steps, bits + 2), dtype=dtype)
    targets = np.zeros((n, steps, bits), dtype=dtype)
    mask = np.zeros((n, steps), dtype=dtype)
    for i, k in enumerate(counts):
        for j in range(k):
            inputs[i, j * block, bits] = 1.0
            inputs[i, j * block + 1:(j + 1) * block, :bits] = items[i, j]
        start = k * block
        inputs[i, start, bits + 1] = 1.0
        inputs[i, start + 1:start + block, :bits] = items[i, query[i]]
        inputs[i, start + block, bits + 1] = 1.0
        answer = start + block + 1
        targets[i, answer:answer + item_len] = items[i, query[i] + 1]
        mask[i, answer:answer + item_len] = 1.0
    return BitTask(inputs, targets, mask, counts)

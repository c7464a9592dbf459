"""SCAN (Lake & Baroni, "Generalization without Systematicity", ICML 2018): commands such as
"jump twice after walk left" mapped to action sequences ("I_TURN_LEFT I_WALK I_JUMP I_JUMP"),
the benchmark of the lecture's slide "Systematic generalization".

Four splits of the original repository (github.com/brendenlake/SCAN), each a train and a test
file with one example a line, ``IN: <command words> OUT: <action tokens>``:

- ``"simple"``: a random 80/20 split (16,728 / 4,182 examples);
- ``"length"``: train on action sequences of at most 22 actions, test on longer ones
  (16,990 / 3,920);
- ``"addprim_jump"``, ``"addprim_turn_left"``: the primitive is seen in training only in
  isolation ("jump" -> "I_JUMP"), the test composes it (14,670 / 7,706 and 21,890 / 1,208).

Files are found and SHA-256-checked by ``flowgrad.datasets.files.locate`` ($FLOWGRAD_DATA, then
../shared/data/scan, then ~/.cache/flowgrad/scan, downloading from the repository when online).

Choices made here (SCAN itself fixes none of them):

- Vocabularies are built from the training file of the split, specials first (``<pad>`` = 0,
  ``<bos>`` = 1, ``<eos>`` = 2), then the tokens in sorted order, so every split whose training
  file has the same tokens has the same indices. There is no ``<unk>``: a test token that the
  training file lacks raises ``UnknownTokenError``. This never happens on the four splits
  (even the add-primitive training files hold the primitive, in isolation): 13 command words
  and 6 actions, i.e. 16 and 9 entries with the specials.
- SCAN has no validation split. ``valid_fraction`` (default 0.1) of the training examples is
  carved out by a permutation of ``np.random.default_rng(seed)``; both parts keep file order.
  Only lines that occur once in the file are candidates: the add-primitive training files
  repeat their primitive line ("IN: jump OUT: I_JUMP" 1,467 times, "IN: turn left OUT:
  I_TURN_LEFT" 2,189 times, the upsampling of Lake & Baroni), and these copies all stay in
  training, so that validation never holds a copy of a training example. The vocabularies
  come from the whole training file, before the carve.
- Blank lines are skipped; any other line that does not parse raises ``ScanFormatError``
  naming the file, the line number and the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .files import DatasetNotFoundError, cache_dir, locate
from .text import Vocabulary

__all__ = ["SCAN", "SCAN_SPLITS", "ScanBatch", "ScanFormatError", "encode_pairs",
           "exact_match", "parse_scan_line", "read_scan_file"]

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")

# split -> (train file, test file), relative to the dataset folder
SCAN_SPLITS: dict[str, tuple[str, str]] = {
    "simple": ("simple_split/tasks_train_simple.txt", "simple_split/tasks_test_simple.txt"),
    "length": ("length_split/tasks_train_length.txt", "length_split/tasks_test_length.txt"),
    "addprim_jump": ("add_prim_split/tasks_train_addprim_jump.txt",
                     "add_prim_split/tasks_test_addprim_jump.txt"),
    "addprim_turn_left": ("add_prim_split/tasks_train_addprim_turn_left.txt",
                          "add_prim_split/tasks_test_addprim_turn_left.txt"),
}

# SHA-256 of the files at commit c4b756c (their prefixes are in shared/data/scan/README.md).
CHECKSUMS: dict[str, str] = {
    "add_prim_split/tasks_test_addprim_jump.txt":
        "8147ae2651422c701162e174d9d66158daa57858a26b30317ac61797118ac7a5",
    "add_prim_split/tasks_test_addprim_turn_left.txt":
        "15a82c2d25ac7c3c1fff7e18051fb085974ef3617de895c520d02144396a10e2",
    "add_prim_split/tasks_train_addprim_jump.txt":
        "e3c78485692e028eed4205e1b8b3fd0e785ef2c12d45b5b89204dadf5b239e23",
    "add_prim_split/tasks_train_addprim_turn_left.txt":
        "1b3fed86055dd7689d217f1b90cc8960aeb1cf200f4f209dc47935761b05304c",
    "length_split/tasks_test_length.txt":
        "0760752ed34a75116ae11dcc1ee17526b7500060da1366540730fa24894d7db3",
    "length_split/tasks_train_length.txt":
        "b034212dc7cf87ce62f3a067dd6ad49c4d5cd18d51d615d13825516bcb1ebbc2",
    "simple_split/tasks_test_simple.txt":
        "1fe1c8f5a19d0dc40e41bab94278f45f66f3dc415a978bd29855a23440610fc6",
    "simple_split/tasks_train_simple.txt":
        "941bb8a088c5f53ceff12fde902dc008933cf0c4203cc672c47b5f79d73262dd",
}
URLS = ["https://raw.githubusercontent.com/brendenlake/SCAN/master/"]

Pair = tuple[list[str], list[str]]  # (command words, action tokens)


class ScanFormatError(ValueError):
    """A SCAN file line that is not 'IN: <command words> OUT: <action tokens>'."""


def parse_scan_line(line: str, where: str = "<string>") -> Pair:
    """(command words, action tokens) of one 'IN: ... OUT: ...' line; ``where`` names the
    place (file:line) in the error."""
    text = line.strip()
    head, sep, actions = text.partition(" OUT:")
    if not head.startswith("IN:") or not sep:
        raise ScanFormatError(f"SCAN: cannot parse {where}: expected 'IN: <command words> OUT: "
                              f"<action tokens>', got {line.rstrip(chr(10))!r}")
    command, actions = head[3:].split(), actions.split()
    if not command or not actions or "IN:" in actions or "OUT:" in actions:
        raise ScanFormatError(f"SCAN: cannot parse {where}: expected one non-empty command after "
                              f"'IN:' and one non-empty action sequence after 'OUT:', got "
                              f"{line.rstrip(chr(10))!r}")
    return command, actions


def read_scan_file(path) -> list[Pair]:
    """Every (command words, action tokens) pair of a SCAN file, in file order."""
    pairs = []
    with open(path, encoding="utf8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                pairs.append(parse_scan_line(line, f"{path}, line {number}"))
    return pairs


class ScanBatch(NamedTuple):
    """Padded int64 arrays of a batch: ``src`` (B, S) command ids, ``src_lengths`` (B,),
    ``tgt_in`` (B, T) = <bos> + actions, ``tgt_out`` (B, T) = actions + <eos>, ``tgt_lengths``
    (B,) (actions + 1). Padding is <pad> = 0."""

    src: np.ndarray
    src_lengths: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    tgt_lengths: np.ndarray


def encode_pairs(pairs: Sequence[Pair], src_vocab: Vocabulary,
                 tgt_vocab: Vocabulary) -> ScanBatch:
    """Pad and encode (command words, action tokens) pairs into a ScanBatch."""
    if not pairs:
        raise ValueError("encode_pairs: no pairs to encode")
    src_ids = [src_vocab.encode(c) for c, _ in pairs]
    tgt_ids = [tgt_vocab.encode(a) for _, a in pairs]
    n = len(pairs)
    src_lengths = np.array([len(s) for s in src_ids], dtype=np.int64)
    tgt_lengths = np.array([len(t) + 1 for t in tgt_ids], dtype=np.int64)
    src = np.full((n, int(src_lengths.max())), PAD, dtype=np.int64)
    tgt_in = np.full((n, int(tgt_lengths.max())), PAD, dtype=np.int64)
    tgt_out = tgt_in.copy()
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        src[i, :len(s)] = s
        tgt_in[i, 0] = BOS
        tgt_in[i, 1:len(t) + 1] = t
        tgt_out[i, :len(t)] = t
        tgt_out[i, len(t)] = EOS
    return ScanBatch(src, src_lengths, tgt_in, tgt_out, tgt_lengths)


def exact_match(predicted: Sequence, targets: Sequence) -> float:
    """The fraction of predictions equal, token for token, to their target (SCAN's accuracy:
    a sequence counts only when entirely right). Each is a sequence of token sequences (ids or
    strings) without <bos>/<eos>/padding."""
    if len(predicted) != len(targets):
        raise ValueError(f"exact_match: {len(predicted)} predictions for {len(targets)} targets")
    if not len(targets):
        raise ValueError("exact_match: no sequences to compare")
    hits = sum(_as_list(p) == _as_list(t) for p, t in zip(predicted, targets))
    return hits / len(targets)


def _as_list(seq) -> list:
    return seq.tolist() if isinstance(seq, np.ndarray) else list(seq)


class SCAN:
    """One SCAN split: ``train``, ``valid`` (carved from the training file) and ``test`` lists of
    (command words, action tokens) pairs, ``src_vocab`` (commands) and ``tgt_vocab`` (actions).

    >>> data = SCAN("simple")
    >>> for batch in data.batches("train", 64, seed=0):
    ...     logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    """

    def __init__(self, split: str = "simple", root=None, download: bool = True,
                 valid_fraction: float = 0.1, seed: int = 0) -> None:
        if split not in SCAN_SPLITS:
            raise ValueError(f"SCAN: unknown split {split!r}; expected one of "
                             f"{', '.join(SCAN_SPLITS)}")
        if not 0.0 <= valid_fraction < 1.0:
            raise ValueError(f"SCAN: valid_fraction must be in [0, 1), got {valid_fraction}")
        self.split, self.valid_fraction, self.seed = split, valid_fraction, seed
        self.files = SCAN_SPLITS[split]
        self.root = _locate(self.files, root, download)
        full_train = read_scan_file(self.root / self.files[0])
        self.test = read_scan_file(self.root / self.files[1])
        self.src_vocab = _build_vocab(c for c, _ in full_train)
        self.tgt_vocab = _build_vocab(a for _, a in full_train)
        valid_idx = carve_indices(full_train, valid_fraction, seed)
        is_valid = np.zeros(len(full_train), dtype=bool)
        is_valid[valid_idx] = True
        self.train = [p for p, v in zip(full_train, is_valid) if not v]
        self.valid = [p for p, v in zip(full_train, is_valid) if v]
        self.encode("test")  # an unknown test token fails here, at load time

    def pairs(self, name: str) -> list[Pair]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"SCAN: split part must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)

    def encode(self, name: str) -> ScanBatch:
        """The whole part as one padded ScanBatch."""
        return encode_pairs(self.pairs(name), self.src_vocab, self.tgt_vocab)

    def targets(self, name: str) -> list[list[int]]:
        """The action ids of every example (no <bos>/<eos>), for ``exact_match``."""
        return [self.tgt_vocab.encode(a).tolist() for _, a in self.pairs(name)]

    def batches(self, name: str, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                bucket: bool = False, drop_last: bool = False) -> Iterator[ScanBatch]:
        """ScanBatches over a part, each padded only to its own longest sequence.

        ``shuffle`` permutes the examples with ``np.random.default_rng(seed)`` (the same seed,
        the same batches). ``bucket`` groups examples of similar target length (sorting pools
        of 50 batches, then shuffling the batch order) so that less time goes into padding."""
        pairs = self.pairs(name)
        yield from batch_pairs(pairs, self.src_vocab, self.tgt_vocab, batch_size,
                               shuffle=shuffle, seed=seed, bucket=bucket, drop_last=drop_last)

    def decode_actions(self, ids) -> list[str]:
        return self.tgt_vocab.decode(ids)

    def __repr__(self) -> str:
        return (f"SCAN({self.split!r}, train={len(self.train)}, valid={len(self.valid)}, "
                f"test={len(self.test)}, commands={len(self.src_vocab)}, "
                f"actions={len(self.tgt_vocab)})")


def carve_indices(pairs: Sequence[Pair], fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the examples held out for validation: round(fraction * n) of the n
    examples whose line occurs only once, drawn by ``np.random.default_rng(seed)``."""
    keys = [(tuple(c), tuple(a)) for c, a in pairs]
    counts = Counter(keys)
    single = np.array([i for i, k in enumerate(keys) if counts[k] == 1], dtype=np.int64)
    count = int(round(fraction * single.size))
    return np.sort(single[np.random.default_rng(seed).permutation(single.size)[:count]])


def batch_pairs(pairs: Sequence[Pair], src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                batch_size: int, *, shuffle: bool = True, seed: int = 0, bucket: bool = False,
                drop_last: bool = False, pool_batches: int = 50) -> Iterator[ScanBatch]:
    """ScanBatches of ``batch_size`` pairs (see ``SCAN.batches``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs)) if shuffle else np.arange(len(pairs))
    chunks = []
    if bucket:
        lengths = np.array([len(a) * 1000 + len(c) for c, a in pairs], dtype=np.int64)
        pool = batch_size * pool_batches
        for start in range(0, len(order), pool):
            part = order[start:start + pool]
            part = part[np.argsort(lengths[part], kind="stable")]
            chunks += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
        if shuffle:
            chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    else:
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for chunk in chunks:
        if drop_last and len(chunk) < batch_size:
            continue
        yield encode_pairs([pairs[i] for i in chunk], src_vocab, tgt_vocab)


def _build_vocab(sequences) -> Vocabulary:
    tokens = sorted({t for seq in sequences for t in seq})
    return Vocabulary.build(tokens, specials=SPECIALS)


def _locate(files: tuple[str, str], root, download: bool) -> Path:
    """The scan folder holding both files; the download creates the split's subfolder first."""
    try:
        return locate("scan", files, root=root, download=False, checksums=CHECKSUMS)
    except DatasetNotFoundError:
        if not download:
            raise
    dest = (Path(root) if root is not None else cache_dir()) / "scan"
    for f in files:
        try:
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            break
    return locate("scan", files, root=root, download=True, checksums=CHECKSUMS, urls=URLS)

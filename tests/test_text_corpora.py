"""flowgrad.datasets.text: Vocabulary, the PTB / WikiText-2 / Brown readers, batchify and
get_batch (PyTorch's word_language_model example is the oracle), perplexity.

Tests on the real corpora run where ../shared/data exists and are skipped otherwise; the rest
use files written into tmp_path and never touch the network."""

import hashlib
import math
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.datasets import files as files_mod
from flowgrad.datasets.files import ChecksumError, DatasetNotFoundError
from flowgrad.datasets.text import (
    BrownCorpus,
    PennTreebank,
    UnknownTokenError,
    Vocabulary,
    WikiText2,
    _EosLineCorpus,
    batchify,
    bptt_batches,
    brown_words,
    get_batch,
    perplexity,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def needs(name):
    return pytest.mark.skipif(not (SHARED / name).is_dir(), reason=f"../shared/data/{name} "
                              f"is not here")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset is reachable and downloads fail as if offline."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWGRAD_DATA", raising=False)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(files_mod, "_REPO", tmp_path / "repo" / "checkout")

    def offline(url, dest, timeout=None):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(files_mod, "_download", offline)
    return tmp_path


# --- Vocabulary ----------------------------------------------------------------------------------

def test_vocabulary_first_appearance_and_frequencies():
    v = Vocabulary.build("b a b c b a".split())
    assert v.itos == ["b", "a", "c"] and len(v) == 3
    assert v.stoi == {"b": 0, "a": 1, "c": 2}
    assert v.freqs == {"b": 3, "a": 2, "c": 1}
    assert v.encode(["c", "b"]).tolist() == [2, 0] and v.encode(["a"]).dtype == np.int64
    assert v.decode(np.array([2, 1, 0])) == ["c", "a", "b"]
    assert v.decode(fg.tensor([1, 1])) == ["a", "a"]
    assert "a" in v and "z" not in v


def test_vocabulary_frequency_order_and_max_size():
    v = Vocabulary.build("c a b b a b d".split(), order="frequency", unk="<unk>", max_size=3)
    assert v.itos == ["<unk>", "b", "a"]  # ties keep first appearance; <unk> first
    assert v.freqs["<unk>"] == 2  # c and d merged
    with pytest.raises(ValueError, match="no unk token"):
        Vocabulary.build("a b c".split(), max_size=2)


def test_vocabulary_merges_rare_words_into_unk():
    words = "x x x x y y z w x".split()
    v = Vocabulary.build(words, min_freq=2, unk="<unk>")
    assert v.itos == ["<unk>", "x", "y"]
    assert v.freqs == {"<unk>": 2, "x": 5, "y": 2}
    assert v.encode(["z", "x", "never"]).tolist() == [0, 1, 0]
    assert v["w"] == 0 and v.unk_index == 0


def test_vocabulary_unknown_token_without_unk_names_the_token():
    v = Vocabulary.build("a b".split())
    with pytest.raises(UnknownTokenError, match="'zebra' is not in the vocabulary"):
        v.encode(["a", "zebra"])
    with pytest.raises(KeyError, match="zebra"):
        v["zebra"]
    with pytest.raises(IndexError, match="index 5 is out of range"):
        v.decode([0, 5])
    with pytest.raises(ValueError, match="unk token '<unk>' is not one of"):
        Vocabulary(["a"], unk="<unk>")


# --- readers on files written here ---------------------------------------------------------------

class _Toy(_EosLineCorpus):
    name = "toy"
    files = {"train": "t.txt", "valid": "v.txt", "test": "s.txt"}
    checksums: dict = {}


def _pytorch_example_corpus(folder):
    """PyTorch's word_language_model data.Corpus: one Dictionary over train, valid, test."""
    word2idx, out = {}, {}
    for split, f in (("train", "t.txt"), ("valid", "v.txt"), ("test", "s.txt")):
        ids = []
        with open(folder / f, encoding="utf8") as fh:
            for line in fh:
                for w in line.split() + ["<eos>"]:
                    ids.append(word2idx.setdefault(w, len(word2idx)))
        out[split] = ids
    return word2idx, out


def test_eos_reader_matches_pytorch_example(isolated, monkeypatch):
    folder = isolated / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "t.txt").write_text(" the cat <unk> \n a dog \n \n the end \n")
    (folder / "v.txt").write_text(" a cat \n")
    (folder / "s.txt").write_text(" the dog end \n")
    _Toy.checksums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
                      for f in ("t.txt", "v.txt", "s.txt")}
    monkeypatch.setenv("FLOWGRAD_DATA", str(isolated / "data"))
    c = _Toy(download=False)
    word2idx, ref = _pytorch_example_corpus(folder)
    assert c.vocab.stoi == word2idx  # valid/test words are all in train here
    assert c.vocab.unk == "<unk>"
    for split in ("train", "valid", "test"):
        assert c.split(split).tolist() == ref[split]
    assert c.tokens("valid") == ["a", "cat", "<eos>"]
    assert c.train.tolist().count(c.vocab["<eos>"]) == 4  # one per line, the blank one too


def test_corrupted_file_raises_checksum_error(isolated, monkeypatch):
    folder = isolated / "data" / "ptb"
    folder.mkdir(parents=True)
    good = SHARED / "ptb" / "ptb.test.txt"
    text = good.read_bytes() if good.is_file() else b" a b c \n"
    bad = text[:-10] + b"corrupted\n"
    for f in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (folder / f).write_bytes(bad)
    monkeypatch.setenv("FLOWGRAD_DATA", str(isolated / "data"))
    with pytest.raises(ChecksumError) as e:
        PennTreebank(download=False)
    msg = str(e.value)
    assert "ptb.test.txt" in msg and str(folder) in msg
    assert PennTreebank.checksums["ptb.test.txt"] in msg
    assert hashlib.sha256(bad).hexdigest() in msg
    assert "put the canonical file there" in msg


def test_missing_files_say_where_to_put_them(isolated):
    with pytest.raises(DatasetNotFoundError) as e:
        WikiText2(download=False)
    msg = str(e.value)
    assert "wiki.train.tokens" in msg and "FLOWGRAD_DATA" in msg and "Put the files in" in msg


def _brown_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("brown/", "")
        z.writestr("brown/README", "not a text")
        z.writestr("brown/cb01", "\n\n\tA/at 1-1/2/cd Dog/nn ./.\n\n\n\tBark/vb !/.\n")
        z.writestr("brown/ca01", "\n\n\tThe/at cat/nn ./.\n\tIt/pps sat/vbd\n\n")


def test_brown_words_strip_tags_and_mark_paragraphs(tmp_path):
    _brown_zip(tmp_path / "brown.zip")
    words = brown_words(tmp_path / "brown.zip")
    assert words == ["The", "cat", ".", "It", "sat", "<p>", "<text>",
                     "A", "1-1/2", "Dog", ".", "<p>", "Bark", "!", "<p>", "<text>"]
    low = brown_words(tmp_path / "brown.zip", lowercase=True, paragraph_mark=None,
                      text_mark=None)
    assert low == ["the", "cat", ".", "it", "sat", "a", "1-1/2", "dog", ".", "bark", "!"]


# --- batching ------------------------------------------------------------------------------------

def _torch_batchify(data, bsz):  # PyTorch's word_language_model main.py
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def _torch_get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].view(-1)


@pytest.mark.parametrize("n,bsz,bptt", [(103, 4, 5), (40, 1, 7), (20, 20, 3), (57, 3, 100)])
def test_batchify_get_batch_match_pytorch_example(n, bsz, bptt):
    stream = np.random.default_rng(n).integers(0, 50, size=n)
    src = batchify(stream, bsz)
    ref = _torch_batchify(torch.from_numpy(stream), bsz)
    assert src.dtype == fg.int64 and src.shape == tuple(ref.shape) == (n // bsz, bsz)
    np.testing.assert_array_equal(src.numpy(), ref.numpy())
    starts = list(range(0, src.shape[0] - 1, bptt))
    windows = list(bptt_batches(src, bptt))
    assert len(windows) == len(starts)
    for i, (x, y) in zip(starts, windows):
        rx, ry = _torch_get_batch(ref, i, bptt)
        assert x.dtype == y.dtype == fg.int64
        np.testing.assert_array_equal(x.numpy(), rx.numpy())
        np.testing.assert_array_equal(y.numpy(), ry.numpy())
        # the target is the input shifted by one row
        np.testing.assert_array_equal(y.numpy().reshape(x.shape)[:-1], x.numpy()[1:])
        np.testing.assert_array_equal(src.numpy()[i + 1:i + 1 + x.shape[0]].reshape(-1),
                                      y.numpy())
    # the columns are contiguous pieces of the stream
    np.testing.assert_array_equal(src.numpy()[:, -1], stream[(bsz - 1) * (n // bsz):bsz * (n // bsz)])


def test_batching_errors():
    with pytest.raises(ValueError, match="shorter than batch_size"):
        batchify(np.arange(3), 4)
    with pytest.raises(ValueError, match="1-D token stream"):
        batchify(np.zeros((2, 2), np.int64), 1)
    src = batchify(np.arange(10), 2)
    with pytest.raises(ValueError, match="leaves no target"):
        get_batch(src, 4, 3)
    with pytest.raises(ValueError, match="bptt must be >= 1"):
        list(bptt_batches(src, 0))


def test_perplexity_is_exp_mean_nll():
    assert perplexity(math.log(141.2)) == pytest.approx(141.2)
    nll = np.array([1.0, 2.0, 3.0])
    assert perplexity(nll) == pytest.approx(math.exp(2.0))
    assert perplexity(fg.tensor(nll)) == pytest.approx(math.exp(2.0))
    assert perplexity(0.0) == 1.0


# --- the real corpora (skipped without ../shared/data) --------------------------------------------

@needs("ptb")
def test_ptb_counts():
    c = PennTreebank(download=False)
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    assert len(c.vocab) == 10_000 and c.vocab.unk == "<unk>"
    eos = c.vocab["<eos>"]
    assert [int((c.split(s) == eos).sum()) for s in ("train", "valid", "test")] == \
        [42_068, 3_370, 3_761]
    assert c.tokens("test")[:4] == ["no", "it", "was", "n't"]
    # PyTorch's example numbers the words by first appearance in train
    assert c.vocab.itos[:3] == ["aer", "banknote", "berlitz"]
    assert c.train.dtype == np.int64 and c.train.max() == 9_999


@needs("wikitext-2")
def test_wikitext2_counts():
    c = WikiText2(download=False)
    assert (len(c.train), len(c.valid), len(c.test)) == (2_088_628, 217_646, 245_569)
    assert len(c.vocab) == 33_278
    eos = c.vocab["<eos>"]
    assert [int((c.split(s) == eos).sum()) for s in ("train", "valid", "test")] == \
        [36_718, 3_760, 4_358]
    assert c.vocab.itos[0] == "<eos>"  # the first line is blank, as in PyTorch's example


@needs("brown")
def test_brown_split_sizes_and_vocabulary():
    c = BrownCorpus(download=False)
    assert c.n_words == 1_177_359 and c.n_types == 56_059
    assert (len(c.train), len(c.valid), len(c.test)) == (800_000, 200_000, 177_359)
    assert len(c.vocab) == 16_295  # the paper: |V| = 16,383
    assert c.vocab.freqs[c.vocab.unk] > 0 and min(c.vocab.freqs[w] for w in c.vocab.itos) >= 4
    # case is kept; "Jury" (capitalised) is rare and merged
    assert c.tokens("train")[:6] == ["The", "Fulton", "County", "Grand", "<unk>", "said"]

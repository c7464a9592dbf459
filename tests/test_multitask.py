"""Multitask learning with a shared representation (Collobert & Weston 2008): the tagged Brown
reader and its tag mapping, the window network, the tagging loss with missing targets, the
ranking language-model loss, and a tiny multitask run that learns."""

import zipfile

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.datasets.brown_tags import (
    BROWN_UNIVERSAL,
    UNIVERSAL_TAGS,
    UnknownTagError,
    base_tag,
    brown_tagged,
    simplify_tag,
)
from flowgrad.errors import IndexOutOfRangeError, ShapeError
from flowgrad.representations.multitask import (
    MISSING,
    WindowNetwork,
    capitalization,
    corrupt_centre,
    make_windows,
    most_frequent_tag,
    multitask_loss,
    predict_tags,
    ranking_lm_loss,
    tagging_loss,
)

# --- reading the tags -----------------------------------------------------------------------

def _brown_zip(path, extra=""):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("brown/", "")
        z.writestr("brown/README", "not/a text/file")
        z.writestr("brown/cb01", "\n\n\tA/at 1-1/2/cd Dog/nn-tl ./.\n\n\n\tI'll/ppss+md "
                                 "bark/vb !/.\n" + extra)
        z.writestr("brown/ca01", "\n\n\tThe/at cat/nn can't/md* ./.\n\tIt/pps sat/vbd\n\n")


def test_brown_tagged_reads_words_tags_and_sentences(tmp_path):
    _brown_zip(tmp_path / "brown.zip")
    b = brown_tagged(tmp_path / "brown.zip", tagset="base")
    assert b.sentences == [["The", "cat", "can't", "."], ["It", "sat"],
                           ["A", "1-1/2", "Dog", "."], ["I'll", "bark", "!"]]  # ca01 first
    assert b.tags == [["at", "nn", "md", "."], ["pps", "vbd"], ["at", "cd", "nn", "."],
                      ["ppss", "vb", "."]]
    assert b.files == ["ca01", "ca01", "cb01", "cb01"]
    assert b.starts == [0, 4, 6, 10] and b.n_words == 13 and len(b) == 4
    u = brown_tagged(tmp_path / "brown.zip", lowercase=True)
    assert u.tagset == "universal" and u.sentences[0][0] == "the"
    assert u.tags[0] == ["DET", "NOUN", "VERB", "."]
    assert u.tags[3] == ["PRON", "VERB", "."]
    assert u.tag_names() == ["NOUN", "VERB", "PRON", "DET", "NUM", "."]


@pytest.mark.parametrize("tag, base, coarse", [
    ("nn", "nn", "NOUN"), ("NN-TL", "nn", "NOUN"), ("nn-tl-hl", "nn", "NOUN"),
    ("fw-nn", "nn", "NOUN"), ("fw-in+at-tl", "in", "ADP"), ("ppss+md", "ppss", "PRON"),
    ("md*", "md", "VERB"), ("*", "*", "ADV"), ("---hl", "--", "."), ("--", "--", "."),
    ("np$", "np$", "NOUN"), ("pp$$", "pp$$", "PRON"), ("'", "'", "."), ("``", "``", "."),
    ("bedz*", "bedz", "VERB"), ("to", "to", "PRT"), ("nil", "nil", "X"), ("abn", "abn", "DET"),
    ("wrb", "wrb", "ADV"), ("od", "od", "ADJ"), ("cs", "cs", "CONJ"), ("cd-tl", "cd", "NUM"),
])
def test_tag_mapping(tag, base, coarse):
    assert base_tag(tag) == base
    assert simplify_tag(tag, "base") == base
    assert simplify_tag(tag) == coarse


def test_mapping_covers_the_universal_set():
    assert set(BROWN_UNIVERSAL.values()) == set(UNIVERSAL_TAGS)
    assert len(BROWN_UNIVERSAL) == 93  # Brown's 92 base tags and bare fw


def test_unknown_tag_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownTagError, match="'zz-tl'.*base 'zz'"):
        simplify_tag("zz-tl")
    with pytest.raises(ValueError, match="tagset must be one of"):
        simplify_tag("nn", "penn")
    _brown_zip(tmp_path / "brown.zip", extra="\tOdd/qq\n")
    with pytest.raises(UnknownTagError, match="'Odd/qq' in brown/cb01 line 7"):
        brown_tagged(tmp_path / "brown.zip")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("brown/ca01", "\tword-without-tag\n")
    with pytest.raises(ValueError, match="'word-without-tag' in brown/ca01 line 1 is not"):
        brown_tagged(tmp_path / "bad.zip")


# --- windows and features -------------------------------------------------------------------

def test_make_windows_pads_each_sentence():
    w = make_windows([[5, 6, 7], [8]], window=5, padding_idx=0)
    np.testing.assert_array_equal(w, [[0, 0, 5, 6, 7], [0, 5, 6, 7, 0], [5, 6, 7, 0, 0],
                                      [0, 0, 8, 0, 0]])
    assert make_windows([], 3).shape == (0, 3)
    with pytest.raises(ValueError, match="positive odd"):
        make_windows([[1]], 4)


def test_capitalization_classes():
    assert [capitalization(w) for w in ("dog", "Dog", "NATO", "McDonald", "1960", "I")] == \
        [1, 2, 3, 2, 1, 2]
    assert capitalization("iPhone") == 4


def test_corrupt_centre_changes_only_the_centre():
    w = np.arange(20).reshape(4, 5) + 2
    c = corrupt_centre(w, np.random.default_rng(0), 2, 50)
    np.testing.assert_array_equal(np.delete(c, 2, 1), np.delete(w, 2, 1))
    assert ((c[:, 2] >= 2) & (c[:, 2] < 50)).all() and c[:, 2].dtype == np.int64
    np.testing.assert_array_equal(w, np.arange(20).reshape(4, 5) + 2)  # input untouched


# --- losses ---------------------------------------------------------------------------------

def test_ranking_lm_loss_against_numpy():
    rng = np.random.default_rng(1)
    s, c = rng.normal(size=9), rng.normal(size=9)
    s[0], c[0] = 2.0, 0.5  # margin met exactly: hinge 0 with a zero gradient
    st, ct = fg.tensor(s, requires_grad=True), fg.tensor(c, requires_grad=True)
    loss = ranking_lm_loss(st, ct)
    hinge = np.maximum(0.0, 1.0 - s + c)
    np.testing.assert_allclose(loss.item(), hinge.mean(), rtol=1e-12)
    loss.backward()
    active = (1.0 - s + c > 0).astype(float)
    np.testing.assert_allclose(st.grad.numpy(), -active / 9, rtol=1e-12)
    np.testing.assert_allclose(ct.grad.numpy(), active / 9, rtol=1e-12)
    np.testing.assert_allclose(ranking_lm_loss(s, c, margin=0.3, reduction="none").numpy(),
                               np.maximum(0.0, 0.3 - s + c))
    np.testing.assert_allclose(ranking_lm_loss(s, c, reduction="sum").item(), hinge.sum())
    ref = torch.nn.functional.margin_ranking_loss(torch.tensor(s), torch.tensor(c),
                                                  torch.ones(9), margin=1.0)
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
    with pytest.raises(ShapeError, match=r"\(9,\).*\(8,\)"):
        ranking_lm_loss(s, c[:8])


def test_tagging_loss_missing_rows_give_exactly_zero_gradient():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 4))
    tags = np.array([1, MISSING, 3, MISSING, 0, MISSING])
    x = fg.tensor(logits, requires_grad=True)
    loss = tagging_loss(x, tags)
    loss.backward()
    g = x.grad.numpy()
    assert (g[tags == MISSING] == 0).all()
    xt = torch.tensor(logits[tags != MISSING], requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(tags[tags != MISSING]))
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(g[tags != MISSING], xt.grad.numpy(), rtol=1e-10)
    # a missing row may hold anything, even inf: nothing of it reaches the loss or a gradient
    logits[1] = np.inf
    x = fg.tensor(logits, requires_grad=True)
    tagging_loss(x, tags).backward()
    assert np.isfinite(x.grad.numpy()).all() and (x.grad.numpy()[tags == MISSING] == 0).all()
    assert tagging_loss(logits, np.full(6, MISSING)).item() == 0.0


def test_multitask_loss_unlabelled_rows_add_nothing_to_the_tagging_head():
    fg.manual_seed(0)
    model = WindowNetwork(30, 4, window=3, embedding_dim=4, hidden=8, caps_dim=2,
                          dtype=fg.float64)
    rng = np.random.default_rng(3)
    # labelled windows use words 2..14, unlabelled ones words 15..29 only
    words = np.concatenate([rng.integers(2, 15, (5, 3)), rng.integers(15, 30, (5, 3))])
    caps = rng.integers(1, 5, (10, 3))
    tags = np.array([2, 1, 0, 3, 1, MISSING, MISSING, MISSING, MISSING, MISSING])
    total, parts = multitask_loss(model, words, tags, np.random.default_rng(4), caps=caps)
    model.zero_grad()
    parts["tag"].backward()
    emb = model.embedding.weight.grad.numpy()
    assert (emb[15:] == 0).all() and np.abs(emb[2:15]).sum() > 0  # exactly zero
    with_missing = {k: p.grad.numpy().copy() for k, p in model.named_parameters()
                    if p.grad is not None}
    assert set(with_missing) == {k for k, _ in model.named_parameters()} - {"scorer.weight",
                                                                            "scorer.bias"}
    model.zero_grad()
    _, only = multitask_loss(model, words[:5], tags[:5], np.random.default_rng(4), caps=caps[:5],
                             lm_weight=0)
    only["tag"].backward()
    for k, p in model.named_parameters():
        if k in with_missing:
            np.testing.assert_allclose(p.grad.numpy(), with_missing[k], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(parts["tag"].item(), only["tag"].item(), rtol=1e-12)
    # the total is tag + lm, and the lm term matches a direct NumPy computation
    corrupt = corrupt_centre(words, np.random.default_rng(4), 2, 30)
    with fg.no_grad():
        s = model.lm_scores(words, caps).numpy()
        c = model.lm_scores(corrupt, caps).numpy()
    np.testing.assert_allclose(parts["lm"].item(), np.maximum(0, 1 - s + c).mean(), rtol=1e-12)
    np.testing.assert_allclose(total.item(), parts["tag"].item() + parts["lm"].item(),
                               rtol=1e-12)


def test_single_task_tagger_has_no_lm_head():
    model = WindowNetwork(20, 3, window=3, embedding_dim=2, hidden=4, lm_head=False)
    assert model.scorer is None
    loss, parts = multitask_loss(model, np.ones((2, 3), np.int64), np.array([0, 2]))
    assert set(parts) == {"tag"} and loss.item() > 0
    with pytest.raises(RuntimeError, match="lm_head=False"):
        model.lm_scores(np.ones((2, 3), np.int64))


# --- bad input ------------------------------------------------------------------------------

def test_bad_input_is_a_clear_error():
    model = WindowNetwork(20, 3, window=5, embedding_dim=2, hidden=4, caps_dim=2)
    words, caps = np.ones((4, 5), np.int64), np.ones((4, 5), np.int64)
    with pytest.raises(ShapeError, match=r"words of shape \(4, 3\), expected \(N, 5\)"):
        model(words[:, :3], caps[:, :3])
    with pytest.raises(IndexOutOfRangeError, match="id 20, outside 0 .. 19"):
        model(words * 20, caps)
    with pytest.raises(ValueError, match="needs the capitalisation ids"):
        model(words)
    with pytest.raises(IndexOutOfRangeError, match="tag 3 at index 1 is not a tag"):
        multitask_loss(model, words, np.array([0, 3, 1, MISSING]), np.random.default_rng(0),
                       caps=caps)
    with pytest.raises(ShapeError, match=r"tags of shape \(3,\), expected \(4,\)"):
        multitask_loss(model, words, np.array([0, 1, 1]), np.random.default_rng(0), caps=caps)
    with pytest.raises(ValueError, match="needs rng"):
        multitask_loss(model, words, np.array([0, 1, 1, 1]), caps=caps)
    with pytest.raises(ValueError, match="positive odd"):
        WindowNetwork(20, 3, window=4)


# --- learning -------------------------------------------------------------------------------

def _toy_language(rng, n_sentences):
    """Sentences det noun verb (det noun): the tag follows from the word's class; words 2..9
    determiners, 10..29 nouns, 30..39 verbs (tags 0, 1, 2)."""
    sents, tags = [], []
    for _ in range(n_sentences):
        s = [rng.integers(2, 10), rng.integers(10, 30), rng.integers(30, 40)]
        if rng.random() < 0.5:
            s += [rng.integers(2, 10), rng.integers(10, 30)]
        sents.append(s)
        tags += [0 if w < 10 else 1 if w < 30 else 2 for w in s]
    return make_windows(sents, 3), np.array(tags)


def test_multitask_model_learns_on_tiny_data():
    rng = np.random.default_rng(0)
    words, tags = _toy_language(rng, 300)
    test_words, test_tags = _toy_language(rng, 100)
    fg.manual_seed(0)
    model = WindowNetwork(40, 3, window=3, embedding_dim=8, hidden=16)
    opt = fg.optim.SGD(model.parameters(), lr=0.5)
    labelled = np.where(rng.random(len(tags)) < 0.3, tags, MISSING)  # 70% missing
    first = None
    for _ in range(300):
        rows = rng.integers(0, len(tags), 32)
        loss, parts = multitask_loss(model, words[rows], labelled[rows], rng)
        first = first if first is not None else (parts["tag"].item(), parts["lm"].item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["tag"].item() < 0.3 * first[0] and parts["lm"].item() < first[1]
    assert (predict_tags(model, test_words) == test_tags).mean() > 0.95
    with fg.no_grad():  # the LM ranks true windows above corrupted ones
        s = model.lm_scores(test_words).numpy()
        c = model.lm_scores(corrupt_centre(test_words, rng, 2, 40)).numpy()
    assert (s > c).mean() > 0.7


def test_most_frequent_tag_baseline():
    pred = most_frequent_tag([3, 3, 3, 4, 5], [1, 1, 0, 2, 1], [3, 4, 5, 9])
    np.testing.assert_array_equal(pred, [1, 2, 1, 1])  # 9 unseen: the commonest tag, 1

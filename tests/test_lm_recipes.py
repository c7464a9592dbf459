"""The language-modelling recipes' short variants (ptb_lstm, ptb_ngram, brown_nplm): each runs on
slices of its corpus, writes its .md, .json and figures, reports the published numbers beside
its own and learns (the full runs are recipes, not tests). Skipped when the corpus files are
not in ../shared/data (or $FLOWGRAD_DATA)."""

import json
import math

import numpy as np
import pytest

from flowgrad import recipes
from flowgrad.datasets.text import BrownCorpus, PennTreebank


def _have(cls) -> bool:
    try:
        cls(download=False)
        return True
    except Exception:
        return False


HAVE_PTB, HAVE_BROWN = _have(PennTreebank), _have(BrownCorpus)
needs_ptb = pytest.mark.skipif(not HAVE_PTB, reason="Penn Treebank files not found")
needs_brown = pytest.mark.skipif(not HAVE_BROWN, reason="Brown corpus (brown.zip) not found")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS and OpenMP thread: on two cores shared with other jobs, a second thread makes
    the small GEMMs of a recurrent step (and scikit-learn's t-SNE) many times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _written(tmp_path, name, s):
    md, js = tmp_path / f"{name}.md", tmp_path / f"{name}.json"
    assert md.exists() and js.exists(), sorted(p.name for p in tmp_path.iterdir())
    text = md.read_text()
    assert f"Command: `{s['command']}`" in text
    saved = json.loads(js.read_text())
    assert saved["command"] == s["command"] and "machine" in saved and "seconds" in saved
    assert saved["seed"] == s["seed"] and saved["published"]
    return text, saved


def test_lm_recipes_are_registered():
    for name in ("ptb_lstm", "ptb_ngram", "brown_nplm"):
        assert name in recipes.RECIPES
        assert isinstance(recipes.get(name).DEFAULTS, dict)


def test_zaremba_learning_rate_schedule():
    from flowgrad.recipes.ptb_lstm import learning_rate

    lrs = [learning_rate(e, 1.0, 0.5, 4) for e in range(1, 14)]
    assert lrs[:4] == [1.0] * 4 and lrs[4] == 0.5 and lrs[-1] == 0.5 ** 9


@needs_ptb
def test_ptb_lstm_quick_learns_checkpoints_and_resumes(tmp_path):
    from flowgrad.recipes import ptb_lstm

    s = ptb_lstm.run(out=str(tmp_path), quick=True, progress=False)
    assert s["command"] == "flowgrad train ptb_lstm --quick"
    text, saved = _written(tmp_path, "ptb_lstm", s)
    assert "114.5" in text and "120.7" in text and saved["published"]["test"] == 114.5
    assert [r["epoch"] for r in s["history"]] == [0, 1, 2]
    # learns: from about |V| = 10,000 (the initial weights) to well below it
    assert s["initial_valid_ppl"] > 5000 and s["valid_ppl"] < 0.3 * s["initial_valid_ppl"]
    assert s["valid_ppl"] == min(r["valid_ppl"] for r in s["history"][1:])
    assert math.isfinite(s["test_ppl"]) and s["test_ppl"] < 3000
    for f in ("ptb_lstm_curves.png", "ptb_lstm_best.safetensors", "ptb_lstm_last.safetensors"):
        assert (tmp_path / f).exists()
    # interrupted after epoch 1, then rerun into the same directory: it resumes from the
    # checkpoint and ends where the uninterrupted run ended
    part = tmp_path / "interrupted"
    ptb_lstm.run(out=str(part), quick=True, progress=False, epochs=1)
    resumed = ptb_lstm.run(out=str(part), quick=True, progress=False)
    assert [r["valid_ppl"] for r in resumed["history"]] == pytest.approx(
        [r["valid_ppl"] for r in s["history"]], rel=1e-9)
    assert resumed["test_ppl"] == pytest.approx(s["test_ppl"], rel=1e-9)
    with pytest.raises(ValueError, match="other settings"):
        ptb_lstm.run(out=str(part), quick=True, progress=False, lr=0.5)


@needs_ptb
def test_ptb_lstm_quick_with_an_adaptive_softmax_learns_and_scores_exactly(tmp_path):
    from flowgrad.recipes import ptb_lstm

    s = ptb_lstm.run(out=str(tmp_path), quick=True, progress=False, softmax="adaptive",
                     cutoffs=(200, 2000))
    text, saved = _written(tmp_path, "ptb_lstm_adaptive", s)
    assert "adaptive softmax" in text and saved["config"]["cutoffs"] == [200, 2000]
    # learns in its 30 updates (slower than the full softmax's this early: on 100,000 tokens
    # both reach the same validation perplexity after two epochs)
    assert s["initial_valid_ppl"] > 5000 and s["valid_ppl"] < 0.6 * s["initial_valid_ppl"]
    assert math.isfinite(s["test_ppl"]) and s["test_ppl"] < 6000
    # the perplexity is exact: the kept model's full distribution sums to one over the words
    model = ptb_lstm.WordLSTM(s["vocab_size"], softmax="adaptive", cutoffs=(200, 2000))
    from flowgrad.train import load_checkpoint

    load_checkpoint(tmp_path / "ptb_lstm_adaptive_best.safetensors", model, restore_rng=False)
    logp, _ = model(np.array([[1, 2, 3]]).T)
    np.testing.assert_allclose(np.exp(logp.detach().numpy()).sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="softmax must be one of"):
        ptb_lstm.run(out=str(tmp_path / "x"), quick=True, progress=False, softmax="sampled")


@needs_ptb
def test_transformer_lm_quick_with_an_adaptive_softmax_learns_and_scores_exactly(tmp_path):
    from flowgrad.models.gpt import TransformerLanguageModel
    from flowgrad.recipes import transformer_lm
    from flowgrad.train import load_checkpoint

    s = transformer_lm.run(out=str(tmp_path), quick=True, progress=False, softmax="adaptive",
                           cutoffs=(200, 2000))
    name = "transformer_lm_adaptive"
    md, js = tmp_path / f"{name}.md", tmp_path / f"{name}.json"
    assert md.exists() and js.exists(), sorted(p.name for p in tmp_path.iterdir())
    text, saved = md.read_text(), json.loads(js.read_text())
    assert f"Command: `{s['command']}`" in text and saved["command"] == s["command"]
    assert "adaptive softmax" in text and saved["config"]["cutoffs"] == [200, 2000]
    assert s["config"]["tie_weights"] is False
    assert s["initial_valid_ppl"] > 5000 and s["valid_ppl"] < 0.6 * s["initial_valid_ppl"]
    assert math.isfinite(s["test_ppl"]) and s["test_ppl"] < 6000
    # the prompt is decoded back through the frequency renumbering: the test split's words
    data = transformer_lm._corpus("ptb")
    assert s["prompt"] == " ".join(data.vocab.decode(list(data.test[:8])))
    c = s["config"]
    model = TransformerLanguageModel(vocab_size=s["vocab_size"], block_size=c["block"],
                                     d_model=c["d_model"], nhead=c["nhead"],
                                     num_layers=c["num_layers"],
                                     dim_feedforward=c["dim_feedforward"], tie_weights=False,
                                     softmax="adaptive", cutoffs=(200, 2000))
    load_checkpoint(tmp_path / f"{name}_best.safetensors", model, restore_rng=False)
    # the perplexity is exact: the kept model's full distribution sums to one over the words
    logp = model.eval()(np.array([[1, 2, 3]])).detach().numpy()
    np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="softmax must be one of"):
        transformer_lm.run(out=str(tmp_path / "x"), quick=True, progress=False,
                           softmax="sampled")


@needs_ptb
def test_transformer_lm_evaluate_scores_every_token_after_the_first_once():
    """The sliding-window perplexity equals exp(mean NLL) computed token by token from the
    model's own log-probabilities with the windows the docstring describes."""
    import flowgrad as fg
    from flowgrad.models.gpt import TransformerLanguageModel
    from flowgrad.recipes.transformer_lm import evaluate

    fg.manual_seed(0)
    model = TransformerLanguageModel(vocab_size=50, block_size=8, d_model=16, nhead=2,
                                     num_layers=1, dim_feedforward=32).eval()
    tokens = np.random.default_rng(0).integers(0, 50, 37)
    nll, count = 0.0, 0
    for t in range(1, 37):  # target t, read from the window that scores it
        if t <= 8:
            start = 0
        else:
            end = min(8 + 4 * -(-(t - 8) // 4), 36)  # the first window end >= t (stride 4)
            start = end - 8
        x = tokens[start:start + 8][None]
        logp = model(fg.tensor(x)).log_softmax(-1).detach().numpy()[0]
        nll -= logp[t - 1 - start, tokens[t]]
        count += 1
    assert evaluate(model, tokens, 8, batch=3) == pytest.approx(math.exp(nll / count), rel=1e-5)


def test_by_frequency_renumbers_by_training_counts_as_a_bijection():
    from flowgrad.recipes.ptb_lstm import by_frequency

    train, valid, test = np.array([3, 3, 3, 1, 1, 0, 4]), np.array([2, 3]), np.array([4, 0])
    a, b, c = by_frequency(train, valid, test, 5)
    assert a.tolist() == [0, 0, 0, 1, 1, 2, 3]  # 3 most frequent, then 1, then 0 and 4 (ties)
    assert b.tolist() == [4, 0] and c.tolist() == [3, 2]  # 2 never seen in train: last


@needs_ptb
def test_ptb_ngram_quick_chooses_on_validation_and_trains_the_nplm(tmp_path):
    from flowgrad.recipes import ptb_ngram

    s = ptb_ngram.run(out=str(tmp_path), quick=True, progress=False, nplm=1)
    assert s["command"] == "flowgrad train ptb_ngram --set nplm=1 --quick"
    text, _ = _written(tmp_path, "ptb_ngram", s)
    assert "141.2" in text and "140.2" in text
    assert s["kn_valid_ppl"][f"KN{s['kn_order']}"] == min(s["kn_valid_ppl"].values())
    tested = [k for k in s["perplexities"] if k.startswith("KN")]
    assert tested == [f"KN{s['kn_order']}"]  # only the chosen order met the test split
    V = s["vocab_size"]
    assert s["kn_test_ppl"] < V / 5 and s["trigram_test_ppl"] < V / 5
    assert s["nplm_valid_ppl"] < V / 5 and s["nplm_test_ppl"] < V / 5
    assert (tmp_path / "ptb_ngram_nplm_curves.png").exists()


@needs_brown
def test_brown_nplm_quick_rows_findings_and_embeddings(tmp_path):
    from flowgrad.recipes import brown_nplm

    s = brown_nplm.run(out=str(tmp_path), quick=True, progress=False)
    assert s["command"] == "flowgrad train brown_nplm --quick"
    text, _ = _written(tmp_path, "brown_nplm", s)
    for row in ("MLP5", "MLP6", "MLP7", "MLP9", "MLP3", "deleted interpolation trigram"):
        assert row in text
    assert "full softmax (as the paper)" in text
    rows, V = s["perplexities"], s["vocab_size"]
    for key in brown_nplm.VARIANTS:
        assert rows[key]["kind"] == "nplm" and rows[f"{key} mixed"]["kind"] == "mixed"
        assert rows[key]["valid"] < V / 4  # learns: far below the uniform |V|
    assert set(s["findings_test"]) == {
        "hidden units help (h=50 < h=0)", "longer context helps (n=5 < n=3)",
        "mixing with the trigram helps (every mixture < both parts)",
        "best NPLM (mixtures included) beats best n-gram"}
    assert all(isinstance(v, bool) for v in s["findings_test"].values())
    best_ngram = min(rows[k]["test"] for k in ("interpolated trigram", "KN3", "KN5"))
    assert s["best_ngram_test_ppl"] == best_ngram
    assert s["gap_vs_best_ngram"] == pytest.approx(1 - s["best_nplm_test_ppl"] / best_ngram)
    assert s["embedding"]["neighbours"] and (tmp_path / "brown_nplm_embeddings.png").exists()


@needs_brown
def test_nce_training_learns_and_is_evaluated_exactly():
    from flowgrad.models.nplm import NPLMConfig
    from flowgrad.recipes.brown_nplm import load_brown, train_nplm

    train, valid, _, words = load_brown(quick=True)
    config = NPLMConfig(vocab_size=len(words), context=3, embedding_dim=16, hidden=16)
    r = train_nplm(config, train[:8000], valid[:1000], objective="nce", max_epochs=2,
                   batch_size=256, progress=False)
    unigram = np.bincount(train[:8000], minlength=len(words)) + 1.0
    unigram_ppl = math.exp(-np.mean(np.log(unigram[valid[2:1000]] / unigram.sum())))
    assert r["valid_ppl"] < 1.2 * unigram_ppl and r["best_epoch"] >= 1
    with pytest.raises(ValueError, match="objective"):
        train_nplm(config, train[:100], valid[:50], objective="softmax", progress=False)


@pytest.mark.parametrize("clip", [5.0, 0.05])  # 0.05: the clip is active at every step
def test_lstm_training_loop_matches_pytorch(clip):
    """The recipe's loop (loss summed over the unrolled steps and averaged over the batch, SGD,
    norm clipping, the state carried and detached between windows) gives PyTorch's weights."""
    torch = pytest.importorskip("torch")
    import flowgrad as fg
    from flowgrad.datasets.text import batchify
    from flowgrad.recipes.ptb_lstm import WordLSTM, train_epoch

    V, E, H, L, B, T = 30, 6, 5, 2, 4, 7
    tokens = np.random.default_rng(0).integers(0, V, 4 * 7 * 5 + 1)
    fg.manual_seed(0)
    ours = WordLSTM(V, E, H, L, init_range=0.1).double()
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    train_epoch(ours, batchify(tokens, B), fg.optim.SGD(ours.parameters(), lr=1.0), T, clip,
                progress=False, desc="")

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Embedding(V, E)
            self.lstm = torch.nn.LSTM(E, H, L)
            self.decoder = torch.nn.Linear(H, V)

    ref = Ref().double()
    ref.load_state_dict(state)
    opt = torch.optim.SGD(ref.parameters(), lr=1.0)
    cols = torch.from_numpy(tokens[:len(tokens) // B * B].reshape(B, -1).T.copy())
    hidden = None
    for i in range(0, cols.shape[0] - 1, T):
        n = min(T, cols.shape[0] - 1 - i)
        x, y = cols[i:i + n], cols[i + 1:i + 1 + n].reshape(-1)
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)
        out, hidden = ref.lstm(ref.encoder(x), hidden)
        logits = ref.decoder(out.reshape(-1, H))
        loss = torch.nn.functional.cross_entropy(logits, y) * x.shape[0]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        opt.step()
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-8,
                                   atol=1e-10, err_msg=k)


def test_findings_follow_the_paper_claims():
    from flowgrad.recipes.brown_nplm import findings

    def rows(h50, h0, n3, mix, tri=300.0, kn=290.0):
        r = {"interpolated trigram": {"test": tri, "kind": "n-gram"},
             "KN5": {"test": kn, "kind": "n-gram"}}
        for key, p in (("n5_h50_direct", h50), ("n5_h0_direct", h0), ("n3_h50_direct", n3)):
            r[key] = {"test": p, "kind": "nplm"}
            r[f"{key} mixed"] = {"test": p * mix, "kind": "mixed"}
        return r

    good = findings(rows(h50=280.0, h0=310.0, n3=295.0, mix=0.9))
    assert len(good) == 4 and all(good.values())
    bad = findings(rows(h50=320.0, h0=310.0, n3=300.0, mix=1.0))
    assert not any(bad.values())


def test_shrink_vocab_and_nplm_grid():
    from flowgrad.datasets.text import Vocabulary
    from flowgrad.recipes.brown_nplm import shrink_vocab
    from flowgrad.recipes.ptb_ngram import parse_grid

    vocab = Vocabulary(["<unk>", "a", "b", "c", "d"], unk="<unk>")
    train, test = np.array([1, 1, 1, 2, 2, 3, 0]), np.array([4, 3, 2, 1])
    (tr, te), words = shrink_vocab((train, test), vocab, 3)
    assert words == ["<unk>", "a", "b"]
    assert tr.tolist() == [1, 1, 1, 2, 2, 0, 0] and te.tolist() == [0, 0, 2, 1]
    assert parse_grid(("adam:0.001", "sgd:0.1")) == [("adam", 0.001), ("sgd", 0.1)]
    assert parse_grid("adam:1e-3") == [("adam", 0.001)]
    with pytest.raises(ValueError, match="adam:LR"):
        parse_grid(("rmsprop:0.1",))

"""AdditiveAttention / DotProductAttention against a NumPy transcription of the papers' formulas
and finite differences; the seq2seq models (RNNencdec, RNNsearch) for shapes, padding
invariance, learning a reversal task, greedy decoding vs beam search, heatmaps, state_dict."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.errors import ShapeError
from flowgrad.models.seq2seq import (
    AttentionSeq2Seq,
    RNNEncoderDecoder,
    Seq2SeqConfig,
    _pad_targets,
    beam_search,
    greedy_decode,
    save_attention_heatmap,
    sequence_log_prob,
    sequence_loss,
)

# --- attention layers ---------------------------------------------------------------------------


def _softmax_masked(scores, keep):
    s = np.where(keep, scores, -np.inf)
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s) * keep
    return e / e.sum(axis=1, keepdims=True)


def _naive_additive(att, q, k, v, keep):
    """Bahdanau et al. 2014 eq. 6, one position at a time."""
    W = att.query_proj.weight.detach().numpy()
    U = att.key_proj.weight.detach().numpy()
    va = att.v.weight.detach().numpy()[0]
    b = att.key_proj.bias.detach().numpy() if att.key_proj.bias is not None else 0.0
    B, S, _ = k.shape
    scores = np.zeros((B, S))
    for i in range(B):
        for j in range(S):
            scores[i, j] = va @ np.tanh(W @ q[i] + U @ k[i, j] + b)
    w = _softmax_masked(scores, keep)
    return np.einsum("bs,bsd->bd", w, v), w


def _inputs(rng, B=3, S=5, dq=4, dk=6, dv=3, dtype="float64"):
    q = rng.standard_normal((B, dq)).astype(dtype)
    k = rng.standard_normal((B, S, dk)).astype(dtype)
    v = rng.standard_normal((B, S, dv)).astype(dtype)
    keep = np.ones((B, S), dtype=bool)
    keep[1, 3:] = False
    keep[2, 1:] = False
    return q, k, v, keep


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_additive_attention_matches_naive(bias, dtype):
    rng = np.random.default_rng(0)
    q, k, v, keep = _inputs(rng, dtype=dtype)
    fg.manual_seed(0)
    att = fg.nn.AdditiveAttention(4, 6, 7, bias=bias, dtype=getattr(fg, dtype))
    ctx, w = att(fg.tensor(q), fg.tensor(k), fg.tensor(v), mask=keep)
    ref_ctx, ref_w = _naive_additive(att, q.astype(float), k.astype(float), v.astype(float),
                                     keep)
    tol = dict(atol=1e-12) if dtype == "float64" else dict(atol=1e-5)
    assert ctx.shape == (3, 3) and w.shape == (3, 5) and ctx.dtype == getattr(fg, dtype)
    np.testing.assert_allclose(w.detach().numpy(), ref_w, **tol)
    np.testing.assert_allclose(ctx.detach().numpy(), ref_ctx, **tol)
    assert np.all(w.detach().numpy()[~keep] == 0.0)
    np.testing.assert_allclose(w.detach().numpy().sum(1), 1.0, atol=1e-6)
    # the same with key_padding_mask (True = ignore) and with precomputed projections
    ctx2, w2 = att(fg.tensor(q), fg.tensor(k), fg.tensor(v), key_padding_mask=~keep,
                   projected_keys=att.project_keys(fg.tensor(k)))
    np.testing.assert_array_equal(w2.detach().numpy(), w.detach().numpy())
    np.testing.assert_array_equal(ctx2.detach().numpy(), ctx.detach().numpy())


def test_additive_attention_no_mask_values_default_to_keys():
    rng = np.random.default_rng(1)
    q, k, _, _ = _inputs(rng)
    att = fg.nn.AdditiveAttention(4, 6, 5, dtype=fg.float64)
    ctx, w = att(fg.tensor(q), fg.tensor(k))
    ref_ctx, ref_w = _naive_additive(att, q, k, k, np.ones((3, 5), dtype=bool))
    np.testing.assert_allclose(w.detach().numpy(), ref_w, atol=1e-12)
    np.testing.assert_allclose(ctx.detach().numpy(), ref_ctx, atol=1e-12)


def test_fully_masked_row_gives_zeros():
    rng = np.random.default_rng(2)
    q, k, v, keep = _inputs(rng)
    keep[0] = False
    att = fg.nn.AdditiveAttention(4, 6, 5, dtype=fg.float64)
    ctx, w = att(fg.tensor(q), fg.tensor(k), fg.tensor(v), mask=keep)
    assert np.all(w.detach().numpy()[0] == 0) and np.all(ctx.detach().numpy()[0] == 0)
    assert np.isfinite(w.detach().numpy()).all()


def test_additive_attention_gradients_finite_differences():
    rng = np.random.default_rng(3)
    q, k, v, keep = _inputs(rng)
    att = fg.nn.AdditiveAttention(4, 6, 5, bias=True, dtype=fg.float64)
    probe = rng.standard_normal((3, 3))
    probe_w = rng.standard_normal((3, 5))

    def loss_of(qa, ka, va):
        ctx, w = att(fg.tensor(qa), fg.tensor(ka), fg.tensor(va), mask=keep)
        return float((ctx.detach().numpy() * probe).sum() + (w.detach().numpy() * probe_w).sum())

    qt, kt, vt = (fg.tensor(a, requires_grad=True) for a in (q, k, v))
    ctx, w = att(qt, kt, vt, mask=keep)
    ((ctx * fg.tensor(probe)).sum() + (w * fg.tensor(probe_w)).sum()).backward()
    arrays = [q, k, v]
    for i, t in enumerate((qt, kt, vt)):
        num = np.zeros_like(arrays[i])
        for idx in np.ndindex(arrays[i].shape):
            hi = [a.copy() for a in arrays]
            lo = [a.copy() for a in arrays]
            hi[i][idx] += 1e-6
            lo[i][idx] -= 1e-6
            num[idx] = (loss_of(*hi) - loss_of(*lo)) / 2e-6
        np.testing.assert_allclose(t.grad.detach().numpy(), num, atol=1e-7)
    # masked keys and values receive no gradient
    assert np.all(kt.grad.detach().numpy()[~keep] == 0) and np.all(vt.grad.detach().numpy()[~keep] == 0)
    # parameters: check v_a against finite differences
    va = att.v.weight
    analytic = va.grad.detach().numpy().copy()
    num = np.zeros_like(analytic)
    for idx in np.ndindex(analytic.shape):
        old = va.data.numpy()[idx]
        with fg.no_grad():
            va.data.numpy()[idx] = old + 1e-6
            up = loss_of(q, k, v)
            va.data.numpy()[idx] = old - 1e-6
            down = loss_of(q, k, v)
            va.data.numpy()[idx] = old
        num[idx] = (up - down) / 2e-6
    np.testing.assert_allclose(analytic, num, atol=1e-7)


@pytest.mark.parametrize("score", ["dot", "general"])
def test_dot_product_attention(score):
    rng = np.random.default_rng(4)
    q, k, v, keep = _inputs(rng, dk=4)
    att = fg.nn.DotProductAttention(4, 4, score=score, dtype=fg.float64)
    ctx, w = att(fg.tensor(q), fg.tensor(k), fg.tensor(v), mask=keep)
    kk = k if score == "dot" else k @ att.proj.weight.detach().numpy().T
    ref_w = _softmax_masked(np.einsum("bsd,bd->bs", kk, q), keep)
    np.testing.assert_allclose(w.detach().numpy(), ref_w, atol=1e-12)
    np.testing.assert_allclose(ctx.detach().numpy(), np.einsum("bs,bsd->bd", ref_w, v), atol=1e-12)


def test_attention_errors():
    att = fg.nn.AdditiveAttention(4, 6, 5)
    q, k = fg.randn(2, 4), fg.randn(2, 3, 6)
    with pytest.raises(ShapeError, match=r"query of shape \(batch, 4\)"):
        att(fg.randn(2, 5), k)
    with pytest.raises(ShapeError, match="keys of shape"):
        att(q, fg.randn(2, 3, 5))
    with pytest.raises(ShapeError, match="mask of shape"):
        att(q, k, mask=np.ones((2, 4), dtype=bool))
    with pytest.raises(ValueError, match="not both"):
        att(q, k, mask=np.ones((2, 3), bool), key_padding_mask=np.zeros((2, 3), bool))
    with pytest.raises(ShapeError, match="dot"):
        fg.nn.DotProductAttention(4, 6)


# --- models -------------------------------------------------------------------------------------

MODELS = [(AttentionSeq2Seq, "gru"), (AttentionSeq2Seq, "lstm"), (RNNEncoderDecoder, "gru"),
          (RNNEncoderDecoder, "lstm")]


def _reversal(n, rng, vocab=8):
    """Sources of 3-6 tokens from 3..vocab-1 (after the specials), targets reversed."""
    lengths = rng.integers(3, 7, size=n)
    src = np.zeros((n, lengths.max()), dtype=np.int64)
    targets = []
    for i, n_tok in enumerate(lengths):
        s = rng.integers(3, vocab, size=n_tok)
        src[i, :n_tok] = s
        targets.append(s[::-1].tolist())
    return src, lengths, targets


def _model(cls, cell, dtype=fg.float32, seed=0, **kw):
    fg.manual_seed(seed)
    args = dict(src_vocab_size=8, tgt_vocab_size=8, embed_dim=6, hidden_size=8, cell=cell)
    args.update(kw)
    return cls(**args).to(dtype)


@pytest.mark.parametrize("cls,cell", MODELS)
def test_shapes_and_protocol(cls, cell):
    model = _model(cls, cell, num_layers=2)
    src, lengths, targets = _reversal(4, np.random.default_rng(0))
    tgt_in, tgt_out = _pad_targets(targets, 1, 2)
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (4, tgt_in.shape[1], 8)
    state = model.start(src, lengths)
    log_probs, state, attn = model.step(state, fg.tensor(np.ones(4, dtype=np.int64)))
    assert log_probs.shape == (4, 8)
    np.testing.assert_allclose(np.exp(log_probs.detach().numpy()).sum(1), 1.0, atol=1e-5)
    if cls is AttentionSeq2Seq:
        assert attn.shape == (4, src.shape[1])
        assert np.all(attn.detach().numpy()[np.arange(src.shape[1])[None] >= lengths[:, None]] == 0)
    else:
        assert attn is None
    doubled = model.reorder_state(state, [0, 0, 3])
    assert doubled.hidden[0].shape == (3, 8)
    np.testing.assert_array_equal(doubled.hidden[1].detach().numpy()[1], state.hidden[1].detach().numpy()[0])
    loss = sequence_loss(logits, tgt_out)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("cls,cell", MODELS)
def test_teacher_forcing_equals_stepwise(cls, cell):
    model = _model(cls, cell, dtype=fg.float64).eval()
    src, lengths, targets = _reversal(3, np.random.default_rng(1))
    tgt_in, _ = _pad_targets(targets, 1, 2)
    logits = model(src, lengths, tgt_in).log_softmax(-1).detach().numpy()
    state = model.start(src, lengths)
    for t in range(tgt_in.shape[1]):
        lp, state, _ = model.step(state, tgt_in[:, t])
        np.testing.assert_allclose(lp.detach().numpy(), logits[:, t], atol=1e-12)


@pytest.mark.parametrize("cls,cell", MODELS)
def test_feed_own_reads_back_the_greedy_tokens(cls, cell):
    """Rows marked feed_own read their own argmax from step 2 on, as a step-by-step decode
    does; the other rows are teacher-forced; no row marked: the teacher-forced logits."""
    model = _model(cls, cell, dtype=fg.float64).eval()
    src, lengths, targets = _reversal(3, np.random.default_rng(2))
    tgt_in, tgt_out = _pad_targets(targets, 1, 2)
    own = np.array([True, False, True])
    mixed = model(src, lengths, tgt_in, feed_own=own).log_softmax(-1).detach().numpy()
    state = model.start(src, lengths)
    prev = tgt_in[:, 0]
    for t in range(tgt_in.shape[1]):
        lp, state, _ = model.step(state, prev)
        lp = lp.detach().numpy()
        np.testing.assert_allclose(lp, mixed[:, t], atol=1e-12)
        if t + 1 < tgt_in.shape[1]:
            prev = np.where(own, lp.argmax(-1), tgt_in[:, t + 1])
    forced = model(src, lengths, tgt_in).detach().numpy()
    none = model(src, lengths, tgt_in, feed_own=np.zeros(3, dtype=bool)).detach().numpy()
    np.testing.assert_array_equal(none, forced)
    model.train()
    loss = sequence_loss(model(src, lengths, tgt_in, feed_own=own), tgt_out)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match=r"feed_own must be a bool array of shape \(3,\)"):
        model(src, lengths, tgt_in, feed_own=np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match="feed_own must be a bool array"):
        model(src, lengths, tgt_in, feed_own=np.ones(3))


@pytest.mark.parametrize("cls,cell", MODELS + [(RNNEncoderDecoder, "rnn")])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_invariance(cls, cell, bidirectional):
    """An example alone and padded inside a batch of longer and shorter ones: same logits."""
    model = _model(cls, cell, dtype=fg.float64, bidirectional=bidirectional).eval()
    rng = np.random.default_rng(2)
    src, lengths, targets = _reversal(5, rng)
    lengths[0] = 3
    lengths[1] = src.shape[1]
    src[0, 3:] = 0
    tgt_in, _ = _pad_targets(targets, 1, 2)
    batch = model(src, lengths, tgt_in).detach().numpy()
    for i in range(5):
        n_src = lengths[i]
        n_tgt = len(targets[i]) + 1
        alone = model(src[i:i + 1, :n_src], lengths[i:i + 1], tgt_in[i:i + 1, :n_tgt]).detach().numpy()
        np.testing.assert_allclose(batch[i, :n_tgt], alone[0], atol=1e-12)
    # garbage in the padding changes nothing
    noisy = src.copy()
    noisy[0, 3:] = 5
    np.testing.assert_allclose(model(noisy, lengths, tgt_in).detach().numpy(), batch, atol=1e-12)


def test_config_object_and_defaults():
    cfg = Seq2SeqConfig(src_vocab_size=8, tgt_vocab_size=8, embed_dim=4, hidden_size=6)
    assert AttentionSeq2Seq(cfg).config.bidirectional is True
    assert RNNEncoderDecoder(cfg).config.bidirectional is False
    model = AttentionSeq2Seq(cfg, cell="lstm")
    assert model.config.cell == "lstm" and cfg.cell == "gru"
    with pytest.raises(ValueError, match="unknown cell"):
        AttentionSeq2Seq(cfg, cell="transformer")


def _train_reversal(cls, max_iters, eval_every=20, seed=2, lr=0.005, **kw):
    rng = np.random.default_rng(seed)
    model = _model(cls, "gru", seed=seed, embed_dim=16, hidden_size=32, **kw)
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    test_src, test_len, test_tgt = _reversal(200, np.random.default_rng(100))
    losses, acc = [], 0.0
    for it in range(1, max_iters + 1):
        src, lengths, targets = _reversal(32, rng)
        tgt_in, tgt_out = _pad_targets(targets, 1, 2)
        loss = sequence_loss(model(src, lengths, tgt_in), tgt_out)
        opt.zero_grad()
        loss.backward()
        fg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if it % eval_every == 0:
            pred = greedy_decode(model, test_src, test_len, 10)
            acc = fg.datasets.exact_match(pred, test_tgt)
            if acc == 1.0:
                break
    return model, losses, acc


def test_attention_learns_reversal():
    """RNNsearch learns to reverse unseen sequences of 3-6 tokens: 100% greedy exact match on
    200 held-out sequences (about 100 steps of 32 examples)."""
    model, losses, acc = _train_reversal(AttentionSeq2Seq, 300)
    assert np.mean(losses[:10]) > 5 * np.mean(losses[-10:])
    assert acc == 1.0
    src, lengths, targets = _reversal(6, np.random.default_rng(7))
    seqs, attn = greedy_decode(model, src, lengths, 10, return_attention=True)
    assert seqs == targets
    for a, n_src, t in zip(attn, lengths, targets):
        assert a.shape == (len(t), n_src)
        # reversal: output i attends most to source position n - 1 - i
        assert np.all(a.argmax(1) == np.arange(n_src)[::-1])
    beam = beam_search(model, src, lengths, beam_size=3, max_len=10)
    assert beam == targets


@pytest.fixture(scope="module")
def encdec_trained():
    """RNNencdec after 60 steps on the reversal task: it has learnt something, not all."""
    return _train_reversal(RNNEncoderDecoder, 60, eval_every=1000, lr=0.01)


def test_rnn_encdec_loss_decreases(encdec_trained):
    _, losses, _ = encdec_trained
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


@pytest.mark.parametrize("cls,cell", MODELS)
def test_beam_one_is_greedy(cls, cell):
    model = _model(cls, cell)
    src, lengths, _ = _reversal(6, np.random.default_rng(3))
    greedy = greedy_decode(model, src, lengths, 12)
    assert beam_search(model, src, lengths, beam_size=1, max_len=12) == greedy
    _, attn_g = greedy_decode(model, src, lengths, 12, return_attention=True)
    _, attn_b = beam_search(model, src, lengths, 1, 12, return_attention=True)
    for a, b in zip(attn_g, attn_b):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_beam_scores_at_least_greedy(encdec_trained):
    """On a half-trained model, beam search's sequences score at least as high as greedy's,
    and the score it reports is the model's log-probability of sequence + <eos>."""
    model = encdec_trained[0]
    src, lengths, _ = _reversal(16, np.random.default_rng(4))
    greedy = greedy_decode(model, src, lengths, 20)
    beam, scores = beam_search(model, src, lengths, 4, 20, return_scores=True)
    assert max(len(s) for s in greedy + beam) < 20  # all ended with <eos>
    g = sequence_log_prob(model, src, lengths, greedy)
    b = sequence_log_prob(model, src, lengths, beam)
    assert np.all(b >= g - 1e-5)
    np.testing.assert_allclose(scores, b, atol=1e-4)
    normed = beam_search(model, src, lengths, 4, 20, length_penalty=1.0)
    assert all(len(s) < 20 and 2 not in s for s in normed)


class _ToyModel(fg.nn.Module):
    """A protocol model with a fixed next-token table where greedy is not optimal: after <bos>,
    3 (0.6) or 4 (0.4); after 3, one of 5, 6, 7 (1/3 each); after 4, <eos> (0.9) or 5 (0.1);
    after 5, 6, 7, <eos>. Greedy: [3, 5] (p = 0.2); best: [4] (p = 0.36)."""

    TABLE = {1: {3: 0.6, 4: 0.4}, 3: {5: 1 / 3, 6: 1 / 3, 7: 1 / 3}, 4: {2: 0.9, 5: 0.1},
             5: {2: 1.0}, 6: {2: 1.0}, 7: {2: 1.0}}

    def start(self, src, src_lengths):
        return np.zeros(len(src_lengths))

    def step(self, state, prev):
        prev = np.asarray(prev.detach().numpy() if isinstance(prev, fg.Tensor) else prev)
        probs = np.full((prev.size, 8), 1e-12)
        for i, p in enumerate(prev.tolist()):
            for tok, pr in self.TABLE[p].items():
                probs[i, tok] = pr
        return fg.tensor(np.log(probs)), state, None

    def reorder_state(self, state, index):
        return state[np.asarray(index)]


def test_beam_search_beats_greedy_on_any_protocol_model():
    model = _ToyModel()
    src, lengths = np.ones((2, 1), dtype=np.int64), [1, 1]
    assert greedy_decode(model, src, lengths, 5) == [[3, 5], [3, 5]]
    assert beam_search(model, src, lengths, 1, 5) == [[3, 5], [3, 5]]
    seqs, scores = beam_search(model, src, lengths, 2, 5, return_scores=True)
    assert seqs == [[4], [4]]
    np.testing.assert_allclose(scores, np.log(0.36))
    # length normalisation: log(0.36)/2 = -0.51 still beats log(0.2)/3 = -0.54
    assert beam_search(model, src, lengths, 2, 5, length_penalty=1.0) == [[4], [4]]


def test_decoding_restores_training_mode():
    model = _model(AttentionSeq2Seq, "gru", dropout=0.3)
    src, lengths, _ = _reversal(3, np.random.default_rng(5))
    a = greedy_decode(model, src, lengths, 8)
    assert model.training
    assert greedy_decode(model, src, lengths, 8) == a  # no dropout while decoding


def test_attention_heatmap(tmp_path):
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=3)
    path = save_attention_heatmap(weights, ["jump", "twice", "and", "walk"],
                                  ["I_JUMP", "I_JUMP", "I_WALK"], tmp_path / "attn.png",
                                  title="attention")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="do not match"):
        save_attention_heatmap(weights, ["a"], ["b"], tmp_path / "bad.png")


@pytest.mark.parametrize("cls,cell", [(AttentionSeq2Seq, "lstm"), (RNNEncoderDecoder, "gru")])
def test_state_dict_round_trip(cls, cell, tmp_path):
    model = _model(cls, cell, seed=1, bidirectional=True)
    other = _model(cls, cell, seed=2, bidirectional=True)
    src, lengths, targets = _reversal(3, np.random.default_rng(6))
    tgt_in, _ = _pad_targets(targets, 1, 2)
    assert not np.allclose(model(src, lengths, tgt_in).detach().numpy(),
                           other(src, lengths, tgt_in).detach().numpy())
    fg.save(model.state_dict(), tmp_path / "m.safetensors")
    other.load_state_dict(fg.load(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(model(src, lengths, tgt_in).detach().numpy(),
                                  other(src, lengths, tgt_in).detach().numpy())
    keys = list(model.state_dict())
    assert "encoder.rnn.weight_ih_l0_reverse" in keys and "out.weight" in keys
    if cls is AttentionSeq2Seq:
        assert {"attention.query_proj.weight", "attention.key_proj.weight",
                "attention.v.weight"} <= set(keys)


# --- against PyTorch ----------------------------------------------------------------------------

def _torch_rnnsearch(model, src, lengths, tgt_in, torch):
    """The same RNNsearch written with torch.nn pieces, weights copied from ``model``."""
    c = model.config
    sd = {k: torch.tensor(v.detach().numpy(), requires_grad=True)
          for k, v in model.state_dict().items()}
    rnn = getattr(torch.nn, c.cell.upper())(c.embed_dim, c.hidden_size, batch_first=True,
                                            bidirectional=True).to(sd["out.weight"].dtype)
    rnn.load_state_dict({k: sd["encoder.rnn." + k].detach() for k in rnn.state_dict()})
    sd.update({"encoder.rnn." + k: v for k, v in rnn.named_parameters()})
    cell = getattr(torch.nn, c.cell.upper() + "Cell")(c.embed_dim + 2 * c.hidden_size,
                                                      c.hidden_size).to(sd["out.weight"].dtype)
    cell.load_state_dict({k: sd["cells.0." + k].detach() for k in cell.state_dict()})
    sd.update({"cells.0." + k: v for k, v in cell.named_parameters()})
    lin = torch.nn.functional.linear
    src_t = torch.tensor(src)
    emb = sd["encoder.embedding.weight"][src_t]
    packed = torch.nn.utils.rnn.pack_padded_sequence(emb, torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    out, final = rnn(packed)
    memory, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                       total_length=src.shape[1])
    h_n, c_n = final if c.cell == "lstm" else (final, None)
    h = torch.tanh(lin(h_n[1], sd["bridge.weight"], sd["bridge.bias"]))
    cs = None if c_n is None else lin(c_n[1], sd["cell_bridge.weight"], sd["cell_bridge.bias"])
    keys = lin(memory, sd["attention.key_proj.weight"])
    keep = torch.arange(src.shape[1])[None] < torch.tensor(lengths)[:, None]
    logits = []
    for t in range(tgt_in.shape[1]):
        e = sd["embedding.weight"][torch.tensor(tgt_in[:, t])]
        q = lin(h, sd["attention.query_proj.weight"])
        score = lin(torch.tanh(keys + q[:, None]), sd["attention.v.weight"])[..., 0]
        w = torch.softmax(score.masked_fill(~keep, float("-inf")), -1)
        ctx = (w[:, :, None] * memory).sum(1)
        x = torch.cat([e, ctx], 1)
        if cs is None:
            h = cell(x, h)
        else:
            h, cs = cell(x, (h, cs))
        r = lin(torch.cat([h, ctx, e], 1), sd["readout.weight"], sd["readout.bias"])
        r = r.reshape(r.shape[0], -1, 2).amax(-1)
        logits.append(lin(r, sd["out.weight"], sd["out.bias"]))
    return torch.stack(logits, 1), sd


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_rnnsearch_matches_torch(cell):
    torch = pytest.importorskip("torch")
    model = _model(AttentionSeq2Seq, cell, dtype=fg.float64, seed=3)
    src, lengths, targets = _reversal(4, np.random.default_rng(8))
    tgt_in, tgt_out = _pad_targets(targets, 1, 2)
    logits = model(src, lengths, tgt_in)
    loss = sequence_loss(logits, tgt_out)
    loss.backward()
    ref, sd = _torch_rnnsearch(model, src, lengths, tgt_in, torch)
    ref_loss = torch.nn.functional.cross_entropy(ref.reshape(-1, 8),
                                                 torch.tensor(tgt_out).reshape(-1),
                                                 ignore_index=0)
    ref_loss.backward()
    np.testing.assert_allclose(logits.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(loss.item(), ref_loss.item(), atol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), sd[name].grad.numpy(), atol=1e-10,
                                   err_msg=name)

"""The transformer models built on nn.Transformer*: the GPT-style causal language model
(flowgrad.models.gpt) and the transformer encoder-decoder (flowgrad.models.transformer_seq2seq):
causality, padding invariance, incremental decoding equal to teacher forcing, state_dict round
trips, bad input, and that each learns a tiny task."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.models.gpt import TransformerLanguageModel
from flowgrad.models.seq2seq import beam_search, greedy_decode, sequence_loss
from flowgrad.models.transformer_seq2seq import TransformerSeq2Seq


@pytest.fixture(autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _lm(**kw):
    cfg = dict(vocab_size=12, block_size=16, d_model=32, nhead=4, num_layers=2,
               dim_feedforward=64, dropout=0.0)
    cfg.update(kw)
    return TransformerLanguageModel(**cfg)


def test_lm_is_causal_and_shaped():
    model = _lm().eval()
    x = np.random.default_rng(0).integers(0, 12, (3, 10))
    a = model(fg.tensor(x)).detach().numpy()
    assert a.shape == (3, 10, 12)
    y = x.copy()
    y[:, 6:] = (y[:, 6:] + 1) % 12  # change the future: positions < 6 must not move
    b = model(fg.tensor(y)).detach().numpy()
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-5)
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 1e-4


def test_lm_ties_weights_and_round_trips(tmp_path):
    model = _lm()
    assert model.head.weight is model.tok_emb.weight
    assert _lm(tie_weights=False).head.weight is not _lm(tie_weights=False).tok_emb.weight
    keys = set(model.state_dict())
    assert {"tok_emb.weight", "pos_emb.weight", "norm.weight",
            "layers.1.self_attn.in_proj_weight", "layers.0.linear2.weight"} <= keys
    fg.save(model.state_dict(), tmp_path / "lm.safetensors")
    other = _lm()
    other.load_state_dict(fg.load(tmp_path / "lm.safetensors"))
    x = fg.tensor(np.arange(10).reshape(1, 10) % 12)
    np.testing.assert_array_equal(model.eval()(x).detach().numpy(),
                                  other.eval()(x).detach().numpy())


def test_lm_bad_input():
    model = _lm()
    with pytest.raises(ValueError, match="longer than block_size 16"):
        model(fg.zeros(1, 17, dtype=fg.int64))
    with pytest.raises(ValueError, match=r"expected token ids of shape \(batch, time\)"):
        model(fg.zeros(17, dtype=fg.int64))
    with pytest.raises(ValueError, match="not divisible by nhead"):
        _lm(d_model=30)


def test_lm_token_log_prob_is_the_logits_log_softmax():
    model = _lm().eval()
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 12, (2, 9)), rng.integers(0, 12, (2, 9))
    logp = model(fg.tensor(x)).log_softmax(-1).detach().numpy()
    want = np.take_along_axis(logp, y[..., None], -1)[..., 0]
    got = model.token_log_prob(fg.tensor(x), fg.tensor(y)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    loss = model.next_token_loss(fg.tensor(x), fg.tensor(y)).item()
    np.testing.assert_allclose(loss, -want.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match=r"targets of shape \(2, 8\)"):
        model.token_log_prob(fg.tensor(x), fg.tensor(y[:, :8]))


def test_lm_adaptive_softmax_is_normalised_and_consistent():
    model = _lm(vocab_size=40, softmax="adaptive", cutoffs=(8, 20), tie_weights=False).eval()
    assert isinstance(model.head, fg.nn.AdaptiveLogSoftmaxWithLoss)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 40, (3, 7)), rng.integers(0, 40, (3, 7))
    logp = model(fg.tensor(x)).detach().numpy()  # (B, T, V) normalised log-probabilities
    assert logp.shape == (3, 7, 40)
    np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, rtol=1e-5)
    want = np.take_along_axis(logp, y[..., None], -1)[..., 0]
    got = model.token_log_prob(fg.tensor(x), fg.tensor(y)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.next_token_loss(fg.tensor(x), fg.tensor(y)).item(),
                               -want.mean(), rtol=1e-5)
    assert "head.tail.0.0.weight" in model.state_dict()


def _fit(model, seq, steps: int) -> float:
    """Adam (3e-3) on the next-token loss of ``seq``; the last loss."""
    opt = fg.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model.loss(seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_lm_adaptive_softmax_learns_a_cycle():
    fg.manual_seed(0)
    model = _lm(vocab_size=30, softmax="adaptive", cutoffs=(4, 10), div_value=2.0,
                tie_weights=False)
    seq = fg.tensor(np.tile(np.arange(16) * 5 % 23, (8, 1)))  # words in every cluster
    assert _fit(model, seq, 150) < 0.1
    assert model.generate([0, 5], 6).tolist() == [i * 5 % 23 for i in range(8)]


def test_lm_adaptive_softmax_bad_input():
    with pytest.raises(ValueError, match="tie_weights=True needs the full softmax"):
        _lm(vocab_size=40, softmax="adaptive", cutoffs=(8, 20))
    with pytest.raises(ValueError, match="softmax must be 'full' or 'adaptive', got 'sparse'"):
        _lm(softmax="sparse")


def test_lm_learns_a_cycle_and_generates_it():
    fg.manual_seed(0)
    model = _lm()
    assert _fit(model, fg.tensor(np.tile(np.arange(16) % 7, (8, 1))), 80) < 0.1
    out = model.generate([0, 1, 2], 20)  # longer than block_size: the window slides
    assert out.shape == (23,)
    assert out.tolist() == [i % 7 for i in range(23)]
    sampled = model.generate(fg.tensor([[3, 4], [5, 6]]), 4, strategy="sample", top_k=2,
                             seed=1)
    assert sampled.shape == (2, 6) and sampled[:, :2].tolist() == [[3, 4], [5, 6]]


def _reversal(rng, n, lo=3, hi=6, vocab=10):
    lengths = rng.integers(lo, hi + 1, n)
    s = lengths.max()
    src = np.zeros((n, s), np.int64)
    tgt_in = np.zeros((n, s + 1), np.int64)
    tgt_out = np.zeros((n, s + 1), np.int64)
    for i, k in enumerate(lengths):
        words = rng.integers(3, vocab, k)
        src[i, :k] = words
        tgt_in[i, 0], tgt_in[i, 1:k + 1] = 1, words[::-1]
        tgt_out[i, :k], tgt_out[i, k] = words[::-1], 2
    return src, lengths, tgt_in, tgt_out


def _s2s(**kw):
    cfg = dict(src_vocab=10, tgt_vocab=10, d_model=32, nhead=4, num_encoder_layers=1,
               num_decoder_layers=1, dim_feedforward=64, dropout=0.0)
    cfg.update(kw)
    return TransformerSeq2Seq(**cfg)


def test_seq2seq_padding_invariance_and_incremental_decoding():
    fg.manual_seed(0)
    model = _s2s().eval()
    src, lengths, tgt_in, _ = _reversal(np.random.default_rng(1), 5)
    full = model(fg.tensor(src), lengths, fg.tensor(tgt_in)).detach().numpy()
    for i in range(5):  # alone, unpadded, with junk past the length: the same logits
        k = lengths[i]
        alone = model(fg.tensor(src[i:i + 1, :k]), lengths[i:i + 1],
                      fg.tensor(tgt_in[i:i + 1, :k + 1])).detach().numpy()
        np.testing.assert_allclose(alone[0], full[i, :k + 1], atol=1e-5)
    junk = src.copy()
    junk[junk == 0] = 7
    np.testing.assert_allclose(model(fg.tensor(junk), lengths, fg.tensor(tgt_in))
                               .detach().numpy()[tgt_in != 0], full[tgt_in != 0], atol=1e-5)
    # step by step, feeding the teacher's tokens, gives forward's log-probabilities
    state = model.start(fg.tensor(src), lengths)
    for t in range(tgt_in.shape[1]):
        logp, state, attn = model.step(state, fg.tensor(tgt_in[:, t]))
        assert attn is None
        ref = full[:, t] - np.log(np.exp(full[:, t]).sum(-1, keepdims=True))
        np.testing.assert_allclose(logp.detach().numpy(), ref, atol=1e-5)
    picked = model.reorder_state(state, [4, 4, 0])
    assert tuple(picked["memory"].shape[:1]) == (3,) and picked["prefix"].shape[0] == 3


def test_seq2seq_learns_reversal_greedy_and_beam():
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _s2s(d_model=64, dim_feedforward=128)
    opt = fg.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(250):
        src, lengths, tgt_in, tgt_out = _reversal(rng, 64)
        loss = sequence_loss(model(fg.tensor(src), lengths, fg.tensor(tgt_in)), tgt_out)
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, lengths, _, _ = _reversal(np.random.default_rng(99), 40)
    truth = [src[i, :k][::-1].tolist() for i, k in enumerate(lengths)]
    greedy = greedy_decode(model, fg.tensor(src), lengths, 10)
    beam = beam_search(model, fg.tensor(src), lengths, 3, 10)
    assert np.mean([p == t for p, t in zip(greedy, truth)]) >= 0.9
    assert np.mean([p == t for p, t in zip(beam, truth)]) >= 0.9


def test_seq2seq_bad_input():
    model = _s2s()
    with pytest.raises(ValueError, match="3 src_lengths for a batch of 2"):
        model(fg.zeros(2, 4, dtype=fg.int64), [1, 2, 3], fg.ones(2, 3, dtype=fg.int64))
    with pytest.raises(ValueError, match=r"expected src of shape \(batch, time\)"):
        model(fg.zeros(4, dtype=fg.int64), [4], fg.ones(2, 3, dtype=fg.int64))


@pytest.mark.parametrize("norm_first", [False, True])
def test_seq2seq_cached_steps_equal_forward_with_two_layers(norm_first):
    fg.manual_seed(3)
    model = _s2s(num_encoder_layers=2, num_decoder_layers=2).eval()
    for layer in [*model.transformer.encoder.layers, *model.transformer.decoder.layers]:
        layer.norm_first = norm_first
    src, lengths, tgt_in, _ = _reversal(np.random.default_rng(2), 4)
    full = model(fg.tensor(src), lengths, fg.tensor(tgt_in)).log_softmax(-1).detach().numpy()
    state = model.start(fg.tensor(src), lengths)
    for t in range(tgt_in.shape[1]):
        logp, state, _ = model.step(state, fg.tensor(tgt_in[:, t]))
        np.testing.assert_allclose(logp.detach().numpy(), full[:, t], atol=1e-5)
    assert len(state["cache"]) == 2 and state["cache"][0].shape[1] == tgt_in.shape[1]
    picked = model.reorder_state(state, [1, 1])
    assert picked["cache"][1].shape[0] == 2


def test_seq2seq_step_past_max_len_is_a_clear_error():
    model = _s2s(max_len=2).eval()
    state = model.start(fg.tensor(np.array([[3, 4]])), [2])
    for _ in range(2):
        _, state, _ = model.step(state, fg.tensor(np.array([1])))
    with pytest.raises(ValueError, match="max_len=2"):
        model.step(state, fg.tensor(np.array([1])))

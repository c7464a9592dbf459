"""Sequence models (lecture: "Recurrent Neural Networks", "Generative RNNs", "Conditional
Distributions", "Maximum Likelihood = Teacher Forcing", "Multiscale or Hierarchical RNNs"):
shapes per pattern and cell, small synthetic tasks learned, the language model against a
PyTorch word_language_model re-implementation, generation, scheduled sampling, the compounding
error of free running, multiple time scales, state_dict round trips, the recipe's quick run."""

import math

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.models.sequence import (
    ConditionalGenerator,
    MultiTimescaleRNN,
    RNNLanguageModel,
    SamplingSchedule,
    SequenceClassifier,
    SequenceTagger,
    compounding_error,
    repackage_hidden,
    sample_logits,
    scheduled_sampling_loss,
    teacher_forcing_loss,
)
from flowgrad.nn import functional as F

torch.set_num_threads(1)
CELLS = ("rnn", "lstm", "gru")
TEXT = "the cat sat on the mat. the dog ate the hat."


def _train(model, batch, loss_fn, steps, lr=0.01):
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    for i in range(steps):
        loss = loss_fn(model, *batch(i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def _text_ids():
    chars = sorted(set(TEXT))
    return chars, np.array([chars.index(ch) for ch in TEXT], dtype=np.int64)


# --- shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_shapes_of_every_pattern(cell):
    fg.manual_seed(0)
    x = fg.randn(5, 7, 3)
    for pooling in ("last", "mean"):
        m = SequenceClassifier(input_size=3, hidden_size=8, num_classes=4, cell=cell,
                               pooling=pooling, num_layers=2)
        assert m(x).shape == (5, 4) and m(x, [7, 3, 1, 2, 5]).shape == (5, 4)
    m = SequenceClassifier(input_size=6, hidden_size=8, num_classes=4, cell=cell, vocab_size=10)
    assert m(fg.randint(0, 10, (5, 7))).shape == (5, 4)
    for bidirectional in (False, True):
        t = SequenceTagger(input_size=3, hidden_size=8, num_tags=4, cell=cell,
                           bidirectional=bidirectional)
        assert t(x).shape == (5, 7, 4)
    g = ConditionalGenerator(condition_size=3, vocab_size=6, hidden_size=8, cell=cell,
                             num_layers=2)
    logits, hidden = g(fg.randn(5, 3), fg.randint(0, 6, (5, 4)))
    assert logits.shape == (5, 4, 6)
    assert (hidden[0] if cell == "lstm" else hidden).shape == (2, 5, 8)
    assert g.generate(fg.randn(5, 3), 9).shape == (5, 9)
    lm = RNNLanguageModel(vocab_size=11, embedding_dim=8, hidden_size=12, num_layers=2,
                          cell=cell)
    logits, hidden = lm(fg.randint(0, 11, (5, 4)))
    assert logits.shape == (5, 4, 11)
    h0 = lm.init_hidden(5)
    assert (h0[0] if cell == "lstm" else h0).shape == (2, 5, 12)
    assert lm.generate([1, 2], 6).shape == (8,)
    assert lm.generate(fg.randint(0, 11, (3, 2)), 6, strategy="sample", seed=0).shape == (3, 8)
    mt = MultiTimescaleRNN(input_size=3, hidden_sizes=(4, 5, 6), periods=(1, 2, 4),
                           output_size=2, cell=cell)
    out, hidden = mt(x)
    assert out.shape == (5, 7, 2) and len(hidden) == 3


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown cell"):
        SequenceTagger(cell="transformer")
    with pytest.raises(ValueError, match="tied flag"):
        RNNLanguageModel(vocab_size=5, embedding_dim=4, hidden_size=6, tie_weights=True)
    m = SequenceClassifier(input_size=1, hidden_size=4)
    with pytest.raises(ValueError, match="lengths must be in 1..5"):
        m(fg.randn(2, 5, 1), [6, 2])
    with pytest.raises(ValueError, match="periods"):
        MultiTimescaleRNN(hidden_sizes=(4, 4), periods=(1, 0))
    with pytest.raises(ValueError, match="inverse sigmoid"):
        SamplingSchedule("inverse_sigmoid", k=0.5)


# --- sequence -> vector ---------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_lengths_make_padding_irrelevant(pooling):
    """With lengths, each padded row gives exactly what the unpadded sequence gives alone."""
    fg.manual_seed(1)
    m = SequenceClassifier(input_size=2, hidden_size=6, num_classes=3, cell="lstm",
                           pooling=pooling)
    x = fg.randn(3, 6, 2)
    lengths = [6, 2, 4]
    out = m(x, lengths).detach().numpy()
    for i, n in enumerate(lengths):
        alone = m(x[i:i + 1, :n]).detach().numpy()[0]
        np.testing.assert_allclose(out[i], alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[1], m(x[1:2]).detach().numpy()[0])  # the padding would change it


def test_classifier_learns_sum_sign_of_variable_length_sequences():
    """Sign of the sum of the first L of 10 steps; the padding (+3) would flip many labels."""
    rng = np.random.default_rng(0)

    def batch(n):
        x = rng.normal(size=(n, 10, 1)).astype(np.float32)
        lengths = rng.integers(3, 11, n)
        for i, length in enumerate(lengths):
            x[i, length:] = 3.0
        y = np.array([x[i, :k].sum() > 0 for i, k in enumerate(lengths)], dtype=np.int64)
        return fg.from_numpy(x), fg.tensor(lengths), fg.from_numpy(y)

    fg.manual_seed(0)
    m = SequenceClassifier(input_size=1, hidden_size=24, num_classes=2, cell="gru")
    _train(m, lambda i: batch(64), lambda m, x, k, y: F.cross_entropy(m(x, k), y), 150)
    x, k, y = batch(1000)
    accuracy = (m(x, k).argmax(-1).detach().numpy() == y.detach().numpy()).mean()
    assert accuracy > 0.93, accuracy


# --- aligned sequence -> sequence -----------------------------------------------------------------

def test_tagger_learns_a_delayed_copy():
    """y_t = x_{t-2} over 4 symbols (a fifth tag for the first two steps): >= 97% per step."""
    rng = np.random.default_rng(0)

    def batch(n, steps=12):
        x = rng.integers(0, 4, (n, steps))
        y = np.full((n, steps), 4)
        y[:, 2:] = x[:, :-2]
        return fg.from_numpy(x), fg.from_numpy(y)

    fg.manual_seed(0)
    m = SequenceTagger(input_size=8, hidden_size=32, num_tags=5, cell="lstm", vocab_size=4)
    _train(m, lambda i: batch(64),
           lambda m, x, y: F.cross_entropy(m(x).reshape(-1, 5), y.reshape(-1)), 130)
    x, y = batch(500)
    accuracy = (m(x).argmax(-1).detach().numpy() == y.detach().numpy()).mean()
    assert accuracy > 0.97, accuracy


# --- vector -> sequence ---------------------------------------------------------------------------

@pytest.mark.parametrize("condition", ["init", "input", "both"])
def test_conditional_generator_decodes_each_class_into_its_sequence(condition):
    classes, length, vocab = 5, 6, 8
    codes = np.random.default_rng(1).integers(1, vocab, (classes, length))
    rng = np.random.default_rng(0)

    def batch(n):
        c = rng.integers(0, classes, n)
        target = codes[c]
        inputs = np.concatenate([np.zeros((n, 1), np.int64), target[:, :-1]], 1)  # bos = 0
        return (fg.from_numpy(np.eye(classes, dtype=np.float32)[c]), fg.from_numpy(inputs),
                fg.from_numpy(target))

    fg.manual_seed(0)
    g = ConditionalGenerator(condition_size=classes, vocab_size=vocab, hidden_size=32,
                             embedding_dim=8, cell="gru", condition=condition)
    _train(g, lambda i: batch(32), lambda m, c, x, t: F.cross_entropy(
        m(c, x)[0].reshape(-1, vocab), t.reshape(-1)), 150)
    out = g.generate(fg.from_numpy(np.eye(classes, dtype=np.float32)), length).detach().numpy()
    np.testing.assert_array_equal(out, codes)


# --- the language model ---------------------------------------------------------------------------

class TorchRNNModel(torch.nn.Module):
    """PyTorch's word_language_model RNNModel (batch first, no dropout)."""

    def __init__(self, cell, ntoken, ninp, nhid, nlayers, tie):
        super().__init__()
        self.encoder = torch.nn.Embedding(ntoken, ninp)
        kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.rnn = kind(ninp, nhid, nlayers, batch_first=True)
        self.decoder = torch.nn.Linear(nhid, ntoken)
        if tie:
            self.decoder.weight = self.encoder.weight

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(out), hidden


@pytest.mark.parametrize("cell,tie,dtype", [("lstm", True, "float32"), ("gru", False, "float64"),
                                            ("rnn", True, "float64")])
def test_language_model_matches_pytorch_forward_and_every_gradient(cell, tie, dtype):
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=13, embedding_dim=10, hidden_size=10, num_layers=2,
                          cell=cell, tie_weights=tie)
    ref = TorchRNNModel(cell, 13, 10, 10, 2, tie)
    if dtype == "float64":
        lm, ref = lm.double(), ref.double()
    ref.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                         for k, v in lm.state_dict().items()})
    tokens = np.random.default_rng(0).integers(0, 13, (4, 9))
    loss, _ = teacher_forcing_loss(lm, fg.from_numpy(tokens))
    loss.backward()
    t = torch.from_numpy(tokens)
    logits, _ = ref(t[:, :-1])
    ref_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 13), t[:, 1:].reshape(-1))
    ref_loss.backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(loss.item(), ref_loss.item(), **tol)
    ref_params = dict(ref.named_parameters())
    names = [n for n, _ in lm.named_parameters()]
    assert names == list(ref_params)
    for name, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.detach().numpy(), ref_params[name].grad.detach().numpy(), **tol,
                                   err_msg=name)
    if tie:
        assert lm.decoder.weight is lm.encoder.weight


def test_carried_detached_state_equals_one_long_pass():
    """Truncated BPTT: windows with the repackaged state give the logits of one long pass,
    and the backward of a window stops at its first step."""
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=9, embedding_dim=6, hidden_size=7, num_layers=2,
                          cell="lstm")
    x = fg.randint(0, 9, (3, 10))
    whole, _ = lm(x)
    first, hidden = lm(x[:, :6], lm.init_hidden(3))
    hidden = repackage_hidden(hidden)
    assert all(not h.requires_grad for h in hidden)
    second, _ = lm(x[:, 6:], hidden)
    np.testing.assert_allclose(fg.cat([first, second], dim=1).detach().numpy(), whole.detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_language_model_overfits_a_tiny_text_and_greedy_generation_reproduces_it():
    chars, ids = _text_ids()
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=len(chars), embedding_dim=32, hidden_size=64,
                          num_layers=1, cell="lstm")
    tokens = fg.from_numpy(ids[None])
    loss = _train(lm, lambda i: (tokens,), lambda m, x: teacher_forcing_loss(m, x)[0], 150,
                  lr=0.02)
    assert loss < 0.01, loss
    text = lm.generate(tokens[0, :1], len(ids) - 1).detach().numpy()
    assert "".join(chars[i] for i in text) == TEXT


def test_sampling_limits_and_reproducibility():
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=11, embedding_dim=8, hidden_size=8, num_layers=1)
    with fg.no_grad():
        lm.decoder.weight.mul_(30.0)  # a peaked but not degenerate distribution
    prefix = fg.randint(0, 11, (4, 3))
    greedy = lm.generate(prefix, 20).detach().numpy()
    cold = lm.generate(prefix, 20, strategy="sample", temperature=1e-4, seed=5).detach().numpy()
    top1 = lm.generate(prefix, 20, strategy="sample", top_k=1, seed=5).detach().numpy()
    np.testing.assert_array_equal(cold, greedy)
    np.testing.assert_array_equal(top1, greedy)
    a = lm.generate(prefix, 20, strategy="sample", seed=7).detach().numpy()
    b = lm.generate(prefix, 20, strategy="sample", generator=fg.Generator().manual_seed(7))
    np.testing.assert_array_equal(a, b.detach().numpy())
    c = lm.generate(prefix, 20, strategy="sample", seed=8).detach().numpy()
    assert (a != c).any() and (a != greedy).any()
    np.testing.assert_array_equal(a[:, :3], prefix.detach().numpy())


def test_top_k_sampling_draws_only_the_k_largest_with_renormalised_probabilities():
    logits = fg.tensor([[0.0, 2.0, 1.0, -1.0, 1.5]]).expand(20000, 5)
    draws = sample_logits(logits, "sample", top_k=3, generator=fg.Generator().manual_seed(0))
    counts = np.bincount(draws.detach().numpy(), minlength=5) / 20000
    p = np.exp([2.0, 1.0, 1.5]) / np.exp([2.0, 1.0, 1.5]).sum()
    assert counts[0] == 0 and counts[3] == 0
    np.testing.assert_allclose(counts[[1, 2, 4]], p, atol=0.015)
    warm = sample_logits(logits, "sample", temperature=2.0, generator=fg.Generator().manual_seed(0))
    q = np.exp(np.array([0.0, 2.0, 1.0, -1.0, 1.5]) / 2)
    np.testing.assert_allclose(np.bincount(warm.detach().numpy(), minlength=5) / 20000, q / q.sum(),
                               atol=0.015)


# --- scheduled sampling ---------------------------------------------------------------------------

def test_sampling_schedules_follow_the_papers_formulas():
    linear = SamplingSchedule("linear", k=1.0, c=0.1, eps_min=0.2)
    assert [linear(i) for i in (0, 5, 8, 100)] == pytest.approx([1.0, 0.5, 0.2, 0.2])
    exponential = SamplingSchedule("exponential", k=0.9)
    assert exponential(0) == 1.0 and exponential(3) == pytest.approx(0.729)
    sigmoid = SamplingSchedule("inverse_sigmoid", k=10)
    assert sigmoid(0) == pytest.approx(10 / 11)
    assert sigmoid(10 * math.log(10)) == pytest.approx(0.5)
    assert sigmoid(10_000) == pytest.approx(0.0, abs=1e-12)
    values = [sigmoid(i) for i in range(200)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert sigmoid.eps == sigmoid(0)
    for _ in range(7):
        sigmoid.step()
    assert sigmoid.eps == pytest.approx(sigmoid(7))
    again = SamplingSchedule("linear")
    again.load_state_dict(sigmoid.state_dict())
    assert again.kind == "inverse_sigmoid" and again.eps == sigmoid.eps


@pytest.mark.parametrize("cell", CELLS)
def test_scheduled_sampling_with_eps_1_is_teacher_forcing(cell):
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=9, embedding_dim=6, hidden_size=7, num_layers=2, cell=cell)
    x = fg.randint(0, 9, (4, 8))
    tf, _ = teacher_forcing_loss(lm, x)
    tf.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in lm.named_parameters()}
    lm.zero_grad()
    ss, _ = scheduled_sampling_loss(lm, x, 1.0, generator=fg.Generator().manual_seed(0))
    ss.backward()
    np.testing.assert_allclose(ss.item(), tf.item(), rtol=1e-6)
    for n, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.detach().numpy(), grads[n], rtol=1e-4, atol=1e-6, err_msg=n)


def test_scheduled_sampling_with_eps_0_feeds_the_models_own_tokens():
    """eps = 0 with greedy feeding is teacher forcing on the greedy continuation of x_1."""
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=9, embedding_dim=6, hidden_size=7, num_layers=1)
    x = fg.randint(0, 9, (4, 8))
    ss, _ = scheduled_sampling_loss(lm, x, 0.0, feed="greedy")
    fed = lm.generate(x[:, :1], 6)
    logits, _ = lm(fed)
    own = F.cross_entropy(logits.reshape(-1, 9), x[:, 1:].reshape(-1))
    np.testing.assert_allclose(ss.item(), own.item(), rtol=1e-5)
    tf, _ = teacher_forcing_loss(lm, x)
    assert abs(ss.item() - tf.item()) > 1e-4
    half = [scheduled_sampling_loss(lm, x, 0.5, generator=fg.Generator().manual_seed(s))[0]
            .item() for s in (3, 3, 4)]
    assert half[0] == half[1] and half[0] != half[2]


def _markov_data(n, steps, seed, vocab=6):
    """Sequences from a fixed sparse order-1 Markov chain (two likely successors per token)."""
    rng = np.random.default_rng(123)
    table = np.full((vocab, vocab), 0.02)
    for a in range(vocab):
        table[a, rng.choice(vocab, 2, replace=False)] = [0.7, 0.3]
    table /= table.sum(1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, steps), dtype=np.int64)
    x[:, 0] = rng.integers(0, vocab, n)
    for t in range(1, steps):
        u = rng.random(n)[:, None]
        x[:, t] = (u > np.cumsum(table[x[:, t - 1]], 1)).sum(1)
    return x


def test_compounding_error_is_larger_free_running_than_teacher_forced():
    fg.manual_seed(0)
    lm = RNNLanguageModel(vocab_size=6, embedding_dim=8, hidden_size=16, num_layers=1,
                          cell="gru")
    train = fg.from_numpy(_markov_data(64, 16, seed=0))
    _train(lm, lambda i: (train,), lambda m, x: teacher_forcing_loss(m, x)[0], 40, lr=0.02)
    r = compounding_error(lm, _markov_data(200, 16, seed=1), prefix=4)
    assert r["step"].tolist() == list(range(1, 13)) and r["n"] == 200
    assert r["free_nll"][0] == pytest.approx(r["teacher_nll"][0], rel=1e-6)
    assert r["free_error"][0] == r["teacher_error"][0]
    assert r["free_nll"][2:].mean() > r["teacher_nll"][2:].mean() + 0.3, r
    assert r["free_error"][2:].mean() > r["teacher_error"][2:].mean() + 0.05, r


# --- multiple time scales -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_slow_layers_hold_their_state_between_updates(cell):
    fg.manual_seed(0)
    mt = MultiTimescaleRNN(input_size=2, hidden_sizes=(5, 4, 3), periods=(1, 3, 6), cell=cell)
    history, _ = mt.states(fg.randn(2, 18, 2))
    for k, period in enumerate((1, 3, 6)):
        h = history[k].detach().numpy()
        changes = [t for t in range(1, 18) if not np.array_equal(h[:, t], h[:, t - 1])]
        assert changes == [t for t in range(1, 18) if (t + 1) % period == 0], (k, changes)


def test_gradient_crosses_the_held_steps_of_a_slow_layer():
    """d output_T / d x_1 through a contracting tanh net: the slow path (periods 1, 8) keeps
    orders of magnitude more gradient than the same weights updated every step."""
    norms = {}
    for periods in ((1, 1), (1, 8)):
        fg.manual_seed(0)
        mt = MultiTimescaleRNN(input_size=1, hidden_sizes=(8, 8), periods=periods, cell="rnn")
        with fg.no_grad():
            for cell in mt.cells:
                cell.weight_hh.mul_(0.3)
                cell.weight_ih.mul_(0.5)
        x = fg.randn(1, 64, 1, requires_grad=True)
        out, _ = mt(x)
        out[0, -1].sum().backward()
        norms[periods] = float(np.abs(x.grad.detach().numpy()[0, 0]).sum())
    assert norms[(1, 8)] > 0
    assert norms[(1, 8)] > 1e6 * norms[(1, 1)], norms


def test_multitimescale_learns_to_recall_the_first_input_over_a_long_span():
    """Output at the last of 24 steps = sign of x_1 (the other steps are noise)."""
    rng = np.random.default_rng(0)

    def batch(n):
        x = rng.normal(size=(n, 24, 1)).astype(np.float32)
        return fg.from_numpy(x), fg.from_numpy((x[:, 0, 0] > 0).astype(np.int64))

    fg.manual_seed(0)
    mt = MultiTimescaleRNN(input_size=1, hidden_sizes=(16, 16), periods=(1, 8), output_size=2,
                           cell="rnn")
    _train(mt, lambda i: batch(32), lambda m, x, y: F.cross_entropy(m(x)[0][:, -1], y), 150)
    x, y = batch(500)
    accuracy = (mt(x)[0][:, -1].argmax(-1).detach().numpy() == y.detach().numpy()).mean()
    assert accuracy > 0.85, accuracy


# --- state_dict -----------------------------------------------------------------------------------

def _models(seed):
    fg.manual_seed(seed)
    return [SequenceClassifier(input_size=3, hidden_size=5, num_classes=2, cell="gru"),
            SequenceTagger(input_size=3, hidden_size=5, num_tags=4, cell="lstm",
                           bidirectional=True),
            ConditionalGenerator(condition_size=3, vocab_size=6, hidden_size=5, cell="lstm"),
            RNNLanguageModel(vocab_size=6, embedding_dim=5, hidden_size=5, num_layers=2,
                             tie_weights=True),
            MultiTimescaleRNN(input_size=3, hidden_sizes=(4, 4), periods=(1, 2), cell="lstm")]


def test_state_dict_round_trip(tmp_path):
    x, tokens, cond = fg.randn(2, 6, 3), fg.randint(0, 6, (2, 6)), fg.randn(2, 3)

    def outputs(m):
        if isinstance(m, ConditionalGenerator):
            return m(cond, tokens)[0]
        if isinstance(m, RNNLanguageModel):
            return m(tokens)[0]
        out = m(x)
        return out[0] if isinstance(out, tuple) else out

    for source, target in zip(_models(0), _models(1)):
        assert not np.allclose(outputs(source).detach().numpy(), outputs(target).detach().numpy())
        path = tmp_path / f"{type(source).__name__}.safetensors"
        fg.save(source.state_dict(), str(path))
        target.load_state_dict(fg.load(str(path)))
        np.testing.assert_array_equal(outputs(source).detach().numpy(), outputs(target).detach().numpy())
    lm = _models(2)[3]
    lm.load_state_dict(source_lm := _models(0)[3].state_dict())
    assert set(source_lm) == set(lm.state_dict())
    assert "decoder.weight" in lm.state_dict() and lm.decoder.weight is lm.encoder.weight


# --- the recipe -----------------------------------------------------------------------------------

def test_teacher_forcing_recipe_quick_run(tmp_path):
    from flowgrad.recipes import teacher_forcing

    s = teacher_forcing.run(out=str(tmp_path), quick=True, progress=False)
    assert s["command"] == "flowgrad train teacher_forcing --quick"
    for name in ("teacher_forcing.md", "teacher_forcing.json", "teacher_forcing.png"):
        assert (tmp_path / name).exists(), name
    assert s["teacher_forcing"]["valid_nll"] < s["uniform_nll"] - 1.0
    tf = s["teacher_forcing"]["test_curve"]
    assert np.mean(tf["free_nll"][2:]) > np.mean(tf["teacher_nll"][2:]) + 0.3
    assert tf["free_nll"][0] == pytest.approx(tf["teacher_nll"][0], rel=1e-5)
    assert [g["half_point"] for g in s["schedule_grid"]] == [1.0]

"""Syntactic Attention (Russin, Jo, O'Reilly & Bengio 2019, arXiv:1904.09708): shapes, the
forward pass and every gradient against a PyTorch re-implementation that follows the authors'
code one source at a time (batch size 1, no padding), padding invariance, the output reached by
the semantic stream only through the attention, incremental decoding, a float64 gradient check,
state_dict round trips, and a tiny compositional task learned to 100% greedy (and beam)
accuracy."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.autograd.gradcheck import gradcheck
from flowgrad.debug.gradcheck import check_model_grads
from flowgrad.models.seq2seq import beam_search, greedy_decode
from flowgrad.models.syntactic_attention import (
    SyntacticAttentionSeq2Seq,
    SyntacticAttentionTraining,
)
from flowgrad.nn import functional as F

torch.set_num_threads(1)

SRC = np.array([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0], [5, 0, 0, 0, 0], [6, 3, 9, 0, 0]])
LENGTHS = np.array([5, 2, 1, 3])


def _model(dtype=None, **kwargs):
    fg.manual_seed(0)
    sizes = dict(src_vocab=10, tgt_vocab=7, semantic_size=6, syntax_size=8, dropout=0.0)
    model = SyntacticAttentionSeq2Seq(**{**sizes, **kwargs})
    return model.double() if dtype == "float64" else model


def _targets(batch, steps, seed=1):
    return fg.tensor(np.random.default_rng(seed).integers(3, 7, (batch, steps)))


class TorchSyntacticAttention(torch.nn.Module):
    """The authors' algorithm, one source at a time as in their code (batch size 1): embed
    [BOS, words, EOS]; first bidirectional LSTM; keep only each word's context; learned start
    and end vectors; second bidirectional LSTM; s_0 = relu(W_0 [h_fwd; h_bwd]); then per step
    alpha = softmax(H s), output from alpha . M, next s = LSTM(alpha . H)."""

    def __init__(self, src_vocab, tgt_vocab, semantic_size, syntax_size):
        super().__init__()
        half, x = syntax_size // 2, syntax_size
        self.start_role = torch.nn.Parameter(torch.zeros(x))
        self.end_role = torch.nn.Parameter(torch.zeros(x))
        self.semantic_embedding = torch.nn.Embedding(src_vocab, semantic_size)
        self.syntactic_embedding = torch.nn.Embedding(src_vocab, half)
        self.syntax_context_rnn = torch.nn.LSTM(half, half, bidirectional=True)
        self.syntax_rnn = torch.nn.LSTM(x, x, bidirectional=True)
        self.init_query = torch.nn.Linear(2 * x, 2 * x)
        self.decoder_cell = torch.nn.LSTMCell(2 * x, 2 * x)
        self.out = torch.nn.Linear(semantic_size, tgt_vocab)
        self.half = half

    def one(self, words, steps):
        tokens = torch.tensor([1] + list(words) + [2])
        n = len(tokens)
        m = self.semantic_embedding(tokens)                          # (n, M)
        h1, _ = self.syntax_context_rnn(self.syntactic_embedding(tokens)[:, None])
        h1 = h1[:, 0]
        rows = [self.start_role]
        for j in range(1, n - 1):
            rows.append(torch.cat([h1[j - 1, :self.half], h1[j + 1, self.half:]]))
        rows.append(self.end_role)
        keys, (h_n, _) = self.syntax_rnn(torch.stack(rows)[:, None])
        keys = keys[:, 0]                                            # (n, 2X)
        s = torch.relu(self.init_query(torch.cat([h_n[0, 0], h_n[1, 0]])))
        hidden = None
        logits, alphas = [], []
        for _ in range(steps):
            alpha = torch.softmax(keys @ s, 0)
            alphas.append(alpha)
            logits.append(self.out(alpha @ m))
            h, c = self.decoder_cell((alpha @ keys)[None], hidden)
            hidden, s = (h, c), h[0]
        return torch.stack(logits), torch.stack(alphas)


def _torch_twin(model):
    c = model.config
    twin = TorchSyntacticAttention(c.src_vocab, c.tgt_vocab, c.semantic_size, c.syntax_size)
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin.to(next(iter(state.values())).dtype)


# --- facts, shapes, errors -----------------------------------------------------------------------

def test_paper_defaults_and_shapes():
    fg.manual_seed(0)
    model = SyntacticAttentionSeq2Seq.from_paper(src_vocab=16, tgt_vocab=9)
    c = model.config
    assert (c.semantic_size, c.syntax_size, c.dropout) == (120, 200, 0.5)
    assert model.syntactic_embedding.weight.shape == (16, 100)
    assert model.syntax_context_rnn.hidden_size == 100 and model.syntax_context_rnn.bidirectional
    assert model.syntax_rnn.hidden_size == 200 and model.syntax_rnn.bidirectional
    assert model.decoder_cell.input_size == model.decoder_cell.hidden_size == 400
    assert model.out.weight.shape == (9, 120)
    train = SyntacticAttentionTraining()
    assert (train.lr, train.batch_size, train.updates, train.clip_grad_norm) == (1e-3, 1, 200_000,
                                                                                  5.0)
    model.eval()
    src = fg.tensor(np.array([[3, 4, 5, 6, 7, 8, 9, 10, 11], [12, 13, 0, 0, 0, 0, 0, 0, 0]]))
    logits, attention = model.forward_with_attention(src, [9, 2], 7)
    assert logits.shape == (2, 7, 9) and attention.shape == (2, 7, 11)
    assert model(src, [9, 2], fg.zeros((2, 7), dtype=fg.int64)).shape == (2, 7, 9)


def test_errors_name_the_shapes():
    model = _model()
    src = fg.tensor(SRC)
    with pytest.raises(fg.ShapeError, match=r"src of shape \(batch, time\)"):
        model(src[0], [5], _targets(1, 3))
    with pytest.raises(fg.ShapeError, match="3 src_lengths for a batch of 4"):
        model(src, LENGTHS[:3], _targets(4, 3))
    with pytest.raises(ValueError, match=r"src_lengths must be in 1\.\.5"):
        model(src, [5, 2, 0, 3], _targets(4, 3))
    with pytest.raises(fg.ShapeError, match="tgt_in"):
        model(src, LENGTHS, _targets(3, 3))


# --- against the PyTorch re-implementation -------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-5)])
def test_forward_and_every_gradient_match_torch(dtype, tol):
    model = _model(dtype)
    twin = _torch_twin(model)
    steps = 4
    targets = _targets(len(SRC), steps)
    logits, attention = model.forward_with_attention(fg.tensor(SRC), LENGTHS, steps)
    loss = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))
    loss.backward()
    t_loss = 0
    for b, (row, n) in enumerate(zip(SRC, LENGTHS)):
        t_logits, t_alpha = twin.one(row[:n].tolist(), steps)
        np.testing.assert_allclose(logits.detach().numpy()[b], t_logits.detach().numpy(),
                                   rtol=tol, atol=tol)
        a = attention.detach().numpy()[b]
        np.testing.assert_allclose(a[:, :n + 2], t_alpha.detach().numpy(), rtol=tol, atol=tol)
        assert np.all(a[:, n + 2:] == 0)
        t_loss = t_loss + torch.nn.functional.cross_entropy(
            t_logits, torch.from_numpy(targets.numpy()[b]), reduction="sum")
    (t_loss / targets.numel()).backward()
    t_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=10 * tol,
                                   atol=10 * tol, err_msg=name)


def test_state_dict_round_trips_with_torch_and_flowgrad():
    model = _model()
    twin = _torch_twin(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    other = _model()
    for p in other.parameters():
        fg.nn.init.uniform_(p, -0.3, 0.3)
    other.load_state_dict({k: fg.tensor(v.detach().numpy()) for k, v in twin.state_dict().items()})
    src, target = fg.tensor(SRC), _targets(len(SRC), 3)
    np.testing.assert_array_equal(other(src, LENGTHS, target).detach().numpy(),
                                  model(src, LENGTHS, target).detach().numpy())


# --- padding, the two streams, incremental decoding ----------------------------------------------

def test_a_source_alone_or_in_a_padded_batch_gives_the_same_logits():
    model = _model()
    model.eval()
    target = _targets(len(SRC), 6)
    batch = model(fg.tensor(SRC), LENGTHS, target).detach().numpy()
    wider = np.concatenate([SRC, np.zeros((len(SRC), 3), dtype=SRC.dtype)], axis=1)
    wider[2, 1:] = 9  # junk past the length must not matter either
    padded = model(fg.tensor(wider), LENGTHS, target).detach().numpy()
    for b, n in enumerate(LENGTHS):
        alone = model(fg.tensor(SRC[b:b + 1, :n]), [n], target[b:b + 1]).detach().numpy()
        np.testing.assert_allclose(batch[b], alone[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(padded[b], alone[0], rtol=1e-5, atol=1e-6)


def test_zero_semantic_embedding_leaves_only_the_output_bias():
    model = _model()
    model.semantic_embedding.weight.data[...] = 0
    logits = model(fg.tensor(SRC), LENGTHS, _targets(len(SRC), 5)).detach().numpy()
    np.testing.assert_allclose(logits, np.broadcast_to(model.out.bias.detach().numpy(), logits.shape),
                               atol=1e-7)


def test_a_word_meaning_reaches_each_output_in_proportion_to_its_attention():
    """Changing the semantic embedding of one word by d leaves the attention unchanged and
    moves output i by exactly alpha_ij * W d: the word's meaning enters the output only where
    the syntactic stream attends to it."""
    model = _model("float64")
    src = fg.tensor(SRC)
    logits, attention = model.forward_with_attention(src, LENGTHS, 5)
    word = 9  # at slot 2 of source 1 (after the start slot) and slot 3 of source 3
    delta = np.random.default_rng(0).standard_normal(model.config.semantic_size)
    model.semantic_embedding.weight.data[word] += delta
    new_logits, new_attention = model.forward_with_attention(src, LENGTHS, 5)
    np.testing.assert_array_equal(new_attention.detach().numpy(), attention.detach().numpy())
    alpha = attention.detach().numpy()
    slots = np.concatenate([np.ones((len(SRC), 1), int), SRC, np.zeros((len(SRC), 1), int)], 1)
    weight_on_word = (alpha * (slots == word)[:, None, :]).sum(-1)           # (B, T)
    expected = weight_on_word[..., None] * (model.out.weight.detach().numpy() @ delta)  # (B, T, V)
    change = new_logits.detach().numpy() - logits.detach().numpy()
    np.testing.assert_allclose(change, expected, atol=1e-12)
    assert np.all(change[[0, 2]] == 0) and np.abs(change[[1, 3]]).min() > 0


def test_a_word_seen_alone_gives_its_syntactic_embedding_no_gradient():
    """The first syntactic LSTM's output at a word is replaced by its neighbours' states, and
    the start and end slots by learned vectors, so a one-word source never reads its word's
    syntactic embedding: SCAN add-jump's "jump" keeps its initial syntactic vector however
    long the model trains. The semantic embedding does learn from it; in a longer source the
    syntactic vector reaches its neighbours and gets a gradient."""
    def grads(src, lengths):
        model = _model("float64")
        model.zero_grad()
        logits = model(fg.tensor(src), lengths, _targets(len(src), 3))
        logits.square().sum().backward()
        return (model.syntactic_embedding.weight.grad.numpy(),
                model.semantic_embedding.weight.grad.numpy())

    syntactic, semantic = grads(np.array([[5]]), np.array([1]))
    assert np.all(syntactic[5] == 0) and np.abs(semantic[5]).max() > 0
    syntactic, _ = grads(np.array([[5, 6]]), np.array([2]))
    assert np.abs(syntactic[5]).max() > 0 and np.abs(syntactic[6]).max() > 0


def test_step_by_step_decoding_matches_forward_and_reorder_state():
    model = _model()
    model.eval()
    src = fg.tensor(SRC)
    with fg.no_grad():
        logits, attention = model.forward_with_attention(src, LENGTHS, 4)
        state = model.start(src, LENGTHS)
        for i in range(4):
            log_probs, state, attn = model.step(state, fg.ones(len(SRC), dtype=fg.int64))
            np.testing.assert_allclose(log_probs.numpy(), logits[:, i].log_softmax(-1).numpy(),
                                       rtol=1e-5, atol=1e-6)
            words = attention.numpy()[:, i, 1:-1] * (np.arange(5) < LENGTHS[:, None])
            np.testing.assert_allclose(attn.numpy(), words, rtol=1e-5, atol=1e-7)
        state = model.start(src, LENGTHS)
        _, state, _ = model.step(state, fg.ones(len(SRC), dtype=fg.int64))
        index = np.array([3, 3, 0])
        picked = model.reorder_state(state, index)
        log_probs, _, attn = model.step(picked, fg.ones(3, dtype=fg.int64))
    np.testing.assert_allclose(log_probs.numpy(), logits[index, 1].log_softmax(-1).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert attn.shape == (3, 5)


def test_without_added_boundaries_the_source_supplies_them():
    model = _model(add_boundaries=False)
    model.eval()
    wrapped = np.zeros((len(SRC), 7), dtype=np.int64)
    for b, n in enumerate(LENGTHS):
        wrapped[b, :n + 2] = [1, *SRC[b, :n], 2]
    reference = _model()
    reference.eval()
    target = _targets(len(SRC), 4)
    np.testing.assert_allclose(model(fg.tensor(wrapped), LENGTHS + 2, target).detach().numpy(),
                               reference(fg.tensor(SRC), LENGTHS, target).detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="boundary slots"):
        model(fg.tensor(wrapped), [1, 2, 3, 4], target)


def test_dropout_acts_on_the_embeddings_in_training_only():
    model = _model(dropout=0.5)
    src, target = fg.tensor(SRC), _targets(len(SRC), 3)
    model.eval()
    first = model(src, LENGTHS, target).detach().numpy()
    np.testing.assert_array_equal(first, model(src, LENGTHS, target).detach().numpy())
    model.train()
    assert not np.allclose(model(src, LENGTHS, target).detach().numpy(), first)


# --- gradients by finite differences -------------------------------------------------------------

def test_gradients_match_finite_differences_float64():
    model = _model("float64", semantic_size=3, syntax_size=4, src_vocab=10, tgt_vocab=5)
    src = fg.tensor(np.array([[3, 4, 5], [6, 0, 0]]))
    targets = fg.tensor(np.array([[3, 4, 2], [4, 2, 0]]))

    def loss_fn(logits, y):
        return F.cross_entropy(logits.reshape(-1, 5), y.reshape(-1), ignore_index=0)

    report = check_model_grads(model, (src, [3, 1], targets), targets, loss_fn, n_entries=3,
                               floor=1e-5)
    assert report.ok, str(report)
    assert len(report.worst) == len(list(model.parameters()))

    def loss(*_):
        return loss_fn(model(src, [3, 1], targets), targets)

    assert gradcheck(loss, [model.start_role, model.end_role, model.out.bias], atol=1e-8,
                     rtol=1e-6)


# --- learning ------------------------------------------------------------------------------------

WORDS = {"a": 3, "b": 4, "c": 5, "d": 6, "twice": 7, "after": 8, "and": 9}


def _commands():
    """x -> X; x twice -> X X; x and y -> X Y; x after y -> Y X, for x, y in a..d."""
    out = []
    for x in "abcd":
        out += [([x], [x]), ([x, "twice"], [x, x])]
        for y in "abcd":
            out += [([x, "and", y], [x, y]), ([x, "after", y], [y, x])]
    return out


def _tensors(commands):
    src = np.zeros((len(commands), 3), np.int64)
    t_in = np.zeros((len(commands), 3), np.int64)
    t_out = np.zeros((len(commands), 3), np.int64)
    for i, (words, actions) in enumerate(commands):
        src[i, :len(words)] = [WORDS[w] for w in words]
        ids = [WORDS[a] for a in actions]
        t_in[i, :len(ids) + 1] = [1, *ids]
        t_out[i, :len(ids) + 1] = [*ids, 2]
    lengths = np.array([len(w) for w, _ in commands])
    return fg.tensor(src), lengths, fg.tensor(t_in), fg.tensor(t_out)


def _exact_match(predicted, commands):
    return float(np.mean([p == [WORDS[a] for a in actions]
                          for p, (_, actions) in zip(predicted, commands)]))


def test_learns_a_tiny_compositional_task_to_full_greedy_accuracy():
    fg.manual_seed(2)
    model = SyntacticAttentionSeq2Seq(src_vocab=10, tgt_vocab=7, semantic_size=16,
                                      syntax_size=32, dropout=0.0)
    commands = _commands()
    src, lengths, t_in, t_out = _tensors(commands)
    optimizer = fg.optim.Adam(model.parameters(), lr=0.01)
    accuracy = 0.0
    for i in range(200):
        logits = model(src, lengths, t_in)
        loss = F.cross_entropy(logits.reshape(-1, 7), t_out.reshape(-1), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 10 == 9:
            model.eval()
            accuracy = _exact_match(greedy_decode(model, src, lengths, 3), commands)
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"greedy exact match {accuracy} after {i + 1} updates"
    assert _exact_match(beam_search(model, src, lengths, beam_size=3, max_len=3), commands) == 1

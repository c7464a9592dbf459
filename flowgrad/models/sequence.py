"""Sequence models over recurrent cells (lecture: "Recurrent Neural Networks", "Generative RNNs",
"Conditional Distributions", "Maximum Likelihood = Teacher Forcing", "Multiscale or
Hierarchical RNNs").

The three conditional patterns of the slide "Conditional Distributions", over any cell type
("rnn": tanh Elman, "lstm", "gru"), all batch first:

- ``SequenceClassifier``: sequence -> vector (last state, or the masked mean over time);
- ``SequenceTagger``: aligned sequence -> sequence (one output per step);
- ``ConditionalGenerator``: vector -> sequence (the vector sets the initial state and/or is
  fed with every input).

The generative RNN of the slide "Generative RNNs", P(x) = prod_t P(x_t | x_<t):
``RNNLanguageModel`` (PyTorch's word_language_model: embedding -> recurrent layers -> linear,
optionally tied), trained by teacher forcing (``teacher_forcing_loss``), run free
(``generate``), with the compounding error of free running measured step by step
(``compounding_error``) and scheduled sampling as the fix (``scheduled_sampling_loss``,
``SamplingSchedule``; Bengio, Vinyals, Jaitly & Shazeer, NeurIPS 2015).

``MultiTimescaleRNN``: El Hihi & Bengio (NIPS 1995)'s hierarchical RNN, layer k updating its
state only every p_k steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import Tensor, as_tensor
from ..tensor_functions import cat, stack, where

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def recurrent_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                    dropout: float = 0.0, bidirectional: bool = False):
    """``nn.RNN`` (tanh) / ``nn.LSTM`` / ``nn.GRU`` by name, batch first."""
    if cell not in RECURRENT:
        raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(RECURRENT)}")
    return RECURRENT[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0,
                           bidirectional=bidirectional)


def _embed_or_check(embedding, x: Tensor, input_size: int, name: str) -> Tensor:
    if embedding is not None:
        if x.ndim != 2:
            raise ValueError(f"{name}: expected token ids of shape (batch, time), got "
                             f"{tuple(x.shape)}")
        return embedding(x)
    if x.ndim != 3 or x.shape[-1] != input_size:
        raise ValueError(f"{name}: expected inputs of shape (batch, time, {input_size}), got "
                         f"{tuple(x.shape)}; for token ids set vocab_size")
    return x


def length_mask(lengths, steps: int, device=None) -> Tensor:
    """(B, T) bool mask, True at the steps t < lengths[b] of each sequence."""
    lengths = as_tensor(lengths, device=device).long()
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (one per sequence), got {tuple(lengths.shape)}")
    low, high = int(lengths.min().item()), int(lengths.max().item())
    if low < 1 or high > steps:
        raise ValueError(f"lengths must be in 1..{steps} (the padded length), got values in "
                         f"{low}..{high}")
    t = as_tensor(np.arange(steps), device=lengths.device)
    return t.unsqueeze(0) < lengths.unsqueeze(1)


# --- sequence -> vector -------------------------------------------------------------------------

@dataclass
class SequenceClassifierConfig:
    input_size: int = 1      # features per step (the embedding width when vocab_size > 0)
    hidden_size: int = 64
    num_classes: int = 2
    cell: str = "lstm"       # rnn | lstm | gru
    num_layers: int = 1
    pooling: str = "last"    # last: state at each sequence's last step | mean: masked mean
    vocab_size: int = 0      # > 0: inputs are token ids, embedded to input_size
    dropout: float = 0.0     # between recurrent layers


class SequenceClassifier(nn.Module):
    """Sequence -> vector (slide "Conditional Distributions"): the recurrent state summarises
    the sequence ("selectively summarize an input sequence in a fixed-size state vector"), a
    linear layer maps it to logits.

    forward(x (B, T, input_size) or ids (B, T), lengths (B,) = all T) -> (B, num_classes).
    With ``lengths``, steps past each sequence's end (padding) are ignored: "last" reads the
    state at step lengths[b] - 1, "mean" averages over the first lengths[b] steps.
    """

    def __init__(self, config: SequenceClassifierConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or SequenceClassifierConfig(**kwargs)
        if c.pooling not in ("last", "mean"):
            raise ValueError(f"SequenceClassifier: pooling must be 'last' or 'mean', got "
                             f"{c.pooling!r}")
        self.embedding = nn.Embedding(c.vocab_size, c.input_size) if c.vocab_size else None
        self.rnn = recurrent_layer(c.cell, c.input_size, c.hidden_size, c.num_layers, c.dropout)
        self.head = nn.Linear(c.hidden_size, c.num_classes)

    def features(self, x: Tensor, lengths=None) -> Tensor:
        """The summary vector (B, hidden_size)."""
        x = _embed_or_check(self.embedding, x, self.config.input_size, "SequenceClassifier")
        out, _ = self.rnn(x)
        steps = out.shape[1]
        if lengths is None:
            return out[:, -1] if self.config.pooling == "last" else out.mean(1)
        mask = length_mask(lengths, steps, device=out.device)
        if self.config.pooling == "last":
            lengths = mask.long().sum(1, keepdim=True)
            t = as_tensor(np.arange(steps), device=out.device).unsqueeze(0)
            mask = t == lengths - 1
        weights = mask.to(out.dtype)
        pooled = (out * weights.unsqueeze(-1)).sum(1)
        return pooled if self.config.pooling == "last" else pooled / weights.sum(1, keepdim=True)

    def forward(self, x: Tensor, lengths=None) -> Tensor:
        return self.head(self.features(x, lengths))


# --- aligned sequence -> sequence ---------------------------------------------------------------

@dataclass
class SequenceTaggerConfig:
    input_size: int = 1      # features per step (the embedding width when vocab_size > 0)
    hidden_size: int = 64
    num_tags: int = 2
    cell: str = "lstm"       # rnn | lstm | gru
    num_layers: int = 1
    bidirectional: bool = False  # False: output t depends on x_1..x_t only (causal)
    vocab_size: int = 0      # > 0: inputs are token ids, embedded to input_size
    dropout: float = 0.0


class SequenceTagger(nn.Module):
    """Aligned sequence -> sequence (slide "Conditional Distributions"; slide "Recurrent Neural
    Networks": "can produce an output at each time step").

    forward(x (B, T, input_size) or ids (B, T)) -> (B, T, num_tags) logits.
    """

    def __init__(self, config: SequenceTaggerConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or SequenceTaggerConfig(**kwargs)
        self.embedding = nn.Embedding(c.vocab_size, c.input_size) if c.vocab_size else None
        self.rnn = recurrent_layer(c.cell, c.input_size, c.hidden_size, c.num_layers, c.dropout,
                                   c.bidirectional)
        self.head = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.num_tags)

    def forward(self, x: Tensor) -> Tensor:
        x = _embed_or_check(self.embedding, x, self.config.input_size, "SequenceTagger")
        out, _ = self.rnn(x)
        return self.head(out)


# --- sampling one token -------------------------------------------------------------------------

def _make_generator(generator, seed, device):
    from .. import Generator

    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        return Generator(device=device).manual_seed(int(seed))
    return generator


def sample_logits(logits: Tensor, strategy: str = "sample", temperature: float = 1.0,
                  top_k: int | None = None, generator=None) -> Tensor:
    """Next-token ids (B,) from logits (B, V): "greedy" takes the argmax; "sample" draws from
    softmax(logits / temperature) restricted to the ``top_k`` largest logits. temperature 0
    is greedy."""
    if strategy not in ("greedy", "sample"):
        raise ValueError(f"strategy must be 'greedy' or 'sample', got {strategy!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    logits = logits.detach()
    if strategy == "greedy" or temperature == 0 or top_k == 1:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1)[0][:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    return probs.multinomial(1, generator=generator).squeeze(1)


def prefix_batch(prefix, device) -> tuple[Tensor, bool]:
    """A generation prefix (P,) or (B, P) of token ids as int64 (B, P), and whether it was one
    sequence; an empty or other-shaped prefix raises."""
    prefix = as_tensor(prefix, device=device).long()
    single = prefix.ndim == 1
    if single:
        prefix = prefix.unsqueeze(0)
    if prefix.ndim != 2 or prefix.shape[1] < 1:
        raise ValueError(f"generate: expected a non-empty prefix (P,) or (B, P), got "
                         f"{tuple(prefix.shape)}")
    return prefix, single


def _autoregress(step, logits: Tensor, hidden, max_new_tokens: int, strategy, temperature,
                 top_k, generator) -> list:
    """Feed ``step`` (ids (B, 1), hidden) -> (logits (B, 1, V), hidden) its own tokens,
    starting from ``logits`` (B, V). Returns the ``max_new_tokens`` ids (B,) drawn."""
    new = []
    for i in range(max_new_tokens):
        token = sample_logits(logits, strategy, temperature, top_k, generator)
        new.append(token)
        if i + 1 < max_new_tokens:
            out, hidden = step(token.unsqueeze(1), hidden)
            logits = out[:, -1]
    return new


# --- vector -> sequence -------------------------------------------------------------------------

@dataclass
class ConditionalGeneratorConfig:
    condition_size: int = 10
    vocab_size: int = 16     # output tokens, including the start token ``bos``
    embedding_dim: int = 32
    hidden_size: int = 64
    cell: str = "gru"        # rnn | lstm | gru
    num_layers: int = 1
    condition: str = "both"  # init: the initial state | input: every input | both
    bos: int = 0             # the token fed at the first step


class ConditionalGenerator(nn.Module):
    """Vector -> sequence (slide "Conditional Distributions"): P(y_1..y_T | c) = prod_t
    P(y_t | y_<t, c), the vector c setting the initial state h_0 = tanh(W_c c + b) (one per
    layer; for an LSTM also c_0) and/or concatenated to every input embedding.

    forward(condition (B, condition_size), inputs (B, T) ids, hidden=None) -> (logits
    (B, T, V), hidden). Teacher forcing: inputs = [bos, y_1 .. y_{T-1}], targets y_1 .. y_T.
    ``generate(condition, max_len)`` runs it free from ``bos``.
    """

    def __init__(self, config: ConditionalGeneratorConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or ConditionalGeneratorConfig(**kwargs)
        if c.condition not in ("init", "input", "both"):
            raise ValueError(f"ConditionalGenerator: condition must be 'init', 'input' or "
                             f"'both', got {c.condition!r}")
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        feed = c.condition in ("input", "both")
        self.rnn = recurrent_layer(c.cell, c.embedding_dim + (c.condition_size if feed else 0),
                                   c.hidden_size, c.num_layers)
        states = c.num_layers * (2 if c.cell == "lstm" else 1)
        self.init_state = (nn.Linear(c.condition_size, states * c.hidden_size)
                           if c.condition in ("init", "both") else None)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)

    def initial_hidden(self, condition: Tensor):
        """h_0 (num_layers, B, H) from the condition (zeros with condition='input')."""
        c = self.config
        batch = condition.shape[0]
        if self.init_state is None:
            zeros = as_tensor(np.zeros((c.num_layers, batch, c.hidden_size)),
                              dtype=condition.dtype, device=condition.device)
            return (zeros, zeros) if c.cell == "lstm" else zeros
        h = self.init_state(condition).tanh().reshape(batch, -1, c.num_layers, c.hidden_size)
        h = h.permute(1, 2, 0, 3)  # (states, layers, B, H)
        return (h[0], h[1]) if c.cell == "lstm" else h[0]

    def forward(self, condition: Tensor, inputs: Tensor, hidden=None):
        c = self.config
        if condition.ndim != 2 or condition.shape[1] != c.condition_size:
            raise ValueError(f"ConditionalGenerator: expected a condition of shape (batch, "
                             f"{c.condition_size}), got {tuple(condition.shape)}")
        x = self.embedding(inputs)
        if c.condition in ("input", "both"):
            x = cat([x, condition.unsqueeze(1).expand(-1, inputs.shape[1], -1)], dim=2)
        if hidden is None:
            hidden = self.initial_hidden(condition)
        out, hidden = self.rnn(x, hidden)
        return self.head(out), hidden

    @no_grad()
    def generate(self, condition: Tensor, max_len: int, strategy: str = "greedy",
                 temperature: float = 1.0, top_k: int | None = None, generator=None,
                 seed: int | None = None) -> Tensor:
        """(B, max_len) ids drawn free-running from ``bos`` given the condition."""
        was = self.training
        self.eval()
        generator = _make_generator(generator, seed, condition.device)
        bos = as_tensor(np.full((condition.shape[0], 1), self.config.bos),
                        device=condition.device)
        out, hidden = self(condition, bos)

        def step(tokens, hidden):
            return self(condition, tokens, hidden)

        new = _autoregress(step, out[:, -1], hidden, max_len, strategy, temperature, top_k,
                           generator)
        self.train(was)
        return stack(new, dim=1)


# --- generative RNN language model ---------------------------------------------------------------

@dataclass
class RNNLMConfig:
    vocab_size: int = 10000
    embedding_dim: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    cell: str = "lstm"          # rnn | lstm | gru
    dropout: float = 0.0        # on the embeddings, between layers and before the decoder
    tie_weights: bool = False   # decoder.weight is encoder.weight (Press & Wolf 2017)


class RNNLanguageModel(nn.Module):
    """A generative RNN (slide "Generative RNNs"): P(x_1..x_T) = prod_t P(x_t | x_<t), the
    state summarising x_<t. PyTorch's word_language_model ``RNNModel``, batch first:
    ``encoder`` (Embedding) -> ``rnn`` -> ``decoder`` (Linear), with dropout ``drop`` and
    optional weight tying.

    forward(tokens (B, T), hidden=None) -> (logits (B, T, V), hidden). Carry ``hidden``
    between windows with ``repackage_hidden`` (detached) for truncated BPTT.
    """

    def __init__(self, config: RNNLMConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or RNNLMConfig(**kwargs)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.Embedding(c.vocab_size, c.embedding_dim)
        self.rnn = recurrent_layer(c.cell, c.embedding_dim, c.hidden_size, c.num_layers,
                                   c.dropout)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        if c.tie_weights:
            if c.hidden_size != c.embedding_dim:
                raise ValueError("When using the tied flag, hidden_size must be equal to "
                                 f"embedding_dim (got {c.hidden_size} and {c.embedding_dim})")
            self.decoder.weight = self.encoder.weight
        self.init_weights()

    def init_weights(self) -> None:
        """U(-0.1, 0.1) embeddings and decoder weights, zero decoder bias (as the example)."""
        with no_grad():
            self.encoder.weight.uniform_(-0.1, 0.1)
            self.decoder.bias.zero_()
            self.decoder.weight.uniform_(-0.1, 0.1)

    def init_hidden(self, batch: int):
        """Zero state (num_layers, batch, H); a pair (h, c) for an LSTM."""
        c = self.config
        w = self.decoder.weight
        zeros = as_tensor(np.zeros((c.num_layers, batch, c.hidden_size)), dtype=w.dtype,
                          device=w.device)
        return (zeros, zeros.clone()) if c.cell == "lstm" else zeros

    def forward(self, tokens: Tensor, hidden=None):
        if tokens.ndim != 2:
            raise ValueError(f"RNNLanguageModel: expected token ids of shape (batch, time), got "
                             f"{tuple(tokens.shape)}")
        x = self.drop(self.encoder(tokens))
        out, hidden = self.rnn(x, hidden)
        return self.decoder(self.drop(out)), hidden

    @no_grad()
    def generate(self, prefix, max_new_tokens: int, strategy: str = "greedy",
                 temperature: float = 1.0, top_k: int | None = None, generator=None,
                 seed: int | None = None) -> Tensor:
        """Free running (slide "Maximum Likelihood = Teacher Forcing": "at generation time,
        past y in input is generated"): read ``prefix`` (P,) or (B, P), then feed each drawn
        token back. Returns the prefix followed by ``max_new_tokens`` tokens, (P + N,) or
        (B, P + N). ``seed`` (or a ``Generator``) makes sampling reproducible."""
        prefix, single = prefix_batch(prefix, self.decoder.weight.device)
        was = self.training
        self.eval()
        generator = _make_generator(generator, seed, prefix.device)
        out, hidden = self(prefix)
        new = _autoregress(self, out[:, -1], hidden, max_new_tokens, strategy, temperature,
                           top_k, generator)
        self.train(was)
        result = cat([prefix] + [t.unsqueeze(1) for t in new], dim=1)
        return result[0] if single else result


def repackage_hidden(hidden):
    """The state detached from its history (truncated BPTT), for a tensor or a tuple."""
    if isinstance(hidden, Tensor):
        return hidden.detach()
    return tuple(repackage_hidden(h) for h in hidden)


def _sequence_nll(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def teacher_forcing_loss(model, tokens: Tensor, hidden=None):
    """Maximum likelihood = teacher forcing: every input is the true previous token.
    ``model(inputs (B, T-1), hidden) -> (logits, hidden)``; returns (mean NLL of tokens[:, 1:],
    hidden)."""
    logits, hidden = model(tokens[:, :-1], hidden)
    return _sequence_nll(logits, tokens[:, 1:]), hidden


def scheduled_sampling_loss(model, tokens: Tensor, eps: float, hidden=None, generator=None,
                            feed: str = "sample", temperature: float = 1.0):
    """Scheduled sampling (Bengio, Vinyals, Jaitly & Shazeer 2015), step by step: the input at
    step t > 0 is the true token x_t with probability ``eps`` (a coin per sequence and step)
    and otherwise the model's own token drawn from its output at step t-1 (``feed`` "sample"
    as in the paper, or "greedy"); no gradient flows through the draw. The first input is
    always true. eps = 1 is teacher forcing; eps = 0 is free running.

    ``model(inputs (B, 1), hidden) -> (logits (B, 1, V), hidden)``. Returns (mean NLL of
    tokens[:, 1:], hidden)."""
    from .. import rand

    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"scheduled_sampling_loss: eps must be in [0, 1], got {eps}")
    steps = tokens.shape[1] - 1
    if steps < 1:
        raise ValueError("scheduled_sampling_loss: need sequences of at least 2 tokens")
    inputs = tokens[:, :1]
    outs = []
    for t in range(steps):
        logits, hidden = model(inputs, hidden)
        outs.append(logits)
        if t + 1 == steps:
            break
        inputs = tokens[:, t + 1:t + 2]
        if eps < 1.0:
            own = sample_logits(logits[:, -1], feed, temperature, None, generator)
            coin = rand(tokens.shape[0], generator=generator, device=tokens.device) < eps
            inputs = where(coin.unsqueeze(1), inputs, own.unsqueeze(1))
    return _sequence_nll(cat(outs, dim=1), tokens[:, 1:]), hidden


class SamplingSchedule:
    """The decay schedules of scheduled sampling (Bengio et al. 2015, section 2.4): the
    probability eps_i of feeding the true token at training iteration i.

    - "linear": eps_i = max(eps_min, k - c i)
    - "exponential": eps_i = k ** i, k < 1
    - "inverse_sigmoid": eps_i = k / (k + exp(i / k)), k >= 1

    ``schedule(i)`` gives eps_i; ``step()`` advances the iteration, ``eps`` is the current one.
    """

    KINDS = ("linear", "exponential", "inverse_sigmoid")

    def __init__(self, kind: str = "inverse_sigmoid", k: float | None = None, c: float = 1e-3,
                 eps_min: float = 0.0) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"SamplingSchedule: kind must be one of {', '.join(self.KINDS)}, "
                             f"got {kind!r}")
        k = {"linear": 1.0, "exponential": 0.999, "inverse_sigmoid": 100.0}[kind] if k is None \
            else float(k)
        if kind == "exponential" and not 0 < k < 1:
            raise ValueError(f"SamplingSchedule: exponential decay needs 0 < k < 1, got {k}")
        if kind == "inverse_sigmoid" and k < 1:
            raise ValueError(f"SamplingSchedule: inverse sigmoid decay needs k >= 1, got {k}")
        if not 0 <= eps_min < 1:
            raise ValueError(f"SamplingSchedule: eps_min must be in [0, 1), got {eps_min}")
        self.kind, self.k, self.c, self.eps_min = kind, k, float(c), float(eps_min)
        self.iteration = 0

    def __call__(self, i: int) -> float:
        if self.kind == "linear":
            eps = max(self.eps_min, self.k - self.c * i)
        elif self.kind == "exponential":
            eps = self.k ** i
        else:
            eps = self.k / (self.k + math.exp(min(i / self.k, 700.0)))
        return float(min(1.0, max(0.0, eps)))

    @property
    def eps(self) -> float:
        return self(self.iteration)

    def step(self) -> float:
        self.iteration += 1
        return self.eps

    def state_dict(self) -> dict:
        return {"kind": self.kind, "k": self.k, "c": self.c, "eps_min": self.eps_min,
                "iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["kind"], state["k"], state["c"], state["eps_min"])
        self.iteration = int(state["iteration"])

    def __repr__(self) -> str:
        return (f"SamplingSchedule(kind={self.kind!r}, k={self.k}, c={self.c}, "
                f"eps_min={self.eps_min}, iteration={self.iteration})")


@no_grad()
def compounding_error(model, sequences, prefix: int, feed: str = "greedy",
                      batch_size: int = 256, generator=None, seed: int | None = None) -> dict:
    """The "compounding error" of slide "Maximum Likelihood = Teacher Forcing", per step.

    For each held-out sequence x (N, T) and each step k = 1 .. T - prefix after the first
    ``prefix`` tokens, the NLL of the true token x_{prefix+k} and whether the argmax misses it:
    under teacher forcing (conditioned on the true x_<prefix+k) and free running (conditioned
    on the true prefix followed by the model's own k - 1 tokens, ``feed`` "greedy" or
    "sample"). Step 1 is the same in both. ``model(ids, hidden) -> (logits, hidden)``.

    Returns NumPy arrays over k: ``step``, ``teacher_nll``, ``free_nll``, ``teacher_error``,
    ``free_error`` (means over sequences), and ``n`` the number of sequences.
    """
    was = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    seqs = as_tensor(sequences).long()
    if seqs.ndim != 2 or not 1 <= prefix < seqs.shape[1]:
        raise ValueError(f"compounding_error: need sequences (N, T) and 1 <= prefix < T, got "
                         f"{tuple(seqs.shape)} and prefix={prefix}")
    generator = _make_generator(generator, seed, seqs.device)
    total = {key: 0.0 for key in ("teacher_nll", "free_nll", "teacher_error", "free_error")}
    for s in range(0, seqs.shape[0], batch_size):
        x = seqs[s:s + batch_size]
        targets = x[:, prefix:]
        logits, _ = model(x[:, :-1], None)
        tf = logits[:, prefix - 1:]
        total["teacher_nll"] = total["teacher_nll"] + _per_step_nll(tf, targets)
        total["teacher_error"] = total["teacher_error"] + _per_step_error(tf, targets)
        out, hidden = model(x[:, :prefix], None)
        free = [out[:, -1]]
        for _ in range(targets.shape[1] - 1):
            token = sample_logits(free[-1], feed, 1.0, None, generator)
            out, hidden = model(token.unsqueeze(1), hidden)
            free.append(out[:, -1])
        free = stack(free, dim=1)
        total["free_nll"] = total["free_nll"] + _per_step_nll(free, targets)
        total["free_error"] = total["free_error"] + _per_step_error(free, targets)
    if hasattr(model, "train"):
        model.train(was)
    n = seqs.shape[0]
    result = {key: value / n for key, value in total.items()}
    result["step"] = np.arange(1, seqs.shape[1] - prefix + 1)
    result["n"] = int(n)
    return result


def _per_step_nll(logits: Tensor, targets: Tensor) -> np.ndarray:
    """Sum over the batch of -log P(target) at each step: (T,) float64."""
    logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -logp.numpy().astype(np.float64).sum(0)


def _per_step_error(logits: Tensor, targets: Tensor) -> np.ndarray:
    return (logits.argmax(-1).numpy() != targets.numpy()).sum(0).astype(np.float64)


# --- multiple time scales -----------------------------------------------------------------------

@dataclass
class MultiTimescaleConfig:
    input_size: int = 1          # features per step (the embedding width when vocab_size > 0)
    hidden_sizes: tuple = (32, 32)  # layer 0 (bottom, fed the input) first
    periods: tuple = (1, 4)      # layer k updates its state every periods[k] steps
    output_size: int = 1
    cell: str = "rnn"            # rnn | lstm | gru
    top_down: bool = True        # feed each layer the held state of the layer above
    vocab_size: int = 0          # > 0: inputs are token ids, embedded to input_size


class MultiTimescaleRNN(nn.Module):
    """Hierarchical RNN with multiple time scales (El Hihi & Bengio, NIPS 1995; slide
    "Multiscale or Hierarchical RNNs": "gradients can propagate over longer spans through slow
    time-scale paths").

    Stacked cells; at step t = 1, 2, ... layer k updates its state only when t is a multiple
    of its period p_k and holds it otherwise (the held state is the same tensor, so its
    gradient crosses the skipped steps unchanged). Layer k reads the new state of layer k-1
    (the input for k = 0) and, with ``top_down``, the state of layer k+1 from the step before.
    The output at each step is a linear map of all layers' states.

    forward(x (B, T, input_size) or ids (B, T), hidden=None) -> (outputs (B, T, output_size),
    hidden: a list with one state per layer, a pair (h, c) for LSTM cells).
    """

    def __init__(self, config: MultiTimescaleConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or MultiTimescaleConfig(**kwargs)
        sizes, periods = tuple(c.hidden_sizes), tuple(c.periods)
        if len(sizes) != len(periods) or not sizes:
            raise ValueError(f"MultiTimescaleRNN: one period per layer, got hidden_sizes "
                             f"{sizes} and periods {periods}")
        if any(int(p) != p or p < 1 for p in periods):
            raise ValueError(f"MultiTimescaleRNN: periods must be positive integers, got "
                             f"{periods}")
        if c.cell not in CELLS:
            raise ValueError(f"unknown cell {c.cell!r}; expected one of {', '.join(CELLS)}")
        self.embedding = nn.Embedding(c.vocab_size, c.input_size) if c.vocab_size else None
        cells = []
        for k, size in enumerate(sizes):
            below = c.input_size if k == 0 else sizes[k - 1]
            above = sizes[k + 1] if c.top_down and k + 1 < len(sizes) else 0
            cells.append(CELLS[c.cell](below + above, size))
        self.cells = nn.ModuleList(cells)
        self.head = nn.Linear(sum(sizes), c.output_size)

    def updates(self, k: int, t: int) -> bool:
        """Whether layer k updates at step t (0-based): when t + 1 is a multiple of p_k."""
        return (t + 1) % int(self.config.periods[k]) == 0

    def init_hidden(self, batch: int) -> list:
        w = self.head.weight
        states = []
        for size in self.config.hidden_sizes:
            z = as_tensor(np.zeros((batch, size)), dtype=w.dtype, device=w.device)
            states.append((z, z.clone()) if self.config.cell == "lstm" else z)
        return states

    def states(self, x: Tensor, hidden=None) -> tuple[list, list]:
        """Per-layer output states over time, [(B, T, H_k)], and the final hidden list."""
        c = self.config
        x = _embed_or_check(self.embedding, x, c.input_size, "MultiTimescaleRNN")
        lstm = c.cell == "lstm"
        hidden = list(hidden) if hidden is not None else self.init_hidden(x.shape[0])
        layers = len(self.cells)
        history = [[] for _ in range(layers)]
        for t in range(x.shape[1]):
            below = x[:, t]
            previous = [s[0] if lstm else s for s in hidden]  # states at t-1, for top-down
            for k, cell in enumerate(self.cells):
                if self.updates(k, t):
                    inp = below
                    if c.top_down and k + 1 < layers:
                        inp = cat([below, previous[k + 1]], dim=1)
                    hidden[k] = cell(inp, hidden[k])
                h = hidden[k][0] if lstm else hidden[k]
                history[k].append(h)
                below = h
        return [stack(h, dim=1) for h in history], hidden

    def forward(self, x: Tensor, hidden=None):
        history, hidden = self.states(x, hidden)
        return self.head(cat(history, dim=2)), hidden

"""The neural probabilistic language model (lecture: "Neural Language Models"; Bengio, Ducharme,
Vincent & Jauvin, JMLR 3:1137-1155, 2003).

    y = b + W x + U tanh(d + H x),   P(w_t | w_{t-n+1} ... w_{t-1}) = softmax(y)[w_t]

with x = (C(w_{t-1}), ..., C(w_{t-n+1})) the concatenated rows of the shared word-feature matrix
C. W (the direct connections) and U act on the features [x; tanh(d + H x)] and share the bias b,
so they are held as one output layer, ``output.weight = [W | U]`` of shape (|V|, F): one GEMM
for the full softmax, and the rows that the sampled objectives of
``flowgrad.nn.functional.sampled`` (NCE, sampled softmax) gather.

Also here: the paper's weight decay (weights and C, not biases), its learning-rate schedule
eps_t = eps_0 / (1 + r t), the parameter count, exact perplexity, the mixture with an n-gram
model ("mix" in the paper's tables), and the n-gram context-window dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..optim.lr_scheduler import LambdaLR
from ..tensor import Tensor, as_tensor
from ..tensor_functions import cat
from ..utils.data import TensorDataset


@dataclass
class NPLMConfig:
    vocab_size: int = 10000
    context: int = 5          # n: word t is predicted from the n-1 words before it
    embedding_dim: int = 60   # m: the columns of C
    hidden: int = 50          # h: tanh units; 0 = no hidden layer (then direct must be on)
    direct: bool = True       # the direct connections W from x to the output


class NPLM(nn.Module):
    """Bengio et al. (2003)'s feed-forward language model.

    Args: context (B, n-1) word ids, oldest first (w_{t-n+1} ... w_{t-1}). Returns (B, |V|)
    logits y; ``F.cross_entropy(y, target)`` is the paper's negative log-likelihood.

    Parameters (``state_dict`` keys): ``C.weight`` (|V|, m); ``H.weight`` ((n-1)m -> h) and
    ``H.bias`` = d; ``output.weight`` = [W | U] (|V|, (n-1)m·direct + h) and ``output.bias`` = b.
    The properties ``W`` and ``U`` are the two blocks of ``output.weight``. H and the output
    layer start as ``nn.Linear`` does; C starts U(-1/sqrt(m), 1/sqrt(m)).

    Example:
        >>> model = NPLM(vocab_size=100, context=3, embedding_dim=8, hidden=16)
        >>> model(fg.randint(0, 100, (4, 2))).shape
        (4, 100)
    """

    def __init__(self, config: NPLMConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or NPLMConfig(**kwargs)
        if c.context < 2:
            raise ValueError(f"NPLM: context n must be at least 2 (n-1 previous words), got "
                             f"{c.context}")
        if c.hidden < 0:
            raise ValueError(f"NPLM: hidden must be >= 0, got {c.hidden}")
        if c.hidden == 0 and not c.direct:
            raise ValueError("NPLM: hidden=0 with direct=False leaves no path from the context "
                             "to the output; turn direct connections on or add hidden units")
        x_dim = (c.context - 1) * c.embedding_dim
        self.C = nn.Embedding(c.vocab_size, c.embedding_dim)
        self.H = nn.Linear(x_dim, c.hidden) if c.hidden else None
        self.output = nn.Linear((x_dim if c.direct else 0) + c.hidden, c.vocab_size)
        with no_grad():  # C ~ U(±1/sqrt(m)): nn.Embedding's N(0, 1) would saturate tanh
            bound = 1.0 / math.sqrt(c.embedding_dim)
            self.C.weight.uniform_(-bound, bound)

    @property
    def num_features(self) -> int:
        """F: the width of ``features`` (the columns of ``output.weight``)."""
        return self.output.in_features

    @property
    def W(self) -> Tensor | None:
        """The direct connections, (|V|, (n-1)m), or None without them."""
        if not self.config.direct:
            return None
        return self.output.weight[:, :(self.config.context - 1) * self.config.embedding_dim]

    @property
    def U(self) -> Tensor | None:
        """The hidden-to-output weights, (|V|, h), or None with h = 0."""
        if not self.config.hidden:
            return None
        return self.output.weight[:, self.num_features - self.config.hidden:]

    def features(self, context: Tensor) -> Tensor:
        """[x; tanh(d + H x)] (B, F): what the output layer (or a sampled loss) reads."""
        c = self.config
        if context.ndim != 2 or context.shape[1] != c.context - 1:
            raise ValueError(f"NPLM: expected a context of shape (batch, {c.context - 1}) "
                             f"(the n-1 previous word ids), got {tuple(context.shape)}")
        x = self.C(context).flatten(1)
        if not c.hidden:
            return x
        a = self.H(x).tanh()
        return cat([x, a], dim=1) if c.direct else a

    def forward(self, context: Tensor) -> Tensor:
        return self.output(self.features(context))

    def init_unigram_bias(self, counts) -> None:
        """Set the output bias b to the log of the add-one-smoothed unigram distribution of
        ``counts`` (|V|,): the model starts as the unigram model and close to normalised, which
        self-normalised NCE (log Z = 0) needs to start well."""
        c = np.asarray(backend.to_numpy(counts._data) if isinstance(counts, Tensor) else counts,
                       dtype=np.float64)
        if c.shape != (self.config.vocab_size,):
            raise ValueError(f"init_unigram_bias: expected {self.config.vocab_size} counts, got "
                             f"shape {c.shape}")
        b = self.output.bias
        with no_grad():
            b.copy_(Tensor._wrap(b.xp.asarray(np.log((c + 1) / (c + 1).sum()), dtype=b.dtype),
                                 None, False))

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Optimizer groups with the paper's regulariser: weight decay on the weights and C,
        none on the biases (b, d). ``fg.optim.SGD(model.param_groups(1e-4), lr=1e-3)``."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            (no_decay if name.endswith("bias") else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class InverseTimeDecay:
    """The factor 1 / (1 + r t) of the paper's schedule eps_t = eps_0 / (1 + r t), t counting
    parameter updates. A callable object, so a LambdaLR using it is checkpointed with r."""

    def __init__(self, r: float = 1e-8) -> None:
        self.r = r

    def __call__(self, t: int) -> float:
        return 1.0 / (1.0 + self.r * t)


def paper_lr_schedule(optimizer, r: float = 1e-8) -> LambdaLR:
    """LambdaLR giving eps_t = eps_0 / (1 + r t) (Bengio et al. 2003: eps_0 = 1e-3, r = 1e-8);
    call ``scheduler.step()`` after every update."""
    return LambdaLR(optimizer, InverseTimeDecay(r))


def nplm_parameter_count(vocab_size: int, context: int, embedding_dim: int, hidden: int,
                         direct: bool = True) -> int:
    """Free parameters of ``NPLM``: |V|(1 + nm + h) + h(1 + (n-1)m) with direct connections,
    the paper's formula (b: |V|; C: |V|m; W: |V|(n-1)m; U: |V|h; d: h; H: h(n-1)m).

    Without direct connections W's |V|(n-1)m is absent, a case the paper's formula (written for
    the model with W) does not cover; with h = 0 the formula's h-terms vanish, as do U, H and d.
    The module's actual count (``NPLM.num_parameters``) equals this number in every case.
    """
    v, n, m, h = vocab_size, context, embedding_dim, hidden
    count = v * (1 + n * m + h) + h * (1 + (n - 1) * m)
    return count if direct else count - v * (n - 1) * m


def context_windows(tokens, context: int) -> tuple[np.ndarray, np.ndarray]:
    """(contexts (N, n-1), targets (N,)) for every position of a 1-D id stream with n-1 words
    before it, N = len(tokens) - n + 1: read-only strided views of ``tokens``, no copy and no
    Python loop per token."""
    if isinstance(tokens, Tensor):
        tokens = backend.to_numpy(tokens._data)
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise ValueError(f"context_windows: expected a 1-D integer array of token ids, got "
                         f"{tokens.dtype} of shape {tokens.shape}")
    if context < 2 or len(tokens) < context:
        raise ValueError(f"context_windows: need n >= 2 and at least n tokens, got n={context} "
                         f"and {len(tokens)} tokens")
    tokens = tokens.astype(np.int64, copy=False)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, context)
    return windows[:, :-1], windows[:, -1]


def ngram_dataset(tokens, context: int) -> TensorDataset:
    """A dataset of (context (n-1 ids), target) pairs over a token stream, for DataLoader.

    It is a ``TensorDataset`` over strided views of ``tokens`` (no copy), so the DataLoader
    gathers each batch with one indexing call.

    Example:
        >>> loader = DataLoader(ngram_dataset(ids, 5), batch_size=256, shuffle=True)
        >>> for ctx, target in loader: loss = F.cross_entropy(model(ctx), target)
    """
    ctx, target = context_windows(tokens, context)
    return TensorDataset(Tensor._wrap(ctx, None, False), Tensor._wrap(target, None, False))


def _batches(tokens, context: int, batch_size: int):
    ctx, target = context_windows(tokens, context)
    for start in range(0, len(target), batch_size):
        yield ctx[start:start + batch_size], target[start:start + batch_size], start


def _log_probs(model: NPLM, ctx: np.ndarray) -> Tensor:
    device = next(model.parameters()).device
    return F.log_softmax(model(as_tensor(np.ascontiguousarray(ctx)).to(device)), dim=-1)


def perplexity(model: NPLM, tokens, batch_size: int = 1024) -> float:
    """exp(mean negative log-likelihood) over every position of ``tokens`` that has n-1 words
    before it, with the full softmax (exact, also for a model trained by NCE or sampled
    softmax), evaluated ``batch_size`` positions at a time."""
    n = model.config.context
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for ctx, target, _ in _batches(tokens, n, batch_size):
                logp = _log_probs(model, ctx)
                t = as_tensor(target).to(logp.device)
                total -= float(logp.gather(1, t.unsqueeze(1)).sum().item())
                count += len(target)
    finally:
        model.train(was_training)
    return math.exp(total / count)


def _other_probs(other, ctx: np.ndarray, target: np.ndarray, start: int) -> np.ndarray:
    """The other model's probabilities of ``target`` in ``ctx``, shape (B,)."""
    if isinstance(other, _StreamProbs):
        return other.probs[start:start + len(target)]
    if hasattr(other, "next_distribution"):
        return np.array([np.asarray(other.next_distribution(tuple(int(w) for w in c)),
                                    dtype=np.float64)[t] for c, t in zip(ctx, target)])
    probs = backend.to_numpy(other._data) if isinstance(other, Tensor) else np.asarray(other)
    if probs.ndim == 1:  # one distribution for every position (e.g. a unigram model)
        return probs[target].astype(np.float64)
    return probs[np.arange(start, start + len(target)), target].astype(np.float64)


class _StreamProbs:
    """P_other(w_t | w_<t) for every scored position, from one call of the other model."""

    def __init__(self, other, tokens: np.ndarray, n: int) -> None:
        lp = other.log_prob(tokens[n - 1:], history=tokens[:n - 1], reduction="none")
        self.probs = np.exp(np.asarray(lp, dtype=np.float64))


def mix(model: NPLM, other, context, weight: float = 0.5) -> np.ndarray:
    """The mixture weight·P_NPLM + (1-weight)·P_other of next-word distributions (the paper's
    "mix": 0.5 each with an interpolated trigram), for a batch of contexts (B, n-1).

    ``other`` is an object with ``next_distribution(context)`` (the tuple of the n-1 previous
    ids, oldest first; it returns |V| probabilities), or an array of probabilities: (|V|,) for
    every context, or (B, |V|) one row per context. Returns a NumPy array (B, |V|).
    """
    ctx = np.asarray(backend.to_numpy(context._data) if isinstance(context, Tensor) else context)
    with no_grad():
        p = np.exp(backend.to_numpy(_log_probs(model, ctx)._data).astype(np.float64))
    if hasattr(other, "next_distribution"):
        q = np.stack([np.asarray(other.next_distribution(tuple(int(w) for w in c)),
                                 dtype=np.float64) for c in ctx])
    else:
        q = np.asarray(backend.to_numpy(other._data) if isinstance(other, Tensor) else other,
                       dtype=np.float64)
    return weight * p + (1.0 - weight) * q


def mixture_perplexity(model: NPLM, other, tokens, weight: float = 0.5,
                       batch_size: int = 1024) -> float:
    """Perplexity of weight·P_NPLM + (1-weight)·P_other over the positions of ``tokens`` that
    have n-1 words before them (the positions ``perplexity`` scores).

    ``other``: an n-gram model with ``log_prob(sequence, history=, reduction="none")``
    (``flowgrad.models.KneserNey``, ``InterpolatedNGram``: the whole stream is scored in one
    call, each word given the words before it); else an object with
    ``next_distribution(context)`` (called once per position with the tuple of the n-1
    previous ids); or probabilities: (|V|,) for every position, or (N, |V|) one row per scored
    position.
    """
    n = model.config.context
    if callable(getattr(other, "log_prob", None)) and not isinstance(other, (Tensor, np.ndarray)):
        ids = backend.to_numpy(tokens._data) if isinstance(tokens, Tensor) else np.asarray(tokens)
        other = _StreamProbs(other, ids.astype(np.int64), n)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for ctx, target, start in _batches(tokens, n, batch_size):
                logp = backend.to_numpy(_log_probs(model, ctx)._data).astype(np.float64)
                p = np.exp(logp[np.arange(len(target)), target])
                q = _other_probs(other, ctx, target, start)
                total -= float(np.log(weight * p + (1.0 - weight) * q).sum())
                count += len(target)
    finally:
        model.train(was_training)
    return math.exp(total / count)


__all__ = ["NPLM", "NPLMConfig", "InverseTimeDecay", "paper_lr_schedule", "nplm_parameter_count",
           "context_windows", "ngram_dataset", "perplexity", "mix", "mixture_perplexity"]

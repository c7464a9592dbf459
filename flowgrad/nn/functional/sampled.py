"""Training objectives for large output vocabularies that never compute the full softmax
(lecture: "Classifiers for modeling distributions"): noise-contrastive estimation (Gutmann &
Hyvärinen 2010, 2012; Mnih & Teh 2012 for language models) and sampled softmax (Jean, Cho,
Memisevic & Bengio 2015; TensorFlow's ``sampled_softmax_loss``), plus the exact full-softmax
log-probability to evaluate what they trained.

Both losses take ``input`` (B, F) (the features the output layer reads), the output layer's
``weight`` (|V|, F) and ``bias`` (|V|,), ``target`` (B,), ``num_sampled`` = k, and the noise
distribution ``noise`` (|V|,) (probabilities or counts; ``unigram_noise`` builds unigram^power;
it must be positive for every word that occurs as a target, since log q(target) enters the loss).
Only the rows of ``weight`` and ``bias`` for the targets and the k noise words are gathered:
the cost is O(B (k+1) F), not O(B |V| F). The k noise words are drawn once per call with
replacement and shared by the whole batch (as TensorFlow does); pass ``samples`` (k,) or
(B, k) to fix them (per-example samples when 2-D). Composed of existing ops (index_select,
logsigmoid, logsumexp), so every gradient comes from the op library.
"""

from __future__ import annotations

import numpy as np

from ... import backend
from ...autograd.grad_mode import no_grad
from ...errors import ShapeError
from ...tensor import Tensor
from ._util import _shape, _tensor
from .activation import log_softmax, logsigmoid
from .loss import _reduce, _reduction

__all__ = ["unigram_noise", "sample_noise", "nce_loss", "sampled_softmax_loss",
           "full_log_prob"]


def unigram_noise(counts, power: float = 1.0) -> Tensor:
    """The noise distribution q(w) ∝ count(w)^power as a float tensor summing to 1
    (power 0.75: Mikolov et al. 2013's smoothed unigram; 1: Mnih & Teh 2012's unigram)."""
    c = np.asarray(backend.to_numpy(counts._data) if isinstance(counts, Tensor) else counts,
                   dtype=np.float64)
    if c.ndim != 1 or np.any(c < 0) or not np.any(c > 0):
        raise ValueError("unigram_noise: counts must be a 1-D array of non-negative counts "
                         "with at least one positive entry")
    q = c ** power
    return Tensor._wrap((q / q.sum()).astype(np.float32), None, False)


def sample_noise(noise: Tensor, num_sampled: int, generator=None,
                 batch_size: int | None = None) -> Tensor:
    """k word ids drawn with replacement from ``noise`` (int64, shape (k,), or (B, k) with
    ``batch_size``), from ``generator`` (a flowgrad Generator, an int seed) or the global stream."""
    from ...creation import multinomial

    noise = _tensor(noise)
    if batch_size is None:
        return multinomial(noise.double(), num_sampled, replacement=True, generator=generator)
    flat = multinomial(noise.double(), num_sampled * batch_size, replacement=True,
                       generator=generator)
    return flat.reshape(batch_size, num_sampled)


def _check(name, input, weight, bias, target, noise):
    if input.ndim != 2 or weight.ndim != 2 or input.shape[1] != weight.shape[1]:
        raise ShapeError(f"{name}: input (B, F) and weight (num_classes, F) must agree, got "
                         f"input {_shape(input)} and weight {_shape(weight)}")
    if bias is not None and _shape(bias) != (weight.shape[0],):
        raise ShapeError(f"{name}: bias must have shape ({weight.shape[0]},), got {_shape(bias)}")
    if _shape(target) != (input.shape[0],) or target.dtype.kind not in "iu":
        raise ShapeError(f"{name}: target must be {input.shape[0]} integer class ids (B,), got "
                         f"{target.dtype} of shape {_shape(target)}")
    if _shape(noise) != (weight.shape[0],):
        raise ShapeError(f"{name}: noise must be a distribution over the {weight.shape[0]} "
                         f"classes, got shape {_shape(noise)}")


def _log_q(noise: Tensor, dtype) -> Tensor:
    """log q(w) as a constant (normalised, zeros become -inf)."""
    xp = noise.xp
    q = noise._data.astype(np.float64)
    with np.errstate(divide="ignore"):
        logq = xp.log(q / q.sum())
    return Tensor._wrap(logq.astype(dtype), None, False)


def _scores(input, weight, bias, target, samples):
    """s(target) (B,) and s(noise) (B, k) = h·w_j + b_j on the gathered rows only."""
    w_t = weight.index_select(0, target)
    s_t = (input * w_t).sum(-1)
    if samples.ndim == 1:
        w_n = weight.index_select(0, samples)                           # (k, F)
        s_n = input.matmul(w_n.t())                                     # (B, k)
    else:
        w_n = weight.index_select(0, samples.reshape(-1)).reshape(samples.shape + (-1,))
        s_n = w_n.bmm(input.unsqueeze(-1)).squeeze(-1)                  # (B, k)
    if bias is not None:
        s_t = s_t + bias.index_select(0, target)
        b_n = bias.index_select(0, samples.reshape(-1)).reshape(samples.shape)
        s_n = s_n + b_n
    return s_t, s_n


def _samples(samples, noise, num_sampled, generator, batch):
    if samples is None:
        samples = sample_noise(noise, num_sampled, generator)
    samples = _tensor(samples)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[0] != batch) \
            or samples.shape[-1] != num_sampled:
        raise ShapeError(f"samples of shape {_shape(samples)}: expected ({num_sampled},) or "
                         f"({batch}, {num_sampled}) noise word ids (num_sampled={num_sampled})")
    return samples.long()


def _hits(target, samples):
    """True where a noise sample equals the row's target (B, k)."""
    t = target._data[:, None]
    s = samples._data if samples.ndim == 2 else samples._data[None, :]
    return Tensor._wrap(t == s, None, False)


def _corrected_scores(op: str, input, weight, bias, target, num_sampled, noise, generator,
                      samples):
    """The checked target, the samples (B, k) or (k,), and the scores of the target and of the
    samples less log(k q(w)), the expected count of w among k draws with replacement: the
    log-ratio both sampled objectives start from."""
    input, target, noise = _tensor(input), _tensor(target), _tensor(noise)
    _check(op, input, weight, bias, target, noise)
    samples = _samples(samples, noise, num_sampled, generator, input.shape[0])
    s_t, s_n = _scores(input, weight, bias, target, samples)
    log_kq = _log_q(noise, input.dtype) + float(np.log(samples.shape[-1]))
    logit_t = s_t - log_kq.index_select(0, target)
    logit_n = s_n - log_kq.index_select(0, samples.reshape(-1)).reshape(samples.shape)
    return target, samples, logit_t, logit_n


def nce_loss(input: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor,
             num_sampled: int, noise: Tensor, *, generator=None, samples=None,
             log_z: float | Tensor = 0.0, remove_accidental_hits: bool = False,
             reduction: str = "mean") -> Tensor:
    """Noise-contrastive estimation: a logistic classifier of data against k noise words.

    With s(w) = input·weight[w] + bias[w] - log_z the model's log of unnormalised
    probability, and Δ(w) = s(w) - log(k q(w)) the log-ratio of data to noise density,

        loss = -log σ(Δ(target)) - Σ_{j=1..k} log σ(-Δ(noise_j))   (per example)

    (Gutmann & Hyvärinen 2012, eq. 8 with ν = k; Mnih & Teh 2012, eq. 7). ``log_z`` is the
    normaliser: a constant, or a learnable scalar Tensor (Gutmann & Hyvärinen learn it as the
    parameter c). Mnih & Teh fixed it at 0 (each context's distribution is self-normalised),
    which is the default here. ``remove_accidental_hits`` drops the noise terms that drew the
    target itself (TensorFlow's option, off by default in NCE as there).

    At the optimum exp(s) approaches the true next-word probability; evaluate with the full
    softmax (``full_log_prob``). Returns the mean (``reduction``) over the batch.
    """
    target, samples, logit_t, logit_n = _corrected_scores(
        "nce_loss", input, weight, bias, target, num_sampled, noise, generator, samples)
    delta_t, delta_n = logit_t - log_z, logit_n - log_z
    noise_terms = logsigmoid(-delta_n)
    if remove_accidental_hits:
        noise_terms = noise_terms.masked_fill(_hits(target, samples), 0.0)
    loss = -logsigmoid(delta_t) - noise_terms.sum(-1)
    return _reduce(loss, _reduction("nce_loss", None, None, reduction))


def sampled_softmax_loss(input: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor,
                         num_sampled: int, noise: Tensor, *, generator=None, samples=None,
                         remove_accidental_hits: bool = True,
                         reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy over the target and k sampled words, with the logQ correction
    (Jean et al. 2015; TensorFlow's ``sampled_softmax_loss``):

        logits = [s(target) - log Q(target), s(noise_1) - log Q(noise_1), ...],
        loss = -log_softmax(logits)[0],   Q(w) = k q(w) (expected count, with replacement)

    With ``remove_accidental_hits`` (the default, as TensorFlow) a noise sample equal to the
    row's target gets logit -inf, so the target does not compete with itself.
    """
    target, samples, logit_t, logit_n = _corrected_scores(
        "sampled_softmax_loss", input, weight, bias, target, num_sampled, noise, generator,
        samples)
    if remove_accidental_hits:
        logit_n = logit_n.masked_fill(_hits(target, samples), float("-inf"))
    logits = _cat1(logit_t, logit_n)
    loss = logits.logsumexp(-1) - logit_t
    return _reduce(loss, _reduction("sampled_softmax_loss", None, None, reduction))


def _cat1(first: Tensor, rest: Tensor) -> Tensor:
    from ...tensor_functions import cat

    return cat([first.unsqueeze(1), rest], dim=1)


def full_log_prob(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                  target: Tensor | None = None, chunk_size: int = 1024) -> Tensor:
    """Exact log-probabilities under the full softmax over all |V| classes, ``chunk_size``
    rows at a time so that at most chunk_size × |V| scores exist at once; no graph is recorded.

    Returns log p(target) (B,) when ``target`` is given, else all log-probabilities (B, |V|).
    This is how an NCE- or sampled-softmax-trained model is evaluated (Mnih & Teh 2012 report
    perplexities normalised exactly at test time).
    """
    input = _tensor(input)
    if input.ndim != 2 or weight.ndim != 2 or input.shape[1] != weight.shape[1]:
        raise ShapeError(f"full_log_prob: input (B, F) and weight (num_classes, F) must agree, "
                         f"got input {_shape(input)} and weight {_shape(weight)}")
    from ...tensor_functions import cat
    from .linear import linear

    parts = []
    with no_grad():
        for start in range(0, input.shape[0], chunk_size):
            logp = log_softmax(linear(input[start:start + chunk_size], weight, bias), dim=-1)
            if target is not None:
                t = _tensor(target)[start:start + chunk_size].long()
                logp = logp.gather(1, t.unsqueeze(1)).squeeze(1)
            parts.append(logp)
    return cat(parts, dim=0) if len(parts) > 1 else parts[0]

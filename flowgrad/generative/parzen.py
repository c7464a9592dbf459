"""Parzen-window log-likelihood of a generative model, the evaluation of Goodfellow et al.,
"Generative Adversarial Nets" (NeurIPS 2014), section 5 and Table 1, as its official code
(goodfeli/adversarial, parzen_ll.py) computes it:

* a Gaussian kernel with one width sigma for every dimension is placed on each of the model's
  samples mu_1..mu_m: log p(x) = log (1/m) sum_j N(x; mu_j, sigma^2 I)
  = logsumexp_j(-||x - mu_j||^2 / (2 sigma^2)) - log m - (d/2) log(2 pi sigma^2);
* sigma is the value of ``np.logspace(-1, 0, 10)`` with the highest mean log-likelihood on a
  validation slice (MNIST train[50000:60000][:1000] in the paper's code);
* the result is the mean test log-likelihood and its standard error std / sqrt(n) (NumPy's
  std, ddof=0), over the 10,000 test digits for MNIST, with 10,000 generator samples.

Everything is computed in float64, by batches of test points, with log-sum-exp. The squared
distances do not depend on sigma, so all candidate widths are scored from one pass.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError

__all__ = ["PAPER_SIGMAS", "parzen_log_likelihood", "parzen_sigma_scores",
           "select_parzen_sigma", "parzen_evaluate"]

PAPER_SIGMAS = np.logspace(-1, 0, 10)


def _points(a, name: str) -> np.ndarray:
    """``a`` as a float64 (n, d) array: a flowgrad Tensor or array, trailing dimensions
    flattened (images (n, 1, 28, 28) become (n, 784))."""
    if hasattr(a, "detach") and hasattr(a, "numpy"):
        a = a.detach().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim < 2:
        raise ShapeError(f"parzen: {name} must have shape (points, dimensions...) with at "
                         f"least 2 dimensions, got {arr.shape}")
    arr = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:])))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"parzen: {name} is empty (shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError(f"parzen: {name} contains NaN or infinite values")
    return arr


def _sigmas(sigmas) -> np.ndarray:
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"parzen: sigma must be a positive number or a 1-D list of them, got "
                         f"shape {s.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"parzen: every sigma must be finite and > 0, got {s.tolist()}")
    return s


def _check_pair(samples: np.ndarray, x: np.ndarray, x_name: str) -> None:
    m, d = samples.shape
    if x.shape[1] != d:
        raise ShapeError(f"parzen: {x_name} has {x.shape[1]} dimensions (shape {x.shape}), the "
                         f"samples {d} (shape {samples.shape})")
    if m < d:
        raise ValueError(f"parzen: {m} samples for {d} dimensions (samples of shape "
                         f"{samples.shape}); a Parzen estimate needs at least as many samples "
                         f"as dimensions (the paper used 10,000 for MNIST's 784)")


def _log_likelihoods(samples: np.ndarray, x: np.ndarray, sigmas: np.ndarray,
                     batch_size: int) -> np.ndarray:
    """(len(sigmas), len(x)) log-likelihoods of ``x`` under each Parzen window."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"parzen: batch_size must be a positive integer, got {batch_size!r}")
    m, d = samples.shape
    sq_samples = (samples ** 2).sum(1)
    log_norm = np.log(m) + 0.5 * d * np.log(2 * np.pi * sigmas ** 2)  # (S,)
    out = np.empty((len(sigmas), len(x)))
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        # ||x - mu||^2 by expansion: (b, m), clipped at 0 against rounding
        sq = (xb ** 2).sum(1)[:, None] + sq_samples[None, :] - 2.0 * (xb @ samples.T)
        np.maximum(sq, 0.0, out=sq)
        for k, sigma in enumerate(sigmas):
            a = sq * (-0.5 / sigma ** 2)
            top = a.max(1)
            lse = top + np.log(np.exp(a - top[:, None]).sum(1))
            out[k, start:start + len(xb)] = lse - log_norm[k]
    return out


def parzen_log_likelihood(samples, x, sigma: float, batch_size: int = 100) -> np.ndarray:
    """Per-point log-likelihood (n,) float64 of ``x`` (n, d...) under the Parzen window of
    width ``sigma`` on ``samples`` (m, d...), computed ``batch_size`` points at a time."""
    s = _sigmas(sigma)
    if s.size != 1:
        raise ValueError(f"parzen_log_likelihood: sigma must be one number, got {s.tolist()}")
    mu, pts = _points(samples, "samples"), _points(x, "x")
    _check_pair(mu, pts, "x")
    return _log_likelihoods(mu, pts, s, batch_size)[0]


def parzen_sigma_scores(samples, valid, sigmas=PAPER_SIGMAS, batch_size: int = 100
                        ) -> np.ndarray:
    """Mean validation log-likelihood for each sigma in ``sigmas`` (len(sigmas),)."""
    s = _sigmas(sigmas)
    mu, pts = _points(samples, "samples"), _points(valid, "valid")
    _check_pair(mu, pts, "valid")
    return _log_likelihoods(mu, pts, s, batch_size).mean(1)


def select_parzen_sigma(samples, valid, sigmas=PAPER_SIGMAS, batch_size: int = 100) -> float:
    """The sigma of ``sigmas`` with the highest mean log-likelihood of ``valid`` (the first
    such on ties, as np.argmax in the paper's code)."""
    s = _sigmas(sigmas)
    return float(s[int(np.argmax(parzen_sigma_scores(samples, valid, s, batch_size)))])


def parzen_evaluate(samples, valid, test, sigmas=PAPER_SIGMAS, sigma: float | None = None,
                    batch_size: int = 100) -> dict:
    """The paper's protocol: choose sigma on ``valid`` among ``sigmas`` (or use ``sigma`` when
    given, ``valid`` may then be None), then the mean log-likelihood of ``test`` and its
    standard error std / sqrt(n).

    Returns {"mean", "stderr", "sigma", "per_sigma" (list of (sigma, mean validation
    log-likelihood)), "n_samples", "n_valid", "n_test", "dim", "per_dim" (mean / dim)}."""
    mu, pts = _points(samples, "samples"), _points(test, "test")
    _check_pair(mu, pts, "test")
    per_sigma, n_valid = [], 0
    if sigma is None:
        if valid is None:
            raise ValueError("parzen_evaluate: give a validation set to choose sigma on, or "
                             "sigma")
        s = _sigmas(sigmas)
        scores = parzen_sigma_scores(mu, valid, s, batch_size)
        per_sigma = [(float(a), float(b)) for a, b in zip(s, scores)]
        sigma = float(s[int(np.argmax(scores))])
        n_valid = len(_points(valid, "valid"))
    ll = _log_likelihoods(mu, pts, _sigmas(sigma), batch_size)[0]
    mean = float(ll.mean())
    return {"mean": mean, "stderr": float(ll.std() / np.sqrt(len(ll))), "sigma": float(sigma),
            "per_sigma": per_sigma, "n_samples": len(mu), "n_valid": n_valid,
            "n_test": len(ll), "dim": mu.shape[1], "per_dim": mean / mu.shape[1]}

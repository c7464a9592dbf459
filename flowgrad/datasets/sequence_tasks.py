"""Generated sequence tasks for long-term dependencies (lecture: "Learning Long-Term Dependencies
with Gradient Descent is Difficult", "How to store 1 bit?").

``latching``: the minimal task of Bengio, Simard & Frasconi (1994): the class is given by the
first ``L`` inputs only and must be kept through the noise that follows, up to step ``T``.
``adding``: the adding problem of Hochreiter & Schmidhuber (1997): the sum of two marked values
of a long random sequence. Arrays are NumPy, batch first: inputs (N, T, features).
"""

from __future__ import annotations

import numpy as np

__all__ = ["latching", "latching_splits", "adding"]


def latching(n: int, T: int, L: int = 1, noise: float = 0.2, signal: str = "bit",
             noise_kind: str = "uniform", seed: int = 0, dtype=np.float32):
    """The latching ("store one bit") task: ``n`` sequences of length ``T``, one feature.

    Each sequence carries a bit b (balanced at random). Its first ``L`` steps present it, the
    remaining ``T - L`` steps are pure noise; the label is b, so a model reading the sequence
    to its end must have latched the bit for ``T - L`` steps.

    Args:
        n: number of sequences; T: total length (T > L); L: steps that present the bit.
        noise: the noise level: uniform on [-noise, noise] (``noise_kind="uniform"``, bounded
            noise as in Bengio et al. 1994), or Gaussian with standard deviation ``noise``
            (``"gaussian"``). It is added to every step, the first ``L`` included.
        signal: ``"bit"``: the first ``L`` values are 2b - 1 (that is, -1 or +1); ``"sign"``:
            they are (2b - 1) * u with u ~ U(0, 1) drawn per sequence, so the label is the sign
            of the (noise-free) first value.
        seed: the generator's seed (the same seed gives the same arrays).

    Returns ``(x, y)``: x of shape (n, T, 1) and ``dtype``, y int64 of shape (n,) in {0, 1}.
    """
    if T < 1 or not 1 <= L <= T:
        raise ValueError(f"latching: need T >= 1 and 1 <= L <= T, got T={T}, L={L}")
    if n < 1:
        raise ValueError(f"latching: n must be >= 1, got {n}")
    if noise < 0:
        raise ValueError(f"latching: noise must be >= 0, got {noise}")
    if signal not in ("bit", "sign"):
        raise ValueError(f"latching: signal must be 'bit' or 'sign', got {signal!r}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    sign = 2.0 * y - 1.0
    amplitude = rng.uniform(0.0, 1.0, size=n) if signal == "sign" else np.ones(n)
    if noise_kind == "uniform":
        x = rng.uniform(-noise, noise, size=(n, T))
    elif noise_kind == "gaussian":
        x = rng.normal(0.0, noise, size=(n, T))
    else:
        raise ValueError(f"latching: noise_kind must be 'uniform' or 'gaussian', got "
                         f"{noise_kind!r}")
    x[:, :L] += (sign * amplitude)[:, None]
    return x[:, :, None].astype(dtype), y.astype(np.int64)


def latching_splits(T: int, n_train: int = 512, n_valid: int = 512, n_test: int = 1000,
                    seed: int = 0, **kwargs):
    """Independent train, validation and test sets of :func:`latching` (different seeds drawn
    from ``seed``). Returns ((x, y), (x, y), (x, y))."""
    seeds = np.random.SeedSequence(seed).generate_state(3)
    return tuple(latching(n, T, seed=int(s), **kwargs)
                 for n, s in zip((n_train, n_valid, n_test), seeds))


def adding(n: int, T: int, seed: int = 0, dtype=np.float32):
    """The adding problem (Hochreiter & Schmidhuber 1997, experiment 4): two features per step,
    a value ~ U(0, 1) and a marker; exactly two steps are marked (1.0), one in the first half
    and one anywhere after it (the others 0.0). The target is the sum of the two marked values.

    Returns ``(x, y)``: x of shape (n, T, 2), y of shape (n,), both ``dtype``.
    """
    if T < 2 or n < 1:
        raise ValueError(f"adding: need T >= 2 and n >= 1, got T={T}, n={n}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, T))
    first = rng.integers(0, max(1, T // 2), size=n)
    second = first + 1 + (rng.random(n) * (T - 1 - first)).astype(np.int64)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype(dtype), y.astype(dtype)

"""Noise injection with an annealed level (lecture: "Injecting Noise in a Nonsmooth Net":
noise convolves the objective with the noise kernel, C(θ) * N(ε) ≈ mean_ε C(θ − ε), a smoothed
objective that is easier to optimize, and "gradually reducing the noise level = simulated
annealing"; "Continuation Methods and Simulated Annealing": track the minimum while the
objective is made gradually less smooth).

- ``GradientNoise`` adds N(0, σ²_t) to every gradient, σ²_t = η/(1+t)^γ (Neelakantan et al.
  2015, "Adding Gradient Noise Improves Learning for Very Deep Networks").
- ``WeightNoise`` evaluates the loss and its gradient at perturbed weights θ + ε, ε ~ N(0, σ²_t),
  then restores θ: a stochastic gradient of the smoothed objective of the slide.
- ``NoiseSchedule`` is the annealed σ²_t both use (polynomial, exponential, linear, cosine or
  constant).

Draws come from ``backend.rng(xp)``, so ``fg.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..errors import GraphError
from ..tensor import Tensor
from .regularizers import _params

__all__ = ["NoiseSchedule", "GradientNoise", "WeightNoise"]

_KINDS = ("polynomial", "exponential", "linear", "cosine", "constant")


class NoiseSchedule:
    """The annealed noise variance σ²(t) at step t = 0, 1, 2, ...

    - ``polynomial``: η/(1+t)^γ (Neelakantan et al. 2015: η ∈ {0.01, 0.3, 1}, γ = 0.55)
    - ``exponential``: η·γ^t
    - ``linear``: from η to ``final`` over ``total_steps``, then ``final``
    - ``cosine``: final + (η − final)(1 + cos(π·min(t, T)/T))/2, T = ``total_steps``
    - ``constant``: η

    Example:
        >>> s = NoiseSchedule(eta=0.01, gamma=0.55)
        >>> s.variance(0), s.std(99)
        (0.01, 0.0079...)
    """

    def __init__(self, eta: float = 0.01, gamma: float = 0.55, kind: str = "polynomial",
                 total_steps: int | None = None, final: float = 0.0) -> None:
        if kind not in _KINDS:
            raise ValueError(f"NoiseSchedule: unknown kind {kind!r} (expected one of {_KINDS})")
        if eta < 0:
            raise ValueError(f"NoiseSchedule: the variance eta must be >= 0, got {eta}")
        if kind in ("linear", "cosine") and not total_steps:
            raise ValueError(f"NoiseSchedule: kind={kind!r} needs total_steps (the number of "
                             "steps over which the noise is annealed)")
        self.eta = float(eta)
        self.gamma = float(gamma)
        self.kind = kind
        self.total_steps = total_steps
        self.final = float(final)

    def variance(self, t: int) -> float:
        """σ²(t)."""
        kind, eta = self.kind, self.eta
        if kind == "polynomial":
            return eta / (1.0 + t) ** self.gamma
        if kind == "exponential":
            return eta * self.gamma ** t
        if kind == "constant":
            return eta
        frac = min(t, self.total_steps) / self.total_steps
        if kind == "linear":
            return eta + (self.final - eta) * frac
        return self.final + (eta - self.final) * (1.0 + math.cos(math.pi * frac)) / 2.0

    __call__ = variance

    def std(self, t: int) -> float:
        """σ(t) = √σ²(t)."""
        return math.sqrt(self.variance(t))

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def __repr__(self) -> str:
        return (f"NoiseSchedule(eta={self.eta}, gamma={self.gamma}, kind={self.kind!r}, "
                f"total_steps={self.total_steps}, final={self.final})")


def _tensors(params) -> list[Tensor]:
    if hasattr(params, "param_groups"):  # an Optimizer
        params = params.param_groups
    return _params(params)


def _gaussian(like, std: float):
    """N(0, std²) of ``like``'s shape and dtype, on its device, from flowgrad's seeded stream."""
    xp = backend.get_array_module(like)
    dtype = like.dtype if like.dtype in (np.float32, np.float64) else np.float32
    if xp is np:
        z = backend.rng(np).standard_normal(like.shape, dtype=dtype)
    else:
        with like.device:
            z = backend.rng(xp).standard_normal(like.shape, dtype=dtype)
    xp.multiply(z, std, out=z)
    return z if z.dtype == like.dtype else z.astype(like.dtype)


class GradientNoise:
    """Adds N(0, σ²_t) noise to every parameter's ``.grad`` at each ``step()``, with
    σ²_t = eta/(1+t)^gamma (Neelakantan et al. 2015) or any ``NoiseSchedule``; call it between
    ``backward()`` and ``optimizer.step()``. Parameters without a gradient are skipped.

    Example:
        >>> noise = GradientNoise(model.parameters(), eta=0.01, gamma=0.55)
        >>> loss.backward(); noise.step(); opt.step()
    """

    def __init__(self, params, eta: float = 0.01, gamma: float = 0.55,
                 schedule: NoiseSchedule | None = None) -> None:
        self.params = _tensors(params)
        self.schedule = schedule if schedule is not None else NoiseSchedule(eta, gamma)
        self.t = 0

    @property
    def variance(self) -> float:
        """σ² of the next step's noise."""
        return self.schedule.variance(self.t)

    @property
    def std(self) -> float:
        return self.schedule.std(self.t)

    def step(self) -> None:
        """Add this step's noise to the gradients (in place) and advance t."""
        std = self.std
        for p in self.params:
            g = p.grad
            if g is None:
                continue
            xp = backend.get_array_module(g._data)
            xp.add(g._data, _gaussian(g._data, std), out=g._data)
            g._version += 1
        self.t += 1

    def state_dict(self) -> dict:
        return {"t": self.t, "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.t = int(state_dict["t"])
        self.schedule.load_state_dict(state_dict["schedule"])


class WeightNoise:
    """Evaluates at perturbed weights θ + ε, ε ~ N(0, σ²_t), and restores θ exactly afterwards
    (the smoothed objective of the slide "Injecting Noise"). σ²_t = std²/(1+t)^gamma (constant
    for gamma=0) or any ``NoiseSchedule``; t advances at each ``perturb()``.

    Use as a context manager around forward and backward, then step the optimizer outside it
    (the gradient taken at θ + ε updates θ):

    Example:
        >>> wn = WeightNoise(params, std=0.05, gamma=0.55)
        >>> with wn:
        ...     loss = criterion(model(x), y); loss.backward()
        >>> opt.step()
    """

    def __init__(self, params, std: float = 0.01, gamma: float = 0.0,
                 schedule: NoiseSchedule | None = None) -> None:
        self.params = _tensors(params)
        self.schedule = schedule if schedule is not None else NoiseSchedule(std * std, gamma)
        self.t = 0
        self._saved: list | None = None
        self._buffers: list | None = None
        self._versions: list | None = None

    @property
    def std(self) -> float:
        """σ of the next perturbation."""
        return self.schedule.std(self.t)

    @property
    def perturbed(self) -> bool:
        return self._saved is not None

    def perturb(self) -> None:
        """θ ← θ + ε (in place), remembering θ; advances t."""
        if self._saved is not None:
            raise GraphError("WeightNoise.perturb: the weights are already perturbed; call "
                             "restore() (or leave the `with` block) first")
        std = self.std
        if self._buffers is None or any(b.shape != p.shape or b.dtype != p.dtype
                                        or type(b) is not type(p._data)
                                        for b, p in zip(self._buffers, self.params)):
            self._buffers = [p._data.copy() for p in self.params]
        for p, buf in zip(self.params, self._buffers):
            xp = backend.get_array_module(p._data)
            xp.copyto(buf, p._data)
            xp.add(p._data, _gaussian(p._data, std), out=p._data)
            p._version += 1
        self._saved = self._buffers
        self._versions = [p._version for p in self.params]
        self.t += 1

    def restore(self) -> None:
        """θ ← the weights before ``perturb()``, bit for bit."""
        if self._saved is None:
            raise GraphError("WeightNoise.restore: the weights are not perturbed; call "
                             "perturb() (or enter the `with` block) first")
        changed = [tuple(p.shape) for p, v in zip(self.params, self._versions)
                   if p._version != v]
        for p, buf in zip(self.params, self._saved):
            backend.get_array_module(p._data).copyto(p._data, buf)
            p._version += 1
        self._saved = None
        if changed:
            raise GraphError(f"WeightNoise.restore: parameters of shapes {changed} were modified "
                             "in place while perturbed (optimizer.step() inside the `with` "
                             "block?), and restoring undid that change; call optimizer.step() "
                             "after leaving the block")

    def __enter__(self) -> WeightNoise:
        self.perturb()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            if self._saved is not None:
                self._versions = [p._version for p in self.params]
                self.restore()
            return
        self.restore()

    def state_dict(self) -> dict:
        return {"t": self.t, "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.t = int(state_dict["t"])
        self.schedule.load_state_dict(state_dict["schedule"])

"""Seeded random streams for samplers and splits: PyTorch's ``torch.Generator`` on NumPy's PCG64.

A ``Generator`` is a checkpointable stream: ``get_state()``/``set_state()`` (or
``state_dict()``/``load_state_dict()``) save and restore it exactly. ``default_generator`` is a
view of flowgrad's global stream (``backend.rng``, reseeded by ``fg.manual_seed``), so code that
passes no generator is reproducible under ``fg.manual_seed`` and resumable with
``get_rng_state()``/``set_rng_state()``.
"""

from __future__ import annotations

import copy
import os

import numpy as np

from ... import backend

_DEFAULT_SEED = 67280421310721  # torch.Generator()'s default seed
_SEED_RANGE = 1 << 64


class Generator:
    """A random stream with PyTorch's Generator API (manual_seed, seed, initial_seed, get_state,
    set_state) drawing from a NumPy PCG64 bit generator."""

    def __init__(self, device="cpu") -> None:
        self.device = backend.normalize_device(device)  # draws happen on the host either way
        self._initial_seed = _DEFAULT_SEED
        self._np = np.random.default_rng(_DEFAULT_SEED)

    @classmethod
    def from_numpy(cls, gen: np.random.Generator) -> Generator:
        """Wrap an existing ``np.random.Generator`` (shared, not copied)."""
        if not isinstance(gen, np.random.Generator):
            raise TypeError(f"Generator.from_numpy: expected np.random.Generator, got "
                            f"{type(gen).__name__}")
        g = cls()
        g._np = gen
        g._initial_seed = None
        return g

    @property
    def numpy(self) -> np.random.Generator:
        """The ``np.random.Generator`` that this stream draws from."""
        return self._np

    def manual_seed(self, seed) -> Generator:
        """Reseed (any int in [-2**63, 2**64); negatives wrap as in PyTorch); returns self."""
        seed = _check_seed(seed, "Generator.manual_seed")
        self._initial_seed = seed
        self._np = np.random.default_rng(seed % _SEED_RANGE)
        return self

    def seed(self) -> int:
        """Reseed from OS entropy and return the new seed."""
        s = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int | None:
        return self._initial_seed

    def get_state(self) -> dict:
        """A copy of the stream's full state (a dict of ints; picklable and JSON-serialisable)."""
        return {"initial_seed": self._initial_seed,
                "bit_generator": copy.deepcopy(self._np.bit_generator.state)}

    def set_state(self, state: dict) -> Generator:
        """Restore a state from ``get_state()``; the stream then continues bit-identically."""
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise TypeError("Generator.set_state: expected the dict returned by get_state()")
        self._np.bit_generator.state = copy.deepcopy(state["bit_generator"])
        self._initial_seed = state.get("initial_seed")
        return self

    state_dict = get_state

    def load_state_dict(self, state: dict) -> None:
        self.set_state(state)

    def __repr__(self) -> str:
        return f"<flowgrad.Generator seed={self._initial_seed}>"


class _DefaultGenerator(Generator):
    """flowgrad's global stream (``backend.rng(numpy)``) seen as a Generator; ``fg.manual_seed``
    replaces the stream, so this view looks it up on every use."""

    def __init__(self) -> None:
        self.device = "cpu"

    @property
    def _np(self) -> np.random.Generator:  # type: ignore[override]
        return backend.rng(np)

    @property
    def _initial_seed(self):  # type: ignore[override]
        return backend.initial_seed()

    def manual_seed(self, seed) -> Generator:
        backend.manual_seed(_check_seed(seed, "default_generator.manual_seed"))
        return self

    def set_state(self, state: dict) -> Generator:
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise TypeError("set_rng_state: expected the dict returned by get_rng_state()")
        backend.set_initial_seed(state.get("initial_seed"))
        backend.rng(np).bit_generator.state = copy.deepcopy(state["bit_generator"])
        return self

    def __repr__(self) -> str:
        return f"<flowgrad.default_generator seed={self._initial_seed}>"


default_generator = _DefaultGenerator()


def get_rng_state() -> dict:
    """The state of flowgrad's global NumPy stream (what ``fg.manual_seed`` seeds)."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore flowgrad's global NumPy stream from ``get_rng_state()``."""
    default_generator.set_state(state)


def _check_seed(seed, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{where}: seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(1 << 63) <= seed < _SEED_RANGE:
        raise ValueError(f"{where}: seed must be in [-2**63, 2**64), got {seed}")
    return seed


def as_generator(generator, where: str = "generator") -> Generator | None:
    """Normalise a ``generator=`` argument: None (the global stream, looked up at each draw), a
    flowgrad Generator, an int seed (a new Generator seeded with it) or an np.random.Generator."""
    if generator is None or isinstance(generator, Generator):
        return generator
    if isinstance(generator, np.random.Generator):
        return Generator.from_numpy(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return Generator().manual_seed(int(generator))
    raise TypeError(f"{where}: expected None, a flowgrad Generator, an int seed or an "
                    f"np.random.Generator, got {type(generator).__name__}")


def numpy_stream(generator: Generator | None) -> np.random.Generator:
    """The NumPy stream to draw from: the generator's, or flowgrad's global one."""
    return backend.rng(np) if generator is None else generator.numpy

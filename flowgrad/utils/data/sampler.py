"""Samplers with PyTorch's ``torch.utils.data.sampler`` semantics, plus curriculum learning
(Bengio et al. 2009, "Curriculum Learning", ICML).

Checkpointing: every sampler here is stateful. At the start of an epoch a random sampler draws
one 63-bit *epoch seed* from its ``generator`` (or, with ``generator=None``, from flowgrad's
global stream, so ``fg.manual_seed`` fixes every epoch), and the whole epoch's order comes from
``np.random.default_rng(epoch_seed)``. ``state_dict()`` holds that seed, how many indices were
already handed out, and the generator's state; ``load_state_dict()`` makes the next
``__iter__`` finish that same epoch from where it stopped and later epochs continue exactly as
the uninterrupted run (with ``generator=None``, also save and restore the global stream with
``flowgrad.utils.data.get_rng_state()``/``set_rng_state()``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from ...tensor import Tensor
from .generator import as_generator, numpy_stream


class Sampler:
    """Iterates over dataset indices (PyTorch's Sampler)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class _StatefulSampler(Sampler):
    """A sampler whose epoch is an index array drawn from a recorded seed, so it can resume."""

    _random = True  # draws an epoch seed

    def _init_state(self) -> None:
        self._epoch_seed: int | None = None
        self._yielded = 0
        self._in_progress = False
        self._resume = False

    def _order(self, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def _start_epoch(self) -> None:
        """Hook: a fresh epoch begins (CurriculumSampler advances its epoch counter)."""

    def _epoch_indices(self) -> np.ndarray:
        """Begin (or, after load_state_dict, resume) an epoch; the indices still to come."""
        if self._resume:
            self._resume = False
        else:
            self._start_epoch()
            self._epoch_seed = (int(numpy_stream(self.generator).integers(0, 1 << 63))
                                if self._random else None)
            self._yielded = 0
            self._in_progress = True
        rng = None if self._epoch_seed is None else np.random.default_rng(self._epoch_seed)
        return self._order(rng)[self._yielded:]

    def _finish_epoch(self) -> None:
        self._in_progress = False
        self._epoch_seed = None
        self._yielded = 0

    def __iter__(self) -> Iterator:
        for i in self._epoch_indices().tolist():
            self._yielded += 1
            yield i
        self._finish_epoch()

    def state_dict(self) -> dict:
        """Where the current epoch stands (seed, indices handed out) and the generator's state."""
        gen = getattr(self, "generator", None)
        return {"in_progress": self._in_progress, "epoch_seed": self._epoch_seed,
                "yielded": self._yielded,
                "generator": None if gen is None else gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``: the next ``__iter__`` yields the rest of that epoch."""
        gen = getattr(self, "generator", None)
        if state.get("generator") is not None:
            if gen is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: the state has a "
                                 f"generator but this sampler draws from the global stream")
            gen.set_state(state["generator"])
        self._in_progress = bool(state["in_progress"])
        self._epoch_seed = state["epoch_seed"]
        self._yielded = int(state["yielded"])
        self._resume = self._in_progress


class SequentialSampler(_StatefulSampler):
    """0, 1, ..., len(data_source) - 1 (PyTorch's SequentialSampler)."""

    _random = False

    def __init__(self, data_source) -> None:
        self.data_source = data_source
        self.generator = None
        self._init_state()

    def _order(self, _rng) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(_StatefulSampler):
    """A random permutation each epoch, or ``num_samples`` draws with replacement (PyTorch's
    RandomSampler); without a generator it draws from flowgrad's global stream."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = as_generator(generator, "RandomSampler")
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if (not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool)
                or self.num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")
        self._init_state()

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _order(self, rng) -> np.ndarray:
        n, k = len(self.data_source), self.num_samples
        if self.replacement:
            return rng.integers(0, n, size=k, dtype=np.int64)
        if k <= n:
            return rng.permutation(n)[:k]
        parts = [rng.permutation(n) for _ in range(k // n)]
        parts.append(rng.permutation(n)[:k % n])
        return np.concatenate(parts)

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_StatefulSampler):
    """The given indices in a random order each epoch (PyTorch's SubsetRandomSampler)."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        self.generator = as_generator(generator, "SubsetRandomSampler")
        self._init_state()

    def _order(self, rng) -> np.ndarray:
        idx = self.indices._data if isinstance(self.indices, Tensor) else self.indices
        return np.asarray(idx, dtype=np.int64)[rng.permutation(len(self.indices))]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_StatefulSampler):
    """Indices drawn with probability proportional to ``weights`` (PyTorch's
    WeightedRandomSampler)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = np.asarray(weights.numpy() if isinstance(weights, Tensor) else weights,
                       dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and "
                             "not all zero")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} non-zero weights")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = as_generator(generator, "WeightedRandomSampler")
        self._init_state()

    def _order(self, rng) -> np.ndarray:
        p = self.weights / self.weights.sum()
        return rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size`` (PyTorch's BatchSampler)."""

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        it = iter(self.sampler)
        while True:
            batch = []
            for i in it:
                batch.append(i)
                if len(batch) == self.batch_size:
                    break
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                for _ in it:  # let the sampler see the end of its epoch
                    pass
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def linear_schedule(start: float = 0.25, epochs: int = 4) -> Callable[[int], float]:
    """Pool fraction growing linearly from ``start`` at epoch 0 to the whole set at ``epochs``."""
    if not 0 < start <= 1 or epochs < 0:
        raise ValueError(f"linear_schedule: need 0 < start <= 1 and epochs >= 0, got "
                         f"start={start}, epochs={epochs}")

    def schedule(epoch: int) -> float:
        return 1.0 if epoch >= epochs else start + (1.0 - start) * epoch / epochs

    return schedule


class CurriculumSampler(_StatefulSampler):
    """Curriculum learning (Bengio et al. 2009): each epoch samples only the easiest examples
    (lowest ``scores``), the pool growing by ``schedule(epoch)``, shuffled within the pool."""

    def __init__(self, scores, schedule: Callable[[int], float] | Sequence | None = None,
                 shuffle: bool = True, generator=None) -> None:
        s = np.asarray(scores.numpy() if isinstance(scores, Tensor) else scores)
        if s.ndim != 1 or len(s) == 0:
            raise ValueError(f"CurriculumSampler: scores must be a non-empty 1-D sequence (one "
                             f"difficulty per example, lower is easier), got shape {s.shape}")
        self.scores = s
        self.order = np.argsort(s, kind="stable")  # easiest first; ties by index
        self.schedule = linear_schedule() if schedule is None else schedule
        self.shuffle = shuffle
        self.generator = as_generator(generator, "CurriculumSampler")
        self._random = bool(shuffle)
        self.epoch = 0  # the epoch the next fresh iteration runs
        self._current_epoch = 0
        self._init_state()

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run curriculum epoch ``epoch``."""
        self.epoch = int(epoch)

    def pool_size(self, epoch: int) -> int:
        """How many of the easiest examples epoch ``epoch`` draws from."""
        sch = self.schedule
        if callable(sch):
            v = sch(epoch)
        else:
            v = sch[min(epoch, len(sch) - 1)]
        n = len(self.scores)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            k = int(v)
        else:
            v = float(v)
            if not 0 < v <= 1 or math.isnan(v):
                raise ValueError(f"CurriculumSampler: schedule({epoch}) = {v}; a fraction must "
                                 f"be in (0, 1] (or give an int count)")
            k = round(v * n)
        return min(max(k, 1), n)

    def pool(self, epoch: int) -> np.ndarray:
        """The indices in epoch ``epoch``'s pool, easiest first."""
        return self.order[:self.pool_size(epoch)]

    def _start_epoch(self) -> None:
        self._current_epoch = self.epoch
        self.epoch += 1

    def _order(self, rng) -> np.ndarray:
        pool = self.pool(self._current_epoch)
        return rng.permutation(pool) if self.shuffle else pool

    def __len__(self) -> int:
        return self.pool_size(self._current_epoch if self._in_progress else self.epoch)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(epoch=self.epoch, current_epoch=self._current_epoch)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.epoch = int(state["epoch"])
        self._current_epoch = int(state["current_epoch"])

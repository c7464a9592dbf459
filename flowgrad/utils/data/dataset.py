"""Datasets with PyTorch's ``torch.utils.data.dataset`` semantics: map-style and iterable
datasets, TensorDataset, Subset, ConcatDataset, ChainDataset and random_split."""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from ...errors import ShapeError
from ...tensor import Tensor, _index_arg, as_tensor
from .generator import as_generator, numpy_stream


class _AssertShapeError(ShapeError, AssertionError):
    """A ShapeError that ``except AssertionError`` (PyTorch's type here) also catches."""


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and (usually) ``__len__`` (PyTorch's
    torch.utils.data.Dataset)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: it implements ``__iter__`` (PyTorch's IterableDataset)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


def _row(t: Tensor, index):
    """``t[index]`` without recording a graph node when ``t`` needs no gradient."""
    if t.requires_grad:
        return t[index]
    a = t._data[_index_arg(index)]
    if isinstance(a, np.generic):
        a = np.asarray(a)
    return Tensor._wrap(a, None, False)


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension (PyTorch's TensorDataset);
    the DataLoader indexes whole batches of it at once."""

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else as_tensor(t) for t in tensors)
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise _AssertShapeError(f"TensorDataset: tensor {i} is 0-dimensional; every "
                                        f"tensor needs a first (sample) dimension")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise _AssertShapeError(f"TensorDataset: size mismatch between tensors: their "
                                    f"first dimensions are {sizes}; every tensor needs the same "
                                    f"number of samples")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(_row(t, index) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _take(self, indices: np.ndarray) -> list:
        """The batch at ``indices`` (an int array), one gather per tensor: the fast path."""
        out = []
        for t in self.tensors:
            if t.requires_grad:
                out.append(t[indices])
                continue
            a = t._data
            idx = indices if isinstance(a, np.ndarray) else t.xp.asarray(indices)
            out.append(Tensor._wrap(a.take(idx, axis=0), None, False))
        return out


class Subset(Dataset):
    """The dataset restricted to ``indices``, in that order (PyTorch's Subset)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets one after another (PyTorch's ConcatDataset)."""

    @staticmethod
    def cumsum(sequence) -> list[int]:
        return list(itertools.accumulate(len(e) for e in sequence))

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if len(self.datasets) == 0:
            raise _AssertShapeError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise _AssertShapeError("ConcatDataset does not support IterableDataset; "
                                        "use ChainDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        if d == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {len(self)}")
        sample = idx if d == 0 else idx - self.cumulative_sizes[d - 1]
        return self.datasets[d][sample]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another (PyTorch's ChainDataset)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise _AssertShapeError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def _split_lengths(n: int, lengths) -> list[int]:
    lengths = list(lengths)
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(math.floor(n * frac))
        for i in range(n - sum(sizes)):  # the remainder, round-robin, as PyTorch does
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(f"Length of split at index {i} is 0. "
                              f"This might result in an empty dataset.", stacklevel=3)
        return sizes
    for i, s in enumerate(lengths):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                             f"summing to 1; got {lengths[i]!r} at index {i}")
    return [int(s) for s in lengths]


def random_split(dataset: Dataset, lengths, generator=None) -> list[Subset]:
    """Split into non-overlapping Subsets of the given lengths, or fractions summing to 1 (floor
    each, then hand the remainder out round-robin), as PyTorch's random_split."""
    sizes = _split_lengths(len(dataset), lengths)
    if sum(sizes) != len(dataset):
        raise ValueError(f"Sum of input lengths does not equal the length of the input dataset! "
                         f"(lengths {sizes} sum to {sum(sizes)}, dataset has {len(dataset)})")
    gen = as_generator(generator, "random_split")
    indices = numpy_stream(gen).permutation(sum(sizes)).tolist()
    return [Subset(dataset, indices[end - size:end])
            for end, size in zip(itertools.accumulate(sizes), sizes)]

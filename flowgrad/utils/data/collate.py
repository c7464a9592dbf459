"""Batch assembly with PyTorch's ``default_collate``/``default_convert`` semantics: tensors,
NumPy arrays and numbers are stacked into flowgrad Tensors; mappings, namedtuples and sequences
are collated field by field (tuples become lists, as in PyTorch)."""

from __future__ import annotations

import collections.abc
import copy

import numpy as np

from ... import backend
from ...tensor import Tensor, tensor
from ...tensor_functions import stack

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def _is_numpy(x) -> bool:
    t = type(x)
    return t.__module__ in ("numpy", "cupy") and t.__name__ not in ("str_", "bytes_", "string_")


def _stack_arrays(arrays: list, what: str) -> Tensor:
    first = arrays[0]
    for i, a in enumerate(arrays):
        if a.shape != first.shape:
            raise RuntimeError(f"default_collate: stack expects each {what} to be equal size, "
                               f"but got {list(first.shape)} at entry 0 and {list(a.shape)} "
                               f"at entry {i}")
    if any(a.dtype != first.dtype for a in arrays):  # PyTorch's promotion, not NumPy's
        return stack([Tensor._wrap(a, None, False) for a in arrays])
    xp = backend.get_array_module(first)
    return Tensor._wrap(xp.stack(arrays), None, False)


def default_collate(batch):
    """Stack a list of samples into a batch (PyTorch's default_collate)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(t.requires_grad for t in batch):
            return stack(batch)  # keep the graph
        return _stack_arrays([t._data for t in batch], "tensor")
    if _is_numpy(elem):
        if isinstance(elem, np.ndarray) or type(elem).__name__ == "ndarray":
            if elem.dtype.kind in "OUSV":
                raise TypeError(_ERR.format(elem.dtype))
            return _stack_arrays(list(batch), "array")
        if getattr(elem, "shape", None) == ():  # NumPy scalars
            return Tensor._wrap(np.asarray(batch), None, False)
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)
    if isinstance(elem, int):  # bool and int
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(collated)
                return clone
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed  # PyTorch returns a list here too
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, v in enumerate(transposed):
                    clone[i] = v
                return clone
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Turn NumPy arrays and scalars into Tensors without batching (PyTorch's default_convert,
    used when ``batch_size=None``)."""
    if isinstance(data, Tensor):
        return data
    if _is_numpy(data):
        if isinstance(data, np.ndarray) and data.dtype.kind in "OUSV":
            return data
        return Tensor._wrap(np.asarray(data) if isinstance(data, np.generic) else data,
                            None, False)
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(data[k]) for k in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(converted)
                return clone
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data

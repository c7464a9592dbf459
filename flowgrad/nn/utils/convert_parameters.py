"""Parameters to and from one flat vector (PyTorch's ``parameters_to_vector`` and
``vector_to_parameters``)."""

from __future__ import annotations

from collections.abc import Iterable

from ...tensor import Tensor
from ...tensor_functions import cat

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated in order: shape (total numel,); recorded in
    the graph like any cat."""
    params = list(parameters)
    _same_device(params, "parameters_to_vector")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Make each parameter's data the matching slice of ``vec`` (views of it, as in PyTorch;
    the parameters keep their shapes)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a flowgrad Tensor, but got "
                        f"{type(vec).__name__}")
    params = list(parameters)
    _same_device(params, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not match "
                         f"the {total} elements of the parameters; expected shape ({total},)")
    pointer = 0
    for p in params:
        n = p.numel()
        p._data = vec._data[pointer:pointer + n].reshape(p.shape)
        pointer += n


def _same_device(params: list, op: str) -> None:
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise RuntimeError(f"{op}: found parameters on different devices {sorted(devices)}; "
                           "move them to one device first")

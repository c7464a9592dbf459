"""Classification metrics and running averages (lecture: "Validate and Analyze").

Every metric takes ``(output, target)`` as Tensors or arrays: ``output`` is class scores of shape
(N, C, ...) (class dimension 1, as in PyTorch's losses), predicted labels of the target's shape
(integer dtype), or binary logits of the target's shape (floating dtype, thresholded at 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import backend

__all__ = ["accuracy", "error_rate", "top_k_accuracy", "confusion_matrix", "predictions",
           "RunningAverage", "ExponentialAverage", "get_metric", "METRICS"]


def _array(x) -> np.ndarray:
    return backend.to_numpy(getattr(x, "_data", x))


def predictions(output, target) -> np.ndarray:
    """Predicted class labels for ``output``: argmax over dim 1, or the labels/logits as given."""
    out, tgt = _array(output), _array(target)
    if out.ndim == tgt.ndim + 1:
        return out.argmax(axis=1)
    if out.shape != tgt.shape:
        raise ValueError(f"metrics: output of shape {out.shape} does not fit target of shape "
                         f"{tgt.shape}; expected class scores (N, C, ...) or predictions of the "
                         f"target's shape")
    if out.dtype.kind == "f":
        return (out > 0).astype(np.int64)  # binary logits
    return out


def accuracy(output, target) -> float:
    """Fraction of examples whose predicted class equals the target."""
    tgt = _array(target)
    if tgt.size == 0:
        return math.nan
    return float((predictions(output, target) == tgt).mean())


def error_rate(output, target) -> float:
    """1 - accuracy: the classification error the lecture's learning curves plot."""
    return 1.0 - accuracy(output, target)


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of examples whose target is among the k highest-scoring classes (dim 1)."""
    out, tgt = _array(output), _array(target)
    if out.ndim != tgt.ndim + 1:
        raise ValueError(f"top_k_accuracy: expected class scores (N, C, ...), got output shape "
                         f"{out.shape} for target shape {tgt.shape}")
    k = min(k, out.shape[1])
    top = np.argpartition(-out, k - 1, axis=1).take(range(k), axis=1)
    return float((top == np.expand_dims(tgt, 1)).any(axis=1).mean())


def confusion_matrix(output, target, num_classes: int | None = None) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    pred = predictions(output, target).reshape(-1).astype(np.int64)
    tgt = _array(target).reshape(-1).astype(np.int64)
    if num_classes is None:
        out = _array(output)
        num_classes = out.shape[1] if out.ndim == tgt.ndim + 1 and out.ndim > 1 else 0
        num_classes = max(num_classes, int(max(pred.max(initial=-1), tgt.max(initial=-1))) + 1)
    return np.bincount(tgt * num_classes + pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class RunningAverage:
    """Weighted mean of the values seen so far (per-example averages over minibatches)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> RunningAverage:
        self.total += float(value) * n
        self.count += n
        return self

    @property
    def average(self) -> float:
        return self.total / self.count if self.count else math.nan

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def __float__(self) -> float:
        return self.average

    def __repr__(self) -> str:
        return f"RunningAverage({self.average:.6g}, count={self.count})"


class ExponentialAverage:
    """Bias-corrected exponential moving average (Adam's correction): smooth progress readouts."""

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.value = 0.0
        self.steps = 0

    def update(self, value: float) -> ExponentialAverage:
        self.steps += 1
        self.value = self.beta * self.value + (1 - self.beta) * float(value)
        return self

    @property
    def average(self) -> float:
        return self.value / (1 - self.beta ** self.steps) if self.steps else math.nan

    def __float__(self) -> float:
        return self.average


METRICS: dict[str, Callable] = {"accuracy": accuracy, "error": error_rate,
                                "error_rate": error_rate, "top5_accuracy": top_k_accuracy}


def get_metric(metric) -> tuple[str, Callable]:
    """(name, fn) for a metric name in METRICS or a callable fn(output, target) -> float."""
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    try:
        return metric, METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)} or a "
                         f"function (output, target) -> float") from None

"""The fg.<name>(tensor, ...) functions of PyTorch's top-level namespace (fg.exp(x), fg.sum(x, dim),
fg.cat, fg.stack, fg.einsum, ...): module-level forms of the Tensor methods."""

from __future__ import annotations

import builtins

from . import dtypes
from .errors import DTypeError, ShapeError, ValueRangeError
from .ops import linalg as L
from .ops import shape as S
from .tensor import Tensor, _dim, _operands, as_tensor, where  # noqa: F401

_METHODS = [
    "abs", "sign", "exp", "log", "log1p", "log2", "log10", "expm1", "sqrt", "rsqrt", "sin", "cos",
    "tanh", "sigmoid", "relu", "erf", "reciprocal", "square", "clamp", "clip", "maximum",
    "minimum", "masked_fill", "lerp", "floor", "ceil", "round", "sum", "mean", "var", "std",
    "max", "min", "amax", "amin", "argmax", "argmin", "prod", "logsumexp", "cumsum", "norm",
    "all", "any", "reshape", "flatten", "unflatten", "transpose", "permute", "t", "squeeze",
    "unsqueeze", "split", "chunk", "narrow", "flip", "roll", "tril", "triu", "gather", "scatter",
    "scatter_add", "index_select", "take_along_dim", "matmul", "mm", "bmm", "outer", "dot",
    "softmax", "log_softmax", "add", "sub", "mul", "div", "pow", "neg", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "isnan", "isinf",
    "isfinite", "remainder", "floor_divide", "clone", "unbind", "select", "nonzero",
    "masked_select", "allclose", "equal", "sort", "argsort", "topk", "diag", "diagonal",
    "unique", "index_add",
]


def _make(name):
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            input = as_tensor(input)
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"fg.{name}(input, ...) is input.{name}(...)."
    return fn


# Bound after every use of a builtin of the same name (sum, max, abs, ...) in this module.
_namespace = {n: _make(n) for n in _METHODS if hasattr(Tensor, n)}
globals().update(_namespace)


def _sequence(tensors, op: str) -> list:
    """The tensors of cat/stack: a list or tuple of Tensors, as PyTorch demands (a single
    Tensor would be iterated over its first dim, which is never what was meant)."""
    if not isinstance(tensors, (list, tuple)):
        what = "a Tensor" if isinstance(tensors, Tensor) else type(tensors).__name__
        hint = f"; wrap it in a list: fg.{op}([x], ...)" if isinstance(tensors, Tensor) else ""
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {what}{hint}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a Tensor as element {i}, got "
                            f"{type(t).__name__}; convert it with fg.tensor()")
    if not tensors:
        raise ShapeError(f"{op}: expected a non-empty sequence of tensors")
    return list(tensors)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dim."""
    tensors = _sequence(tensors, "cat")
    tensors = _common(tensors)
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                             "concatenated; use fg.stack, or reshape it to (1,)")
    # PyTorch's legacy rule: a 1-D empty tensor, shape (0,), is skipped when concatenating
    # with tensors of other shapes (the dim is checked against the first other one)
    kept = [t for t in tensors if tuple(t.shape) != (0,)]
    if not kept:
        return S.Cat.apply(0, *tensors)
    ref = kept[0]
    d = _dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors):
        if tuple(t.shape) == (0,) and ref.ndim != 1:
            continue
        if t.ndim != ref.ndim or builtins.any(
                a != b for k, (a, b) in enumerate(zip(t.shape, ref.shape)) if k != d):
            raise ShapeError(f"cat: tensor {i} has shape {tuple(t.shape)} but tensor 0 has "
                             f"{tuple(ref.shape)}; all sizes must match except in dimension {dim}")
    return S.Cat.apply(d, *tensors)


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack along a new dim."""
    tensors = _common(_sequence(tensors, "stack"))
    d = _dim(dim, tensors[0].ndim + 1, "stack")  # checked first, as in PyTorch
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: tensor {i} has shape {tuple(t.shape)} but tensor 0 has "
                             f"{tuple(tensors[0].shape)}; stack needs equal shapes")
    return S.Stack.apply(d, *tensors)


def _common(tensors):
    dt = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dt:
            dt = dtypes.promote(dt, t.dtype, 1, 1)
    return [t.type(dt) for t in tensors]


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. fg.einsum("bij,bjk->bik", a, b)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    # no promotion: PyTorch refuses mixed dtypes here (the Einsum op's dtype rule says so)
    operands = [o if isinstance(o, Tensor) else as_tensor(o) for o in operands]
    return L.Einsum.apply(equation, *operands)


def broadcast_tensors(*tensors):
    import numpy as np

    shape = np.broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t.expand(shape) for t in tensors)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(x: Tensor) -> int:
    return x.numel()


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:  # noqa: ARG001
    """p-norm distances between the rows of x1 (*, P, M) and x2 (*, R, M): (*, P, R), batch
    dims broadcast. Computed from the differences (exact; PyTorch's matrix-product shortcut for
    p=2 is an approximation of the same values). Differentiable."""
    x1 = x1 if isinstance(x1, Tensor) else as_tensor(x1)
    x2 = x2 if isinstance(x2, Tensor) else as_tensor(x2)
    if x1.ndim < 2 or x2.ndim < 2:
        bad, t = ("X1", x1) if x1.ndim < 2 else ("X2", x2)
        raise ShapeError(f"cdist only supports at least 2D tensors, {bad} got: {t.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} "
                         f"X2: {x2.shape[-1]}")
    if x1.dtype != x2.dtype:
        raise DTypeError(f"cdist: expected both inputs to have the same dtype, got "
                                f"{x1.dtype} and {x2.dtype}")
    if x1.dtype.kind != "f":
        raise DTypeError(f"cdist only supports floating-point dtypes, X1 got: {x1.dtype}")
    p = float(p)
    if p < 0:
        raise ValueRangeError("cdist only supports non-negative p values")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 2:
        return diff.norm(dim=-1)
    if p == 1:
        return diff.abs().sum(-1)
    if p == float("inf"):
        return diff.abs().amax(-1)
    if p == 0:
        return (diff != 0).sum(-1).to(x1.dtype)
    return diff.abs().pow(p).sum(-1).pow(1 / p)

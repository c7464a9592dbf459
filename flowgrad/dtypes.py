"""dtypes: PyTorch's names bound to NumPy dtype objects, and PyTorch's promotion rules."""

from __future__ import annotations

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_state = {"default": float32}


def get_default_dtype() -> np.dtype:
    """The dtype of floating tensors made from Python numbers (float32, as in PyTorch)."""
    return _state["default"]


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype (float32 or float64)."""
    dtype = to_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype}")
    _state["default"] = dtype


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype argument (flowgrad/NumPy dtype, Python type or name) to an np.dtype."""
    if dtype is None or dtype is float:
        return _state["default"]
    if isinstance(dtype, np.dtype):
        return dtype
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    return np.dtype(dtype)


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def promote(a: np.dtype, b: np.dtype, a_dim: int, b_dim: int) -> np.dtype:
    """Result dtype of a binary op on two tensors, by PyTorch's rules.

    Integer with floating gives the floating dtype (int64 + float32 -> float32); within one
    category a 0-d tensor does not raise a higher-dimensional tensor's precision
    (float32 tensor * float64 0-d tensor -> float32).
    """
    if a == b:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa != fb:
        return a if fa else b
    ba, bb = a.kind == "b", b.kind == "b"
    if ba != bb:
        return b if ba else a
    if (a_dim == 0) != (b_dim == 0):
        return b if a_dim == 0 else a
    return np.promote_types(a, b)


# Dtype rules of the ops (Op.dtype_rule), applied by Op.apply in one place ---------------------
FLOAT = "float"            # integer/bool input -> the default float dtype (exp, tanh, sqrt, ...)
FLOATING = "floating"      # floating input only: softmax, softplus, gelu, losses, ...
SAME = "same"              # every tensor operand has the same dtype: matmul, linear, conv, ...
FLOATING_SAME = "floating_same"  # both: layer norm's kernels, the fused losses, ...
NUMBER = "number"          # not bool: abs, relu (PyTorch has no bool kernels for them)
_FIRST_ONLY = (FLOAT, FLOATING, NUMBER)  # rules that look at the first operand alone


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a floating-point op returns for an input of ``dtype`` (PyTorch: integer and
    bool inputs give the default dtype)."""
    return dtype if dtype.kind == "f" else _state["default"]


def _op_name(cls) -> str:
    name = getattr(cls, "op_name", None)
    if name:
        return name
    n = cls.__name__
    return "".join("_" + c.lower() if c.isupper() and i and not n[i - 1].isupper() else c.lower()
                   for i, c in enumerate(n))


def apply_rule(cls, rule: str, raw: list) -> list:
    """Check (and for FLOAT, convert) the array operands of op ``cls`` by its dtype rule; the
    one place where ops' dtype rules live. ``raw`` holds arrays and non-array arguments."""
    first = None
    same = True
    for a in raw:  # the common case first: floating operands of one dtype pass untouched
        d = getattr(a, "dtype", None)
        if d is None or not hasattr(a, "shape"):
            continue
        if first is None:
            first = d
        elif d != first:
            same = False
    if first is None or (first.kind == "f" and (same or rule in _FIRST_ONLY)):
        return raw
    return _apply_rule(cls, rule, raw)


def _apply_rule(cls, rule: str, raw: list) -> list:
    arrays = [(i, a) for i, a in enumerate(raw) if hasattr(a, "dtype") and hasattr(a, "shape")]
    if not arrays:
        return raw
    if rule == FLOAT:
        i, a = arrays[0]
        if a.dtype.kind != "f":
            raw = list(raw)
            raw[i] = a.astype(_state["default"])
        return raw
    first = arrays[0][1].dtype
    if rule in (FLOATING, FLOATING_SAME) and first.kind != "f":
        raise _not_floating(cls, first)
    if rule in (NUMBER, SAME):
        if first.kind == "b":
            from .errors import DTypeError

            raise DTypeError(f"{_op_name(cls)}: not defined for bool tensors; convert with "
                             ".float() or .long()")
        if rule == NUMBER:
            return raw
    if rule in (SAME, FLOATING_SAME):
        for i, a in arrays[1:]:
            if a.dtype != first:
                names = getattr(cls, "operand_names", None)
                what = (names[arrays[0][0]], names[i]) if names else ("input", "weight")
                raise mixed_dtypes(_op_name(cls), first, a.dtype, what)
    return raw


def _not_floating(cls, dtype):
    from .errors import DTypeError

    return DTypeError(f"{_op_name(cls)}: expected a floating-point input (float32 or float64), "
                      f"got {dtype}; convert it with .float()")


def require_floating(op: str, *tensors) -> None:
    """Raise DTypeError unless every given tensor (None skipped) is floating point, as
    PyTorch's kernels do for ops with no integer definition (softmax, losses, norms)."""
    from .errors import DTypeError

    for t in tensors:
        if t is not None and t.dtype.kind != "f":
            raise DTypeError(f"{op}: expected a floating-point input (float32 or float64), got "
                             f"{t.dtype}; convert it with .float()")


def mixed_dtypes(op: str, a: np.dtype, b: np.dtype, what=("input", "weight")):
    """The DTypeError for an op that PyTorch refuses to run on operands of two dtypes."""
    from .errors import DTypeError

    first, second = what
    if a.kind != "f" and b.kind == "f":
        fix = f"convert the {first} with .float() (or .to({b}))"
    elif b.kind != "f" and a.kind == "f":
        fix = f"convert the {second} with .to({a})"
    else:
        fix = (f"convert one side: .to({b}) on the {first}, or .to({a}) on the {second} "
               f"(for a model: .float() on the batch, or .double() on the model)")
    return DTypeError(f"{op}: expected {first} and {second} to have the same dtype, got {a} "
                      f"and {b}; {fix}")


def check_same(op: str, tensors, names) -> None:
    """Raise DTypeError unless all given tensors (None skipped) share the first one's dtype."""
    ref = None
    for t, n in zip(tensors, names):
        if t is None:
            continue
        if ref is None:
            ref = (t.dtype, n)
        elif t.dtype != ref[0]:
            raise mixed_dtypes(op, ref[0], t.dtype, (ref[1], n))

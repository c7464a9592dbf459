"""Non-linearities with PyTorch's names (lecture: "Non-Linearities"): ReLU and its variants,
sigmoid, tanh, softplus, GELU, softmax."""

from __future__ import annotations

import warnings

import numpy as np

from ...dtypes import require_floating
from ...errors import DTypeError, ShapeError
from ...ops import activation as A
from ...tensor import Tensor, where
from ._util import _shape

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """max(x, 0) (Nair & Hinton 2010). ``inplace`` is accepted; the result is always new."""
    return A.Relu.apply(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01,
               inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x for x > 0, negative_slope * x otherwise (Maas et al. 2013)."""
    return A.LeakyRelu.apply(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016)."""
    return A.Elu.apply(input, alpha, 1.0)


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."""
    return A.Elu.apply(input, _SELU_ALPHA, _SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (Barron 2017)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    require_floating("celu", input)
    return A.Elu.apply(input * (1.0 / alpha), 1.0, alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x), exact or with approximate='tanh' (Hendrycks & Gimpel 2016)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return A.Gelu.apply(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x sigmoid(x) (Ramachandran et al. 2017, "swish")."""
    return A.Silu.apply(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x tanh(softplus(x)) (Misra 2019)."""
    return input * A.Softplus.apply(input, 1.0, 20.0).tanh()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""
    return A.Softplus.apply(input, beta, threshold)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), stable for large |x|."""
    return A.Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return A.Tanh.apply(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log sigmoid(x) = -softplus(-x), finite for any x."""
    return -A.Softplus.apply(-input, 1.0, 20.0)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    if input.dtype.kind != "f":  # PyTorch keeps integer dtypes: the limits are cast to it
        if input.dtype.kind == "u" and (int(min_val) < 0 or int(max_val) < 0):
            raise DTypeError(f"hardtanh: cannot clamp an unsigned {input.dtype} tensor to negative "
                             f"limits ({min_val}, {max_val})")
        lo, hi = _int_args("hardtanh", input, min_val, max_val)
        return Tensor._wrap(input.xp.clip(input._data, lo, hi), None, False)
    return input.clamp(min_val, max_val)


def _int_args(op: str, input: Tensor, *values) -> list:
    """The float arguments of hardtanh/threshold cast to an integer input's dtype as PyTorch
    casts them (truncated toward zero; out of the dtype's range raises); bool has no kernel."""
    if input.dtype.kind == "b":
        raise DTypeError(f"{op}: not defined for bool tensors; convert with .float() or .long()")
    info = np.iinfo(input.dtype)
    out = []
    for v in values:
        i = int(v)
        if not info.min <= i <= info.max:
            raise DTypeError(f"{op}: the value {v} cannot be converted to {input.dtype} without "
                             "overflow")
        out.append(input.dtype.type(i))
    return out


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """relu6(x + 3) / 6, a piecewise-linear sigmoid (Howard et al. 2019)."""
    require_floating("hardsigmoid", input)
    return (input * (1.0 / 6) + 0.5).clamp(0.0, 1.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x hardsigmoid(x) (Howard et al. 2019)."""
    require_floating("hardswish", input)
    return input * hardsigmoid(input)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - input.tanh()


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    require_floating("softshrink", input)
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    require_floating("hardshrink", input)
    return where((input > lambd) | (input < -lambd), input, 0.0)


def threshold(input: Tensor, threshold: float, value: float,
              inplace: bool = False) -> Tensor:  # noqa: ARG001 - PyTorch's signature
    """x where x > threshold, else value."""
    if input.dtype.kind != "f":  # PyTorch keeps integer dtypes: the arguments are cast to it
        t, v = _int_args("threshold", input, threshold, value)
        data = input._data
        return Tensor._wrap(input.xp.where(data > t, data, v).astype(data.dtype, copy=False),
                            None, False)
    return where(input > threshold, input, value)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight min(0, x) with one learned slope per channel (dim 1) or one in all
    (He et al. 2015)."""
    require_floating("prelu", input)
    if weight.dtype != input.dtype:
        from ...dtypes import mixed_dtypes
        raise mixed_dtypes("prelu", input.dtype, weight.dtype)
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.ndim >= 2 else 1
        if n != c:
            raise ShapeError(f"prelu: weight has {n} elements but the input {_shape(input)} has "
                             f"{c} channels in dimension 1; give 1 or {c} slopes")
        weight = weight.reshape((1, c) + (1,) * (input.ndim - 2))
    return where(input > 0, input, weight * input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit a sigmoid(b), with a, b the two halves along ``dim`` (Dauphin et al.
    2017)."""
    require_floating("glu", input)
    size = input.shape[dim] if input.ndim else 0
    if input.ndim == 0 or size % 2:
        raise ShapeError(f"glu: halving dimension {dim} needs an even size, got input of shape "
                         f"{_shape(input)}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"{name}: implicit dimension choice is deprecated (as in PyTorch); pass dim=",
                  stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _as_dtype(input: Tensor, dtype) -> Tensor:
    return input if dtype is None else input.to(dtype)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x) / sum exp(x) along ``dim``, with the max subtracted first (stable at any logit).

    Args: input of any shape; dtype: cast the input to it first.
    """
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _as_dtype(input, dtype).softmax(dim)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """softmax(-x) along ``dim``."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return (-_as_dtype(input, dtype)).softmax(dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable at any logit (lecture: "Log-Likelihood as Loss
    function")."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _as_dtype(input, dtype).log_softmax(dim)

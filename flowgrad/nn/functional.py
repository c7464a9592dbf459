"""Stateless neural-network functions with PyTorch's names, signatures and semantics
(``torch.nn.functional``), taking and returning flowgrad Tensors.

Most are compositions of Tensor ops, so their gradients come from the op library; the losses
that need it for stability or speed call the fused Functions of ``flowgrad.ops.loss``.

Example:
    >>> import flowgrad.nn.functional as F
    >>> logits = fg.randn(4, 10, requires_grad=True)
    >>> F.cross_entropy(logits, fg.tensor([1, 0, 9, 3])).backward()
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..errors import DTypeError, ShapeError
from ..ops import activation as A
from ..ops import indexing as I
from ..ops import linalg as L
from ..ops import loss as LS
from ..ops import shape as S
from ..tensor import Tensor, as_tensor, where
from .functional_conv import (  # noqa: F401  (convolution and pooling live there)
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    max_pool1d,
    max_pool2d,
)

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _shape(x) -> tuple:
    return tuple(x.shape)


# --- non-linearities (lecture: "Non-Linearities") -----------------------------------------------

def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0) (Nair & Hinton 2010). ``inplace`` is accepted; the result is always new."""
    return A.Relu.apply(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01,  # noqa: A002
               inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise (Maas et al. 2013)."""
    return A.LeakyRelu.apply(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016)."""
    return A.Elu.apply(input, alpha, 1.0)


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."""
    return A.Elu.apply(input, _SELU_ALPHA, _SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (Barron 2017)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    return A.Elu.apply(input * (1.0 / alpha), 1.0, alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x Phi(x), exact or with approximate='tanh' (Hendrycks & Gimpel 2016)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return A.Gelu.apply(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x sigmoid(x) (Ramachandran et al. 2017, "swish")."""
    return A.Silu.apply(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x tanh(softplus(x)) (Misra 2019)."""
    return input * A.Softplus.apply(input, 1.0, 20.0).tanh()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""
    return A.Softplus.apply(input, beta, threshold)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), stable for large |x|."""
    return A.Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    """Hyperbolic tangent."""
    return A.Tanh.apply(input)


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """log sigmoid(x) = -softplus(-x), finite for any x."""
    return -A.Softplus.apply(-input, 1.0, 20.0)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,  # noqa: A002
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return input.clamp(min_val, max_val)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """relu6(x + 3) / 6, a piecewise-linear sigmoid (Howard et al. 2019)."""
    return (input * (1.0 / 6) + 0.5).clamp(0.0, 1.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x hardsigmoid(x) (Howard et al. 2019)."""
    return input * hardsigmoid(input)


def softsign(input: Tensor) -> Tensor:  # noqa: A002
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:  # noqa: A002
    """x - tanh(x)."""
    return input - input.tanh()


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """x where |x| > lambd, else 0."""
    return where((input > lambd) | (input < -lambd), input, 0.0)


def threshold(input: Tensor, threshold: float, value: float,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return where(input > threshold, input, value)


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """max(0, x) + weight min(0, x) with one learned slope per channel (dim 1) or one in all
    (He et al. 2015)."""
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.ndim >= 2 else 1
        if n != c:
            raise ShapeError(f"prelu: weight has {n} elements but the input {_shape(input)} has "
                             f"{c} channels in dimension 1; give 1 or {c} slopes")
        weight = weight.reshape((1, c) + (1,) * (input.ndim - 2))
    return where(input > 0, input, weight * input)


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002
    """Gated linear unit a sigmoid(b), with a, b the two halves along ``dim`` (Dauphin et al.
    2017)."""
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


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,  # noqa: A002
            dtype=None) -> Tensor:
    """exp(x) / sum exp(x) along ``dim``, with the max subtracted first (stable at any logit).

    Args: input of any shape; dtype: cast the input to it first.
    """
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _as_dtype(input, dtype).softmax(dim)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,  # noqa: A002
            dtype=None) -> Tensor:
    """softmax(-x) along ``dim``."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return (-_as_dtype(input, dtype)).softmax(dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,  # noqa: A002
                dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable at any logit (lecture: "Log-Likelihood as Loss
    function")."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _as_dtype(input, dtype).log_softmax(dim)


# --- dropout -------------------------------------------------------------------------------------

def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _drop(input: Tensor, p: float, mask_shape: tuple) -> Tensor:
    """input * mask / (1 - p), the mask drawn from flowgrad's stream (inverted dropout)."""
    xp = input.xp
    if p == 1.0:
        mask = xp.zeros(mask_shape, dtype=input.dtype)
    else:
        keep = backend.rng(xp).random(mask_shape, dtype=np.float32) >= p
        mask = keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return input * Tensor._wrap(mask, None, False)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) while training
    (Srivastava et al. 2014); the identity otherwise. Seeded by fg.manual_seed."""
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    return _drop(input, p, input.shape)


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, batched: bool) -> Tensor:
    _check_p(p, op)
    if not training or p == 0.0:
        return input
    shape = input.shape
    lead = 2 if batched else 1
    return _drop(input, p, tuple(shape[:lead]) + (1,) * (len(shape) - lead))


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Drop whole channels of (N, C, L) or (C, L) inputs (Tompson et al. 2015)."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape "
                         f"{_shape(input)}")
    return _feature_dropout("dropout1d", input, p, training, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Drop whole channels of (N, C, H, W) inputs (Tompson et al. 2015); a 3-D input is read as
    (N, C, L), as PyTorch does."""
    if input.ndim < 2:
        raise ShapeError(f"dropout2d: expected an (N, C, H, W) input, got shape {_shape(input)}")
    return _feature_dropout("dropout2d", input, p, training, True)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Drop whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""
    if input.ndim < 2:
        raise ShapeError(f"dropout3d: expected an (N, C, D, H, W) input, got shape "
                         f"{_shape(input)}")
    return _feature_dropout("dropout3d", input, p, training, input.ndim != 4)


# --- linear maps and lookups --------------------------------------------------------------------

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """x W^T + b with W of shape (out_features, in_features).

    Args: input (*, in), weight (out, in), bias (out,). Returns (*, out).
    """
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{_shape(weight)}")
    return L.Linear.apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k.

    Args: input1 (*, in1), input2 (*, in2), weight (out, in1, in2), bias (out,).
    Returns (*, out).
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] \
            or input2.shape[-1] != weight.shape[2]:
        raise ShapeError(f"bilinear: inputs {_shape(input1)} and {_shape(input2)} do not fit "
                         f"weight {_shape(weight)}: expected (out, {input1.shape[-1]}, "
                         f"{input2.shape[-1]})")
    return L.Bilinear.apply(input1, input2, weight, bias)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,  # noqa: A002
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by integer indices (lecture: "Neural Language Model" — the
    shared word-feature matrix C).

    Args: input (*) integer indices; weight (num_embeddings, embedding_dim). Returns (*, dim).
    ``max_norm`` renormalises the looked-up rows of ``weight`` in place, as PyTorch does;
    ``sparse`` is accepted, and the gradient is dense.
    """
    input = _tensor(input)
    if input.dtype.kind not in "iu":
        raise DTypeError(f"embedding: input must be an integer tensor of indices, got "
                         f"{input.dtype}; convert with .long()")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {_shape(weight)}")
    num = weight.shape[0]
    idx = input.data
    if idx.size and (int(idx.max()) >= num or int(idx.min()) < 0):
        bad = int(idx.max()) if int(idx.max()) >= num else int(idx.min())
        raise IndexError(f"embedding: index {bad} is out of range for {num} embeddings "
                         f"(expected 0 to {num - 1})")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                             f"{num} embeddings")
        padding_idx = padding_idx + num if padding_idx < 0 else padding_idx
    if max_norm is not None:
        _embedding_renorm(weight, idx, max_norm, norm_type)
    out = I.Embedding.apply(idx, weight, padding_idx)
    if scale_grad_by_freq and out.requires_grad:
        xp = input.xp
        _, inverse, counts = xp.unique(idx.reshape(-1), return_inverse=True, return_counts=True)
        scale = (1.0 / counts[inverse.reshape(-1)]).reshape(idx.shape + (1,))
        scale = scale.astype(weight.dtype)
        out.register_hook(lambda g: g * Tensor._wrap(scale, None, False))
    return out


def _embedding_renorm(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    xp = weight.xp
    rows = xp.unique(idx.reshape(-1))
    w = weight.data[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight.dtype)
    with no_grad():
        weight[rows] = w * scale[:, None]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding: shape (*,) becomes (*, num_classes) (-1: max + 1)."""
    tensor = _tensor(tensor)
    if tensor.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: expected an integer tensor of class indices, got "
                         f"{tensor.dtype}; convert with .long()")
    xp = tensor.xp
    data = tensor.data
    if data.size and int(data.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(data.min())}")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    elif data.size and int(data.max()) >= num_classes:
        raise ValueError(f"one_hot: class value {int(data.max())} is out of range for "
                         f"num_classes={num_classes}")
    out = (data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out, None, False)


# --- normalisation -------------------------------------------------------------------------------

def _affine(out: Tensor, weight, bias, shape: tuple) -> Tensor:
    if weight is not None:
        out = out * (weight.reshape(shape) if shape else weight)
    if bias is not None:
        out = out + (bias.reshape(shape) if shape else bias)
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last dims to zero mean and unit variance, then scale and shift
    (Ba et al. 2016).

    Args: input (*, *normalized_shape); weight and bias of ``normalized_shape``.
    """
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or _shape(input)[-k:] != ns:
        raise ShapeError(f"layer_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input, got input of shape {_shape(input)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and _shape(t) != ns:
            raise ShapeError(f"layer_norm: {name} of shape {_shape(t)} must have "
                             f"normalized_shape {ns}")
    dims = tuple(range(input.ndim - k, input.ndim))
    xc = input - input.mean(dim=dims, keepdim=True)
    var = (xc * xc).mean(dim=dims, keepdim=True)
    return _affine(xc * (var + eps).rsqrt(), weight, bias, ())


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,  # noqa: A002
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dims, times weight (Zhang & Sennrich 2019);
    eps defaults to the dtype's machine epsilon, as in PyTorch."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or _shape(input)[-k:] != ns:
        raise ShapeError(f"rms_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input, got input of shape {_shape(input)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def batch_norm(input: Tensor, running_mean: Tensor | None,  # noqa: A002
               running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel over the batch (and spatial dims) (Ioffe & Szegedy 2015).

    Args: input (N, C, *); running_mean, running_var, weight, bias (C,). While training, uses
    the batch's statistics and updates the running ones in place (no_grad) with momentum,
    the variance unbiased, as PyTorch does; otherwise uses the running statistics.
    """
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected input of shape (N, C, ...), got {_shape(input)}")
    c = input.shape[1]
    stat_shape = (1, c) + (1,) * (input.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ShapeError(f"batch_norm: {name} of shape {_shape(t)} does not fit the {c} "
                             f"channels of input {_shape(input)}: expected ({c},)")
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {_shape(input)}")
        mean = input.mean(dim=dims, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(dim=dims, keepdim=True)
        if momentum is None:
            raise ValueError("batch_norm: momentum must be a number; for a cumulative average "
                             "pass momentum=1/num_batches_tracked")
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(mean.detach().reshape(c), alpha=momentum)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(var.detach().reshape(c),
                                                    alpha=momentum * n / (n - 1))
        out = xc * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training=False (evaluation normalises with them)")
        rm = running_mean.to(input.dtype).reshape(stat_shape)
        rv = running_var.to(input.dtype).reshape(stat_shape)
        out = (input - rm) * (rv + eps).rsqrt()
    return _affine(out, weight, bias, stat_shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,  # noqa: A002
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample over its spatial dims (Ulyanov et al. 2016).

    Args: input (N, C, *); running stats, weight and bias (C,).
    """
    if input.ndim < 3:
        raise ShapeError(f"instance_norm: expected input of shape (N, C, L, ...), got "
                         f"{_shape(input)}")
    n, c = input.shape[:2]
    x = input.reshape((1, n * c) + _shape(input)[2:])
    rm = None if running_mean is None else running_mean.detach().repeat(n)
    rv = None if running_var is None else running_var.detach().repeat(n)
    out = batch_norm(x, rm, rv, None, None, use_input_stats, momentum, eps).reshape(input.shape)
    if use_input_stats:
        with no_grad():
            if running_mean is not None:
                running_mean.copy_(rm.reshape(n, c).mean(dim=0))
            if running_var is not None:
                running_var.copy_(rv.reshape(n, c).mean(dim=0))
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each group of channels of each sample (Wu & He 2018).

    Args: input (N, C, *) with C divisible by num_groups; weight and bias (C,).
    """
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected input of shape (N, C, ...), got {_shape(input)}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ShapeError(f"group_norm: the {c} channels of input {_shape(input)} must be "
                         f"divisible by num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ShapeError(f"group_norm: {name} of shape {_shape(t)} does not fit the {c} "
                             f"channels: expected ({c},)")
    x = input.reshape(n, num_groups, -1)
    xc = x - x.mean(dim=-1, keepdim=True)
    var = (xc * xc).mean(dim=-1, keepdim=True)
    out = (xc * (var + eps).rsqrt()).reshape(input.shape)
    return _affine(out, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,  # noqa: A002
              out=None) -> Tensor:
    """x / max(||x||_p, eps) along ``dim``."""
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    return input / input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim``; the inputs broadcast."""
    x1, x2 = _broadcast("cosine_similarity", x1, x2)
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    x1, x2 = _broadcast("pairwise_distance", x1, x2)
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def _broadcast(op: str, a: Tensor, b: Tensor) -> tuple:
    if a.shape == b.shape:
        return a, b
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{op}: shapes {_shape(a)} and {_shape(b)} cannot be broadcast") from None
    return a.expand(shape), b.expand(shape)


# --- padding -------------------------------------------------------------------------------------

def _pad_index(mode: str, n: int, before: int, after: int):
    j = np.arange(-before, n + after)
    if mode == "reflect":
        j = np.abs(j)
        return np.where(j >= n, 2 * (n - 1) - j, j)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    return np.mod(j, n)  # circular


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """Pad the last len(pad)/2 dims; ``pad`` = (left, right, top, bottom, ...) starts from the
    last dim; negative widths crop. Modes: constant, reflect, replicate, circular."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ShapeError(f"pad: padding {pad} must have an even length of at most "
                         f"2 * {input.ndim} (input of shape {_shape(input)})")
    k = len(pad) // 2
    widths = [(0, 0)] * input.ndim
    for i in range(k):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return S.Pad.apply(input, tuple(widths), 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no value argument (got value={value})")
    out = input
    xp = input.xp
    for d in range(input.ndim - k, input.ndim):
        before, after = widths[d]
        if before == 0 and after == 0:
            continue
        n = input.shape[d]
        limit = {"reflect": n - 1, "circular": n, "replicate": None}[mode]
        if n == 0 or (limit is not None and max(before, after) > limit) \
                or n + before + after < 0:
            raise ShapeError(f"pad: {mode} padding {(before, after)} of dimension {d} does not "
                             f"fit its size {n} (input {_shape(input)}); {mode} padding must be "
                             + ("smaller than the size" if mode == "reflect" else
                                "at most the size" if mode == "circular" else "non-empty"))
        idx = xp.asarray(_pad_index(mode, n, before, after))
        out = I.IndexSelect.apply(out, d, idx)
    return out


# --- attention -----------------------------------------------------------------------------------

def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V in batched matmuls (Vaswani et al. 2017; lecture:
    "Multi-Head Attention").

    Args: query (..., L, E), key (..., S, E), value (..., S, Ev); attn_mask broadcasting to
    (..., L, S): bool = True where attending is allowed, float = added to the scores.
    Rows with nothing to attend to give zeros, as in PyTorch. Returns (..., L, Ev).
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention: query, key and value need at least "
                         f"2 dimensions, got {_shape(query)}, {_shape(key)}, {_shape(value)}")
    lq, e = query.shape[-2:]
    s = key.shape[-2]
    if key.shape[-1] != e or value.shape[-2] != s:
        raise ShapeError(f"scaled_dot_product_attention: query {_shape(query)}, key "
                         f"{_shape(key)} and value {_shape(value)} do not fit: expected key "
                         f"(..., S, {e}) and value (..., S, Ev) with the same S")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal=True, "
                         "not both")
    _check_p(dropout_p, "scaled_dot_product_attention")
    if enable_gqa and key.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ShapeError(f"scaled_dot_product_attention: {hq} query heads are not a "
                             f"multiple of {hk} key/value heads")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    xp = query.xp
    scores = (query @ key.transpose(-2, -1)) * (1.0 / math.sqrt(e) if scale is None else scale)
    keep = dead = None
    if is_causal:
        keep = xp.tril(xp.ones((lq, s), dtype=bool))
    elif attn_mask is not None:
        attn_mask = _tensor(attn_mask)
        if attn_mask.dtype.kind == "b":
            keep = attn_mask.data
        else:
            bias = attn_mask.to(scores.dtype)
            dead = xp.isneginf(bias.data).all(axis=-1, keepdims=True)
            if dead.any():
                bias = where(Tensor._wrap(dead, None, False), 0.0, bias)
            else:
                dead = None
            scores = scores + bias  # (..., L, S)
    if keep is not None:
        dead = ~keep.any(axis=-1, keepdims=True)  # rows that may attend nowhere
        if dead.any():
            keep = keep | dead
        else:
            dead = None
        scores = scores.masked_fill(Tensor._wrap(~keep, None, False), float("-inf"))
    attn = scores.softmax(-1)  # (..., L, S)
    if dead is not None:
        attn = attn.masked_fill(Tensor._wrap(dead, None, False), 0.0)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True)
    return attn @ value


def _repeat_heads(x: Tensor, g: int) -> Tensor:
    """(..., H, S, E) -> (..., H*g, S, E), each head repeated g times in place (GQA)."""
    shape = _shape(x)
    lead, (h, s, e) = shape[:-3], shape[-3:]
    return x.unsqueeze(-3).expand(lead + (h, g, s, e)).reshape(lead + (h * g, s, e))


# --- losses (lecture: "Log-Likelihood as Loss function", "Gaussian output") --------------------

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op: str, size_average, reduce, reduction: str, extra: tuple = ()) -> str:
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated; use reduction=",
                      stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in _REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in _REDUCTIONS + extra)
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _pair(op: str, input: Tensor, target) -> tuple:  # noqa: A002
    """The input and target of an elementwise loss, broadcast (with PyTorch's warning) when
    their shapes differ but broadcast."""
    target = _tensor(target)
    if input.shape != target.shape:
        try:
            shape = np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ShapeError(f"{op}: input {_shape(input)} and target {_shape(target)} must "
                             "have the same shape") from None
        warnings.warn(f"{op}: target size {_shape(target)} differs from input size "
                      f"{_shape(input)}; they broadcast to {shape}, which is likely not what "
                      "you want. Please ensure they have the same size.", stacklevel=3)
        input, target = input.expand(shape), target.expand(shape)
    return input, target


def _weighted(op: str, loss: Tensor, weight, reduction: str, input: Tensor,  # noqa: A002
              mean_by_weight: bool = True) -> Tensor:
    if weight is None:
        return _reduce(loss, reduction)
    if _shape(weight) != _shape(input):
        raise ShapeError(f"{op}: weight of shape {_shape(weight)} must have the input's shape "
                         f"{_shape(input)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def _class_weight(op: str, weight, c: int, input: Tensor):  # noqa: A002
    if weight is None:
        return None
    weight = _tensor(weight)
    if _shape(weight) != (c,):
        raise ShapeError(f"{op}: weight must hold one entry per class, shape ({c},), got "
                         f"{_shape(weight)}")
    if weight.requires_grad and is_grad_enabled():
        raise ValueError(f"{op}: the gradient with respect to the class weight is not "
                         "computed (as in PyTorch); pass weight.detach()")
    return weight.to(input.dtype)


def _check_class_target(op: str, input: Tensor, target: Tensor, c: int,  # noqa: A002
                        ignore_index: int) -> None:
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must be an integer tensor of class indices (int64), "
                         f"got {target.dtype}; convert with .long()")
    expected = () if input.ndim == 1 else (input.shape[0],) + _shape(input)[2:]
    if _shape(target) != expected:
        raise ShapeError(f"{op}: target of shape {_shape(target)} does not fit input of shape "
                         f"{_shape(input)}: expected target of shape {expected} holding class "
                         f"indices in [0, {c})")
    t = target.data
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        v = int(t[bad].reshape(-1)[0])
        raise IndexError(f"{op}: target {v} is out of bounds for {c} classes (expected 0 to "
                         f"{c - 1}, or ignore_index={ignore_index})")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-log softmax(x)[target], fused into one node (lecture: "Log-Likelihood as Loss
    function"; label smoothing: Szegedy et al. 2016).

    Args: input (N, C, d1, ...) or (C,) logits; target (N, d1, ...) or () integer class
    indices (``ignore_index`` skipped), or class probabilities of the input's shape;
    weight (C,). Returns a scalar, or (N, d1, ...) for reduction='none'.
    """
    reduction = _reduction("cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    target = _tensor(target)
    if input.ndim == 0:
        raise ShapeError("cross_entropy: input must be (C,) or (N, C, ...) logits, got a 0-d "
                         "tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    weight = _class_weight("cross_entropy", weight, c, input)
    if target.dtype.kind == "f":
        if _shape(target) != _shape(input):
            raise DTypeError(f"cross_entropy: a floating target is read as class probabilities "
                             f"and must have the input's shape {_shape(input)}, got "
                             f"{_shape(target)}; for class indices pass an integer tensor "
                             "(target.long())")
        if ignore_index >= 0:
            raise ValueError("cross_entropy: ignore_index is not supported for class-"
                             "probability targets")
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c)
    _check_class_target("cross_entropy", input, target, c, ignore_index)
    return LS.CrossEntropy.apply(input, target, weight, ignore_index, float(label_smoothing),
                                 reduction)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, c):  # noqa: A002
    cdim = 1 if input.ndim >= 2 else 0
    logp = input.log_softmax(cdim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    prod = logp * target
    if weight is not None:
        prod = prod * (weight.reshape((1, c) + (1,) * (input.ndim - 2)) if cdim else weight)
    if reduction == "none":
        return -prod.sum(cdim)
    if reduction == "sum":
        return -prod.sum()
    rows = input.numel() // c if c else 0
    return -prod.sum() / (rows if rows else float("nan"))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
             size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """-input[target] for log-probabilities (lecture: "Log-Likelihood as Loss function").

    Args: input (N, C, d1, ...) or (C,) log-probabilities; target (N, d1, ...) or () class
    indices; weight (C,). 'mean' divides by the summed weight of the targets used.
    """
    reduction = _reduction("nll_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if input.ndim == 0:
        raise ShapeError("nll_loss: input must be (C,) or (N, C, ...) log-probabilities, got a "
                         "0-d tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    weight = _class_weight("nll_loss", weight, c, input)
    _check_class_target("nll_loss", input, target, c, ignore_index)
    return LS.NLLLoss.apply(input, target, weight, ignore_index, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,  # noqa: A002
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(x - y)^2, the log-likelihood of a unit-variance Gaussian up to constants (lecture:
    "Gaussian output"); with ``weight`` (input's shape), 'mean' divides by its sum."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    x, y = _pair("mse_loss", input, target)
    if weight is None and x.dtype == y.dtype:
        return LS.MSELoss.apply(x, y, reduction)
    d = x - y
    return _weighted("mse_loss", d * d, weight, reduction, input)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,  # noqa: A002
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|x - y| (the Laplace log-likelihood up to constants)."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    x, y = _pair("l1_loss", input, target)
    return _weighted("l1_loss", (x - y).abs(), weight, reduction, input)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None,  # noqa: A002
                   reduce=None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (Girshick 2015)."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    x, y = _pair("smooth_l1_loss", input, target)
    d = (x - y).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",  # noqa: A002
               delta: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (Huber 1964); with
    ``weight``, 'mean' is the mean of the weighted losses (PyTorch's rule)."""
    reduction = _reduction("huber_loss", None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x, y = _pair("huber_loss", input, target)
    d = (x - y).abs()
    loss = where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted("huber_loss", loss, weight, reduction, input, mean_by_weight=False)


def _check_binary(op: str, input: Tensor, target: Tensor, weight, pos_weight=None):  # noqa: A002
    if target.dtype.kind != "f":
        raise DTypeError(f"{op}: target must be a floating tensor (probabilities of the "
                         f"positive class), got {target.dtype}; convert with .float()")
    if _shape(target) != _shape(input):
        raise ShapeError(f"{op}: target of shape {_shape(target)} must have the input's shape "
                         f"{_shape(input)}")
    out = []
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is not None:
            t = _tensor(t)
            try:
                ok = np.broadcast_shapes(t.shape, input.shape) == input.shape
            except ValueError:
                ok = False
            if not ok:
                raise ShapeError(f"{op}: {name} of shape {_shape(t)} does not broadcast to the "
                                 f"input's shape {_shape(input)}")
            t = t.to(input.dtype)
        out.append(t)
    return target.to(input.dtype), out[0], out[1]


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-w [y log x + (1 - y) log(1 - x)] for probabilities x, logs clamped at -100 as in
    PyTorch (lecture: "Log-Likelihood as Loss function", Bernoulli output)."""
    reduction = _reduction("binary_cross_entropy", size_average, reduce, reduction)
    target = _tensor(target)
    target, weight, _ = _check_binary("binary_cross_entropy", input, target, weight)
    data = input.data
    if data.size and bool(((data < 0) | (data > 1)).any()):
        raise ValueError(f"binary_cross_entropy: all elements of input should be between 0 "
                         f"and 1 (probabilities), got values in [{float(data.min()):.4g}, "
                         f"{float(data.max()):.4g}]; for logits use "
                         "binary_cross_entropy_with_logits")
    return LS.BinaryCrossEntropy.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,  # noqa: A002
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(x), fused and stable at any logit; ``pos_weight``
    (broadcasting along the last dim, one per class) weights the positive term."""
    reduction = _reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    target = _tensor(target)
    target, weight, pos_weight = _check_binary("binary_cross_entropy_with_logits", input,
                                               target, weight, pos_weight)
    return LS.BCEWithLogits.apply(input, target, weight, pos_weight, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,  # noqa: A002
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """0.5 (log var + (x - y)^2 / var) (+ 0.5 log 2 pi if ``full``): the negative
    log-likelihood of a Gaussian whose variance is predicted too (lecture: "Gaussian output").

    Args: input, target (N, *); var of the input's shape, or one dim short / of size 1 in one
    dim (shared variance), or a float. var is clamped at eps with the gradient passing through.
    """
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var must be non-negative, got {var}")
        var = Tensor._wrap(input.xp.full(input.shape, var, dtype=input.dtype), None, False)
    else:
        var = _tensor(var)
        if bool((var.data < 0).any()):
            raise ValueError("gaussian_nll_loss: var has negative entries; predict it through "
                             "softplus or exp")
    if var.shape != input.shape:
        if _shape(input)[:-1] == _shape(var):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and sum(v for i, v in zip(input.shape, var.shape)
                                                 if i != v) == 1):
            raise ShapeError(f"gaussian_nll_loss: var of shape {_shape(var)} does not fit input "
                             f"{_shape(input)}: expected the input's shape, the input's shape "
                             "without its last dim, or a size-1 dim in place of one")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"gaussian_nll_loss: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    low = var.data < eps
    if bool(low.any()):  # clamp the value only: the gradient passes through, as in PyTorch
        var = var + Tensor._wrap(var.xp.where(low, eps - var.data, 0).astype(var.dtype),
                                 None, False)
    d = input - _tensor(target)
    loss = (var.log() + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,  # noqa: A002
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: y (log y - x) for log-probabilities x;
    'batchmean' divides the sum by the batch size (the true KL), 'mean' by every element."""
    if size_average is not None or reduce is not None:
        reduction = _reduction("kl_div", size_average, reduce, reduction)
    else:
        reduction = _reduction("kl_div", None, None, reduction, ("batchmean",))
        if reduction == "mean":
            warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch "
                          "size and the support size; 'batchmean' divides only by the batch "
                          "size, which is the KL divergence", stacklevel=2)
    target = _tensor(target)
    if log_target:
        loss = target.exp() * (target - input)
    else:  # xlogy(y, y) - y x, with 0 log 0 = 0
        loss = target * where(target == 0, 1.0, target).log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True,  # noqa: A002
                     full: bool = False, size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """exp(x) - y x (log_input) or x - y log(x + eps): the Poisson negative log-likelihood,
    with Stirling's term for y > 1 if ``full``."""
    reduction = _reduction("poisson_nll_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        big = target > 1
        safe = where(big, target, 2.0)
        stirling = safe * safe.log() - safe + 0.5 * (safe * (2 * math.pi)).log()
        loss = loss + where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor,
                        margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, -y (x1 - x2) + margin) for y = +-1: a ranking loss (lecture: "Maps between
    representations")."""
    reduction = _reduction("margin_ranking_loss", size_average, reduce, reduction)
    target = _tensor(target)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ShapeError(f"margin_ranking_loss: input1 {_shape(input1)}, input2 "
                         f"{_shape(input2)} and target {_shape(target)} must have the same "
                         "number of dimensions")
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,  # noqa: A002
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1."""
    reduction = _reduction("hinge_embedding_loss", size_average, reduce, reduction)
    target = _tensor(target)
    loss = where(target != 1, (margin - input).clamp_min(0.0), 0.0) \
        + where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None,  # noqa: A002
                     reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)) for y = +-1 (logistic loss)."""
    reduction = _reduction("soft_margin_loss", size_average, reduce, reduction)
    return _reduce(A.Softplus.apply(-_tensor(target) * input, 1.0, 20.0), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor,  # noqa: A002
                                weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """Mean over classes of the binary cross-entropy of each logit (multi-label output)."""
    reduction = _reduction("multilabel_soft_margin_loss", size_average, reduce, reduction)
    target = _tensor(target)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    cdim = input.ndim - 1
    loss = loss.sum(dim=cdim) * (1.0 / input.shape[cdim])
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor,
                          margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (joint
    embeddings; lecture: "Maps between representations")."""
    reduction = _reduction("cosine_embedding_loss", size_average, reduce, reduction)
    target = _tensor(target)
    d = input1.ndim - 1
    prod = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + 1e-12
    m2 = (input2 * input2).sum(d) + 1e-12
    cos = prod / (m1 * m2).sqrt()
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).clamp_min(0.0),
                                                    0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin) with pairwise p-norm distances (Schroff et al. 2015);
    ``swap`` uses the smaller of d(a, n) and d(p, n) (Balntas et al. 2016)."""
    reduction = _reduction("triplet_margin_loss", size_average, reduce, reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ShapeError(f"triplet_margin_loss: anchor {_shape(anchor)}, positive "
                         f"{_shape(positive)} and negative {_shape(negative)} must have the "
                         "same number of dimensions")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = d_an.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((d_ap - d_an + margin).clamp_min(0.0), reduction)

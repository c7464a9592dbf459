"""Normalisation layers with PyTorch's arguments, parameters and buffers: BatchNorm1d/2d/3d
(running statistics), InstanceNorm1d/2d, LayerNorm, GroupNorm, RMSNorm."""

from __future__ import annotations

import numbers
import warnings

from ... import creation, dtypes
from ...autograd.grad_mode import no_grad
from ...errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import empty_param, shape_str

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "LayerNorm", "GroupNorm", "RMSNorm"]


def _add_affine(module: Module, enabled: bool, bias: bool, shape: tuple, device, dtype) -> None:
    """Register the affine ``weight`` and ``bias`` of ``shape`` (None when not ``enabled``, and
    bias None when not ``bias``), weight first, as PyTorch's norm layers do."""
    if enabled:
        module.weight = empty_param(*shape, device=device, dtype=dtype)
        if bias:
            module.bias = empty_param(*shape, device=device, dtype=dtype)
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    """The identity affine map: weight ones, bias zeros."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Affine parameters (weight ones, bias zeros) and running-statistics buffers
    (running_mean zeros, running_var ones, num_batches_tracked int64 0), as PyTorch's."""

    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _add_affine(self, affine, bias, (num_features,), device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean",
                                 creation.zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var",
                                 creation.ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), dtype=dtypes.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        # Like PyTorch for checkpoints without version metadata: a missing num_batches_tracked
        # (older checkpoints) keeps the current count instead of being a missing key.
        key = prefix + "num_batches_tracked"
        if self.num_batches_tracked is not None and key not in state_dict:
            state_dict = dict(state_dict)
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _check_input(self, input) -> None:
        nd = input.ndim
        if nd not in self._ranks:
            ranks = " or ".join(f"{r}D" for r in self._ranks)
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): expected {ranks} input "
                             f"(got {nd}D input of shape {shape_str(input)})")
        c = input.shape[1]
        if c != self.num_features:
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): input has {c} channels "
                             f"in dimension 1 (shape {shape_str(input)}), expected "
                             f"num_features={self.num_features}")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Batch normalisation (Ioffe & Szegedy 2015): y = (x - E[x]) / sqrt(Var[x] + eps) * weight
    + bias, with the batch's statistics while training and the running ones in eval mode.

    The running statistics move by ``momentum`` per training step (None: a cumulative average
    over ``num_batches_tracked`` steps); the running variance is the unbiased one.
    """

    def forward(self, input):
        self._check_input(input)
        p, b = self._parameters, self._buffers  # direct reads: this is a hot path
        mean, var, count = b["running_mean"], b["running_var"], b["num_batches_tracked"]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and count is not None:
            with no_grad():
                count.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(count.item())
        if self.training:
            bn_training = True
        else:
            bn_training = mean is None and var is None
        use_buffers = not self.training or self.track_running_stats
        return F.batch_norm(input, mean if use_buffers else None, var if use_buffers else None,
                            p["weight"], p["bias"], bn_training, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs (Ioffe & Szegedy 2015); weight,
    bias and running statistics of shape (C,)."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs, per channel (Ioffe & Szegedy 2015)."""

    _ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over (N, C, D, H, W) inputs, per channel (Ioffe & Szegedy 2015)."""

    _ranks = (5,)


class _InstanceNorm(_NormBase):
    """Instance normalisation (Ulyanov et al. 2016): each channel of each sample over its
    spatial dims. Defaults differ from BatchNorm: affine=False, track_running_stats=False."""

    _no_batch = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):
        nd = input.ndim
        if nd not in self._ranks:
            ranks = " or ".join(f"{r}D" for r in self._ranks)
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): expected {ranks} input "
                             f"(got {nd}D input of shape {shape_str(input)})")
        d = nd - self._no_batch
        if input.shape[d] != self.num_features:
            if self.affine:
                raise ShapeError(f"{self._get_name()}({self.extra_repr()}): input has "
                                 f"{input.shape[d]} channels in dimension {d} (shape "
                                 f"{shape_str(input)}), expected "
                                 f"num_features={self.num_features}")
            warnings.warn(f"{self._get_name()}: input's size at dim={d} does not match "
                          f"num_features ({self.num_features}); num_features is not used "
                          "because affine=False", stacklevel=2)
        unbatched = nd == self._no_batch
        x = input.unsqueeze(0) if unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation over (N, C, L) or (C, L) inputs."""

    _ranks = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation over (N, C, H, W) or (C, H, W) inputs."""

    _ranks = (3, 4)
    _no_batch = 3


def _normalized_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(normalized_shape)


def _check_trailing(module: Module, input) -> None:
    ns = module.normalized_shape
    if tuple(input.shape[input.ndim - len(ns):]) != ns or input.ndim < len(ns):
        raise ShapeError(f"{module._get_name()}({module.extra_repr()}): input of shape "
                         f"{shape_str(input)} does not end with normalized_shape {ns}")


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims of each sample (Ba et
    al. 2016); weight ones and bias zeros of shape ``normalized_shape``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _add_affine(self, elementwise_affine, bias, self.normalized_shape, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        _check_trailing(self, input)
        p = self._parameters
        return F.layer_norm(input, self.normalized_shape, p["weight"], p["bias"], self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation (Wu & He 2018): (N, C, *) normalised per sample over each of
    ``num_groups`` groups of channels; weight ones and bias zeros of shape (C,)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _add_affine(self, affine, bias, (num_channels,), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        if input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): input has "
                             f"{input.shape[1]} channels in dimension 1 (shape "
                             f"{shape_str(input)}), expected num_channels={self.num_channels}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims (Zhang &
    Sennrich 2019); weight ones of shape ``normalized_shape``; eps None means the dtype's
    machine epsilon."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = empty_param(*self.normalized_shape, device=device, dtype=dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input):
        _check_trailing(self, input)
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

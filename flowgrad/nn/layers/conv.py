"""Convolution layers with PyTorch's constructor arguments, weight layouts, initialisation and
padding modes: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (lecture: "Convolutional
Nets"; LeCun et al. 1998)."""

from __future__ import annotations

from ...errors import ShapeError
from .. import functional as F
from ..functional import conv as FC
from ..module import Module
from ._util import empty_param, ntuple, reset_fan_in_uniform, shape_str

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What every convolution shares: checks, parameters, initialisation, repr."""

    _spatial = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                                 "{'same', 'valid'}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {set(_PADDING_MODES)}, but "
                             f"got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's (left, right) widths, last dim first, for the non-zero padding modes
        rev = [0, 0] * len(kernel_size)
        for i, (d, k) in enumerate(zip(dilation, kernel_size)):
            j = len(kernel_size) - 1 - i
            if padding == "same":
                total = d * (k - 1)
                rev[2 * j], rev[2 * j + 1] = total // 2, total - total // 2
            elif not isinstance(padding, str):
                rev[2 * j] = rev[2 * j + 1] = padding[i]
        self._reversed_padding_repeated_twice = rev
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = empty_param(*shape, device=device, dtype=dtype)
        if bias:
            self.bias = empty_param(out_channels, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch."""
        reset_fan_in_uniform(self.weight, self.bias)

    def forward(self, input):
        self._check_channels(input)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        else:
            padding = self.padding
        p = self._parameters
        return self._conv(input, p["weight"], p["bias"], self.stride, padding, self.dilation,
                          self.groups)

    def _check_channels(self, input) -> None:
        nd, s = input.ndim, self._spatial
        if nd not in (s + 1, s + 2):
            return  # the functional names the expected ranks
        c = input.shape[nd - s - 1]
        if c != self.in_channels:
            raise ShapeError(f"{self._get_name()}({self.extra_repr()}): input has {c} channels "
                             f"in dimension {nd - s - 1} (shape {shape_str(input)}), expected "
                             f"in_channels={self.in_channels}")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C_in, L) or (C_in, L) -> (N, C_out, L_out).

    weight (out_channels, in_channels/groups, kernel_size), bias (out_channels,); padding an
    int, 'valid' or 'same'; padding_mode zeros, reflect, replicate or circular.
    """

    _spatial = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, ntuple(kernel_size, 1), ntuple(stride, 1),
                         padding if isinstance(padding, str) else ntuple(padding, 1),
                         ntuple(dilation, 1), False, (0,), groups, bias, padding_mode, device,
                         dtype)

    _conv = staticmethod(FC.conv1d)


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, H_out, W_out).

    weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,); padding an int, a
    pair, 'valid' or 'same'; padding_mode zeros, reflect, replicate or circular.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, ntuple(kernel_size, 2), ntuple(stride, 2),
                         padding if isinstance(padding, str) else ntuple(padding, 2),
                         ntuple(dilation, 2), False, (0, 0), groups, bias, padding_mode, device,
                         dtype)

    _conv = staticmethod(FC.conv2d)


class _ConvTransposeNd(_ConvNd):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        if self.padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only 'zeros' padding mode is supported, "
                             f"got {self.padding_mode!r}")

    def _output_padding(self, input, output_size) -> tuple:
        """output_padding, or the one that gives ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        s = self._spatial
        lead = 2 if input.ndim == s + 2 else 1
        output_size = tuple(output_size)
        if len(output_size) == lead + s:
            output_size = output_size[lead:]
        if len(output_size) != s:
            raise ValueError(f"{self._get_name()}: for {input.ndim}D input, output_size must "
                             f"have {s} or {lead + s} elements (got {len(output_size)})")
        mins = [(input.shape[d + lead] - 1) * self.stride[d] - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(s)]
        maxs = [m + self.stride[d] - 1 for d, m in enumerate(mins)]
        for size, lo, hi in zip(output_size, mins, maxs):
            if not lo <= size <= hi:
                raise ValueError(f"{self._get_name()}: requested an output size of "
                                 f"{output_size}, but valid sizes range from {tuple(mins)} to "
                                 f"{tuple(maxs)} (for an input of {tuple(input.shape[lead:])})")
        return tuple(o - m for o, m in zip(output_size, mins))


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution (N, C_in, L) -> (N, C_out, L_out) with
    L_out = (L - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.

    weight (in_channels, out_channels/groups, kernel_size), bias (out_channels,).
    """

    _spatial = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, ntuple(kernel_size, 1), ntuple(stride, 1),
                         ntuple(padding, 1), ntuple(dilation, 1), True,
                         ntuple(output_padding, 1), groups, bias, padding_mode, device, dtype)

    def forward(self, input, output_size=None):
        self._check_channels(input)
        op = self._output_padding(input, output_size)
        return FC.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                   op, self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
    H_out = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1
    (Zeiler et al. 2010; the upsampling layer of DCGAN, Radford et al. 2016).

    weight (in_channels, out_channels/groups, kh, kw), bias (out_channels,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, ntuple(kernel_size, 2), ntuple(stride, 2),
                         ntuple(padding, 2), ntuple(dilation, 2), True,
                         ntuple(output_padding, 2), groups, bias, padding_mode, device, dtype)

    def forward(self, input, output_size=None):
        self._check_channels(input)
        op = self._output_padding(input, output_size)
        return FC.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                   op, self.groups, self.dilation)

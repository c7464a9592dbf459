"""Convolution and pooling functions with PyTorch's signatures (torch.nn.functional), on flowgrad
Tensors (lecture: "Convolutional Nets"; LeCun et al. 1998).

Batched (N, C, ...) and unbatched (C, ...) inputs are accepted, as in PyTorch. The 1-D variants
run the 2-D ops on an inserted height-1 dimension.
"""

from __future__ import annotations

from ...errors import DTypeError, ShapeError
from ...ops.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, pads, pair
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
           "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d"]


def _batch(op: str, input: Tensor, spatial: int):
    """(input as a batch, whether a batch dim was added); checks the rank."""
    nd = input.ndim
    if nd == spatial + 2:
        return input, False
    if nd == spatial + 1:
        return input.unsqueeze(0), True
    names = "(C, L)" if spatial == 1 else "(C, H, W)"
    bnames = "(N, C, L)" if spatial == 1 else "(N, C, H, W)"
    raise ShapeError(f"{op}: expected a {spatial + 1}-D {names} or {spatial + 2}-D {bnames} "
                     f"input, got shape {tuple(input.shape)}")


def _check_weight(op: str, input: Tensor, weight: Tensor, bias, groups: int, spatial: int,
                  transposed: bool) -> None:
    """Channel and rank checks named after the public op and its given shapes."""
    if weight.ndim != spatial + 2:
        layout = "(C_in, C_out/groups, " if transposed else "(C_out, C_in/groups, "
        layout += "k)" if spatial == 1 else "kh, kw)"
        raise ShapeError(f"{op}: expected a {spatial + 2}-D weight {layout}, "
                         f"got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise ShapeError(f"{op}: groups must be a positive int, got {groups!r}")
    if weight.shape[0] % groups:
        raise ShapeError(f"{op}: weight {tuple(weight.shape)} has {weight.shape[0]} in dimension "
                         f"0, which is not divisible by groups={groups}")
    c = input.shape[1]
    expects = weight.shape[0] if transposed else weight.shape[1] * groups
    if c != expects:
        raise ShapeError(f"{op}: input has {c} channels (shape {tuple(input.shape)}) but the "
                         f"weight {tuple(weight.shape)} expects {expects} (groups={groups})")
    out = weight.shape[1] * groups if transposed else weight.shape[0]
    if bias is not None and tuple(bias.shape) != (out,):
        raise ShapeError(f"{op}: bias has shape {tuple(bias.shape)} but the weight "
                         f"{tuple(weight.shape)} gives {out} output channels")
    if input.dtype.kind == "b":  # PyTorch has no bool convolution kernel
        raise DTypeError(f"{op}: not defined for bool tensors; convert with .float()")


def _conv_padding(op: str, padding, kernel: tuple, dilation: tuple, stride: tuple):
    """Padding as Conv2d takes it, from an int, a tuple, 'valid' or 'same' (PyTorch puts the odd
    extra of 'same' at the end)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ShapeError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}); use stride=1 or pad by hand")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ShapeError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', "
                         f"got {padding!r}")
    return padding


def _as_1d(v, name: str, op: str) -> int:
    a, b = pair(v, name, op)
    if a != b:
        raise ShapeError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
    return a


# Convolution ------------------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation: input (N, C_in, H, W) or (C_in, H, W), weight
    (C_out, C_in/groups, kh, kw), bias (C_out,) -> (N, C_out, Ho, Wo); padding is an int, a pair,
    'valid' or 'same'."""
    x, unbatched = _batch("conv2d", input, 2)
    _check_weight("conv2d", x, weight, bias, groups, 2, False)
    stride, dilation = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    padding = _conv_padding("conv2d", padding, weight.shape[2:], dilation, stride)
    out = Conv2d.apply(x, weight, bias, stride, padding, dilation, groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k),
    bias (C_out,) -> (N, C_out, Lo); padding is an int, 'valid' or 'same'."""
    op = "conv1d"
    x, unbatched = _batch(op, input, 1)
    _check_weight(op, x, weight, bias, groups, 1, False)
    s, d = _as_1d(stride, "stride", op), _as_1d(dilation, "dilation", op)
    p = _conv_padding(op, padding, weight.shape[2:], (d,), (s,))
    if isinstance(p, tuple) and isinstance(p[0], tuple):  # 'same': (left, right)
        left_right = p[0]
    else:
        left_right = (_as_1d(p, "padding", op),) * 2
    out = Conv2d.apply(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), ((0, 0), left_right),
                       (1, d), groups)
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution: input (N, C_in, H, W) or (C_in, H, W), weight
    (C_in, C_out/groups, kh, kw), bias (C_out,) -> (N, C_out, Ho, Wo) with
    Ho = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    x, unbatched = _batch(op, input, 2)
    _check_weight(op, x, weight, bias, groups, 2, True)
    out = ConvTranspose2d.apply(x, weight, bias, stride, pads(padding, op), output_padding,
                                groups, dilation)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution: input (N, C_in, L) or (C_in, L), weight (C_in, C_out/groups, k)
    -> (N, C_out, Lo)."""
    op = "conv_transpose1d"
    x, unbatched = _batch(op, input, 1)
    _check_weight(op, x, weight, bias, groups, 1, True)
    s, d = _as_1d(stride, "stride", op), _as_1d(dilation, "dilation", op)
    p, o = _as_1d(padding, "padding", op), _as_1d(output_padding, "output_padding", op)
    out = ConvTranspose2d.apply(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, s),
                                ((0, 0), (p, p)), (0, o), groups, (1, d)).squeeze(2)
    return out.squeeze(0) if unbatched else out


# Pooling ------------------------------------------------------------------------------------------

def _stride(stride, kernel_size):
    return kernel_size if stride is None or (isinstance(stride, (list, tuple)) and
                                             len(stride) == 0) else stride


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over windows: (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo), and with return_indices
    the flat index in H*W of each maximum (int64), as PyTorch."""
    x, unbatched = _batch("max_pool2d", input, 2)
    box = [] if return_indices else None
    out = MaxPool2d.apply(x, kernel_size, _stride(stride, kernel_size), padding, dilation,
                          bool(ceil_mode), box)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    idx = box[0][0] if unbatched else box[0]
    return out, Tensor._wrap(idx, None, False)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over windows: (N, C, L) or (C, L) -> (N, C, Lo) (and int64 indices into L)."""
    op = "max_pool1d"
    x, unbatched = _batch(op, input, 1)
    k = _as_1d(kernel_size, "kernel_size", op)
    s = _as_1d(_stride(stride, kernel_size), "stride", op)
    box = [] if return_indices else None
    out = MaxPool2d.apply(x.unsqueeze(2), (1, k), (1, s), (0, _as_1d(padding, "padding", op)),
                          (1, _as_1d(dilation, "dilation", op)), bool(ceil_mode), box)
    out = out.squeeze(2)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    idx = box[0][:, :, 0]
    return out, Tensor._wrap(idx[0] if unbatched else idx, None, False)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over windows: (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo), with PyTorch's
    count_include_pad and divisor_override."""
    x, unbatched = _batch("avg_pool2d", input, 2)
    out = AvgPool2d.apply(x, kernel_size, _stride(stride, kernel_size), padding, bool(ceil_mode),
                          bool(count_include_pad), divisor_override)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows: (N, C, L) or (C, L) -> (N, C, Lo)."""
    op = "avg_pool1d"
    x, unbatched = _batch(op, input, 1)
    k = _as_1d(kernel_size, "kernel_size", op)
    s = _as_1d(_stride(stride, kernel_size), "stride", op)
    out = AvgPool2d.apply(x.unsqueeze(2), (1, k), (1, s), (0, _as_1d(padding, "padding", op)),
                          bool(ceil_mode), bool(count_include_pad), None).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _adaptive_matrix(xp, n_in: int, n_out: int, dtype):
    """(n_out, n_in) averaging matrix of PyTorch's adaptive windows
    [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    m = xp.zeros((n_out, n_in), dtype=dtype)
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def adaptive_avg_pool2d(input, output_size):
    """Mean over PyTorch's adaptive windows: (N, C, H, W) or (C, H, W) -> (N, C, oh, ow);
    output_size is an int or a pair whose None entries keep the input size."""
    op = "adaptive_avg_pool2d"
    x, unbatched = _batch(op, input, 2)
    N, C, H, W = x.shape
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ShapeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        oh, ow = (H if output_size[0] is None else output_size[0],
                  W if output_size[1] is None else output_size[1])
    else:
        oh = ow = output_size
    oh, ow = pair((oh, ow), "output_size", op)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{op}: output_size must be positive, got {(oh, ow)}")
    if H % oh == 0 and W % ow == 0:  # equal windows: one reshape and one mean
        out = x.reshape(N, C, oh, H // oh, ow, W // ow).mean(dim=(3, 5))
    else:
        xp = x.xp
        pw = Tensor._wrap(_adaptive_matrix(xp, W, ow, x.dtype).T, None, False)
        ph = Tensor._wrap(_adaptive_matrix(xp, H, oh, x.dtype), None, False)
        out = ph @ (x @ pw)
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input, output_size):
    """Mean over PyTorch's adaptive windows: (N, C, L) or (C, L) -> (N, C, output_size)."""
    op = "adaptive_avg_pool1d"
    x, unbatched = _batch(op, input, 1)
    out = adaptive_avg_pool2d(x.unsqueeze(2), (1, _as_1d(output_size, "output_size", op)))
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out

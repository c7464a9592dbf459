"""Affine layers with PyTorch's weight layouts: Linear, Bilinear, Identity."""

from __future__ import annotations

import math

from ...errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import empty_param, reset_fan_in_uniform, shape_str

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(Module):
    """Returns its input unchanged; takes (and ignores) any constructor arguments."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b (lecture: "Multilayer Network as Universal Approximator").

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias.
    Shapes: input (*, in_features) -> output (*, out_features); weight (out_features,
    in_features), bias (out_features,). Both start U(-1/sqrt(in_features), 1/sqrt(in_features))
    (PyTorch's kaiming_uniform_(a=sqrt(5)), He et al. 2015).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = empty_param(out_features, in_features, device=device, dtype=dtype)
        if bias:
            self.bias = empty_param(out_features, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch."""
        reset_fan_in_uniform(self.weight, self.bias)

    def forward(self, input):
        shape = input.shape
        if not shape or shape[-1] != self.in_features:
            raise ShapeError(f"Linear(in_features={self.in_features}, out_features="
                             f"{self.out_features}): input has {shape[-1] if shape else 0} "
                             f"features in its last dimension (shape {tuple(shape)}), "
                             f"expected {self.in_features}")
        p = self._parameters  # one lookup instead of two __getattr__ fallbacks (hot path)
        return F.linear(input, p["weight"], p["bias"])

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """y_k = x1^T A_k x2 + b_k.

    Shapes: input1 (*, in1_features), input2 (*, in2_features) -> (*, out_features); weight
    (out_features, in1_features, in2_features), bias (out_features,), both starting
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)) as in PyTorch.
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = empty_param(out_features, in1_features, in2_features, device=device,
                                  dtype=dtype)
        if bias:
            self.bias = empty_param(out_features, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        for i, (x, n) in enumerate(((input1, self.in1_features), (input2, self.in2_features))):
            if not x.shape or x.shape[-1] != n:
                raise ShapeError(f"Bilinear(in1_features={self.in1_features}, in2_features="
                                 f"{self.in2_features}, out_features={self.out_features}): "
                                 f"input{i + 1} has {x.shape[-1] if x.shape else 0} features in "
                                 f"its last dimension (shape {shape_str(x)})")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

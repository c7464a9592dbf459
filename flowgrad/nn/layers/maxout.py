"""Maxout units (Goodfellow, Warde-Farley, Mirza, Courville & Bengio, "Maxout Networks",
ICML 2013, eq. 1): h_i(x) = max_{j in 1..k} z_ij with z_ij = x^T W_.ij + b_ij.

PyTorch has no Maxout layer; the layer equals the composition
``Linear(in, out * pieces)(x).view(*, out, pieces).max(-1).values``. The pieces of unit i are
rows i * pieces ... (i + 1) * pieces - 1 of the weight, as in pylearn2's ``Maxout`` layer (the
code of Goodfellow et al. 2014's adversarial nets), whose pools are consecutive pieces.
"""

from __future__ import annotations

from ...errors import ShapeError
from .. import functional as F
from ..module import Module
from ._util import empty_param, reset_fan_in_uniform

__all__ = ["Maxout"]


class Maxout(Module):
    """Maxout layer: an affine map to ``out_features * pieces`` values, then the maximum over
    each unit's ``pieces`` consecutive values.

    Args:
        in_features, out_features: sizes of each input and output sample.
        pieces: number of linear pieces per unit (k in the paper), at least 1.
        bias: learn an additive bias.
    Shapes: input (*, in_features) -> output (*, out_features); weight
    (out_features * pieces, in_features), bias (out_features * pieces,), both starting
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as a PyTorch Linear of the same size.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("pieces", pieces)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Maxout: {name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.pieces = pieces
        self.weight = empty_param(out_features * pieces, in_features, device=device, dtype=dtype)
        if bias:
            self.bias = empty_param(out_features * pieces, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight and bias U(-1/sqrt(in_features), 1/sqrt(in_features)), as nn.Linear."""
        reset_fan_in_uniform(self.weight, self.bias)

    def forward(self, input):
        shape = tuple(input.shape)
        if not shape or shape[-1] != self.in_features:
            raise ShapeError(f"Maxout(in_features={self.in_features}, out_features="
                             f"{self.out_features}, pieces={self.pieces}): input has "
                             f"{shape[-1] if shape else 0} features in its last dimension "
                             f"(shape {shape}), expected {self.in_features}")
        z = F.linear(input, self.weight, self.bias)
        return z.reshape(*shape[:-1], self.out_features, self.pieces).max(-1).values

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}, bias={self.bias is not None}")

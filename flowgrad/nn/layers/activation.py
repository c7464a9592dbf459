"""Non-linearity layers over ``nn.functional`` with PyTorch's arguments and reprs (lecture:
"Non-Linearities": sigmoid, tanh, ReLU, softmax and their relatives).

``inplace`` is accepted everywhere and recorded in the repr; the result is always a new
tensor (flowgrad's in-place ops are reserved for no_grad updates).
"""

from __future__ import annotations

import warnings

from .. import functional as F
from .. import init
from ..module import Module
from ._util import empty_param

__all__ = ["Threshold", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "CELU", "SELU", "GELU",
           "SiLU", "Mish", "Softplus", "Sigmoid", "Tanh", "LogSigmoid", "Hardtanh",
           "Hardsigmoid", "Hardswish", "Softsign", "Tanhshrink", "Softshrink", "Hardshrink",
           "GLU", "Softmax", "Softmin", "LogSoftmax"]


class _Inplace(Module):
    """An activation whose only argument is ``inplace``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


def _inplace_str(module) -> str:
    return ", inplace=True" if module.inplace else ""


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace_str(self)}"


class ReLU(_Inplace):
    """max(x, 0) (Nair & Hinton 2010)."""

    def forward(self, input):
        return F.relu(input)


class LeakyReLU(Module):
    """x for x > 0, negative_slope x otherwise (Maas et al. 2013)."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_str(self)}"


class PReLU(Module):
    """max(0, x) + a min(0, x) with learned slopes ``weight`` of shape (num_parameters,): one
    shared, or one per channel (dim 1) (He et al. 2015); starts at ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = empty_param(num_parameters, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _Alpha(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_str(self)}"


class ELU(_Alpha):
    """x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016)."""

    def forward(self, input):
        return F.elu(input, self.alpha)


class CELU(_Alpha):
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (Barron 2017)."""

    def forward(self, input):
        return F.celu(input, self.alpha)


class SELU(_Inplace):
    """Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."""

    def forward(self, input):
        return F.selu(input)


class GELU(Module):
    """x Phi(x), exact or with approximate='tanh' (Hendrycks & Gimpel 2016)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Inplace):
    """x sigmoid(x) (Ramachandran et al. 2017, "swish")."""

    def forward(self, input):
        return F.silu(input)


class Mish(_Inplace):
    """x tanh(softplus(x)) (Misra 2019)."""

    def forward(self, input):
        return F.mish(input)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, input):
        return F.tanh(input)


class LogSigmoid(Module):
    """log sigmoid(x), finite for any x."""

    def forward(self, input):
        return F.logsigmoid(input)


class Hardtanh(Module):
    """x clamped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn("Hardtanh: keyword argument `min_value` is deprecated and renamed to "
                          "`min_val`", FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("Hardtanh: keyword argument `max_value` is deprecated and renamed to "
                          "`max_val`", FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace
        if self.max_val <= self.min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val "
                             f"({min_val})")

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_str(self)}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Hardsigmoid(_Inplace):
    """relu6(x + 3) / 6 (Howard et al. 2019)."""

    def forward(self, input):
        return F.hardsigmoid(input)

    def extra_repr(self) -> str:
        return ""


class Hardswish(_Inplace):
    """x hardsigmoid(x) (Howard et al. 2019)."""

    def forward(self, input):
        return F.hardswish(input)

    def extra_repr(self) -> str:
        return ""


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, input):
        return F.softsign(input)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def forward(self, input):
        return F.tanhshrink(input)


class _Shrink(Module):
    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def extra_repr(self) -> str:
        return str(self.lambd)


class Softshrink(_Shrink):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""

    def forward(self, input):
        return F.softshrink(input, self.lambd)


class Hardshrink(_Shrink):
    """x where |x| > lambd, else 0."""

    def forward(self, input):
        return F.hardshrink(input, self.lambd)


class GLU(Module):
    """a sigmoid(b) with a, b the halves of the input along ``dim`` (Dauphin et al. 2017)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Dim(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_Dim):
    """exp(x) / sum exp(x) along ``dim`` (lecture: "Softmax output")."""

    def forward(self, input):
        return F.softmax(input, self.dim, _stacklevel=5)


class Softmin(_Dim):
    """softmax(-x) along ``dim``."""

    def forward(self, input):
        return F.softmin(input, self.dim, _stacklevel=5)


class LogSoftmax(_Dim):
    """x - logsumexp(x) along ``dim`` (pairs with NLLLoss: lecture "Log-Likelihood as Loss
    function")."""

    def forward(self, input):
        return F.log_softmax(input, self.dim, _stacklevel=5)

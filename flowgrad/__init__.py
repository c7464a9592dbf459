"""flowgrad: a deep-learning system built from the flow graph up (Bengio, "Deep Learning for
AI", MLSS 2020), with PyTorch's API on NumPy (or CuPy) arrays.

Example:
    >>> import flowgrad as fg
    >>> x = fg.randn(3, 4, requires_grad=True)
    >>> (x.tanh() ** 2).sum().backward()
    >>> x.grad.shape
    (3, 4)
"""

from __future__ import annotations

import os as _os
import sys as _sys

# OpenBLAS's idle threads spin for 2**28 cycles (about 0.1 s) after each product before they
# sleep, and on a machine with few cores that takes a core from the element-wise work of the
# intra-op threads that follows (the transformer benchmark on 2 cores: 0.74x PyTorch's speed,
# 0.78x with 2**16).
# OpenBLAS reads this once, when NumPy loads it: it applies when flowgrad is imported first.
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

from . import autograd, backend, dtypes, errors, ops
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.grad_mode import inference_mode
from .creation import *  # noqa: F403
from .creation import __all__ as _creation_all
from .denormal import set_flush_denormal
from .devices import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    Size,
    contiguous_format,
    device,
    preserve_format,
    strided,
)
from .dtypes import bool_ as bool
from .dtypes import (
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .errors import DeviceError, DTypeError, GraphError, ShapeError
from .intraop import get_num_threads, set_num_threads
from .tensor import Tensor, where
from .tensor_functions import *  # noqa: F403
from .tensor_functions import _namespace as _function_namespace
from .tensor_functions import broadcast_tensors, cat, concat, concatenate, einsum, is_tensor, stack

half = float16
float = float32
double = float64
short = int16
int = int32
long = int64

__version__ = "0.1.0"


def manual_seed(seed: int) -> None:
    """Seed flowgrad's random streams (rand, randn, dropout, init), for reproducible runs."""
    backend.manual_seed(seed)


def cuda_is_available() -> bool:
    return backend.cuda_available()


def _public():
    names = ["Tensor", "tensor", "where", "cat", "stack", "einsum", "no_grad", "enable_grad",
             "set_grad_enabled", "manual_seed", "autograd", "nn", "get_num_threads",
             "set_num_threads", "set_flush_denormal"]
    return names + list(_creation_all) + list(_function_namespace)


# The library built on the engine (these import the names above).
from . import (
    accelerator,
    backends,
    cuda,
    datasets,
    debug,
    distributions,
    nn,
    onnx,
    optim,
    train,
    utils,
)
from .serialization import load, save
from .utils.data import Generator, default_generator, get_rng_state, set_rng_state

"""PyTorch's device and size objects: ``fg.device``, ``fg.Size`` and the legacy tensor types
(``fg.FloatTensor`` ...), so that scripts written for ``torch`` run with their imports changed.

A ``device`` is also the plain string flowgrad uses inside ("cpu", "cuda", "cuda:1"), so it
compares equal to those strings (``torch.device("cpu") == "cpu"`` is False in PyTorch).
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import backend

# The device types torch.device accepts (its error message lists them in this order).
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                "privateuseone")
_DEVICE_RE = re.compile(r"^([a-z_]+)(?::(\d+))?$")


class Size(tuple):
    """A tensor's shape (PyTorch's ``torch.Size``): a tuple of ints, equal to the plain tuple,
    with ``numel()``; slicing and ``+`` give a Size.

    Example:
        >>> fg.zeros(2, 3).shape
        flowgrad.Size([2, 3])
    """

    __slots__ = ()

    def __new__(cls, sizes=()):
        items = []
        for i, s in enumerate(sizes):
            if type(s) is not int:
                if isinstance(s, (float, np.floating)) or not hasattr(s, "__index__"):
                    raise TypeError(f"flowgrad.Size() takes an iterable of 'int' (item {i} is "
                                    f"'{type(s).__name__}')")
                s = s.__index__()
            items.append(s)
        return tuple.__new__(cls, items)

    @classmethod
    def _of(cls, shape) -> Size:
        """A Size from a tuple of Python ints (an array's shape), unchecked."""
        return tuple.__new__(cls, shape)

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"flowgrad.Size({list(self)})"

    __str__ = __repr__

    def __getitem__(self, index):
        out = tuple.__getitem__(self, index)
        return tuple.__new__(Size, out) if isinstance(index, slice) else out

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return tuple.__new__(Size, tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return tuple.__new__(Size, tuple.__add__(other, self))

    def __mul__(self, n):
        return tuple.__new__(Size, tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))


class device(str):
    """A device (PyTorch's ``torch.device``): ``device("cpu")``, ``device("cuda", 0)``,
    ``device("cuda:1")``, with ``.type`` and ``.index``; ``str()`` is PyTorch's string.

    It is a ``str`` too and equals flowgrad's strings ("cpu", "cuda" = "cuda:0", "cuda:1"), so
    ``t.device == "cpu"`` holds (False in PyTorch, which never equates a device with a string).

    Example:
        >>> fg.device("cuda", 0)
        device(type='cuda', index=0)
    """

    type: str
    index: int | None

    def __new__(cls, type=None, index=None):
        if isinstance(type, device) and index is None:
            return type
        if type is None:
            raise TypeError("device() missing required argument 'type' (e.g. 'cpu', 'cuda:0')")
        if isinstance(type, (int, np.integer)) and not isinstance(type, bool):
            if not backend.cuda_available():
                raise RuntimeError("Cannot access accelerator device when none is available.")
            type, index = "cuda", int(type)
        if not isinstance(type, str):
            if not hasattr(type, "type"):  # a torch.device, say
                raise TypeError(f"device(): argument 'type' must be str, not "
                                f"{builtins_type(type).__name__}")
            type = str(type)
        m = _DEVICE_RE.match(type)
        if m is None:
            head = re.match(r"^[a-z_]*", type).group(0)
            if head and head not in DEVICE_TYPES:
                raise RuntimeError(_unknown(type))
            raise RuntimeError(f"Invalid device string: '{type}'")
        kind, text_index = m.group(1), m.group(2)
        if kind not in DEVICE_TYPES:
            raise RuntimeError(_unknown(type))
        if text_index is not None:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was "
                                   f"passed explicitly: {type}")
            index = int(text_index)
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"device(): argument 'index' must be int, not "
                                f"{builtins_type(index).__name__}")
            index = int(index)
            if index < 0:
                raise RuntimeError("Device index must not be negative")
        self = str.__new__(cls, kind if index is None else f"{kind}:{index}")
        self.type, self.index = kind, index
        return self

    def _key(self) -> str:
        """flowgrad's string for this device: 'cuda' for cuda:0, 'cpu' for cpu:N."""
        if self.type == "cpu":
            return "cpu"
        if self.type == "cuda" and not self.index:
            return "cuda"
        return str.__str__(self)

    def __eq__(self, other):
        if isinstance(other, device):
            return self._key() == other._key()
        if isinstance(other, str):
            if other in ("cpu", "cuda"):
                return self._key() == other
            try:
                return self._key() == device(other)._key()
            except (RuntimeError, TypeError):
                return False
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return str.__str__(self)

    def __reduce__(self):
        return (device, (self.type, self.index))


builtins_type = type


def _unknown(text: str) -> str:
    return (f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of device string: "
            f"{text} (flowgrad expected 'cpu' or 'cuda[:N]')")


_CPU = device("cpu")
_by_name: dict = {"cpu": _CPU}


def device_of(array) -> device:
    """The ``device`` of an array (cached: tensors ask for it often)."""
    if isinstance(array, np.ndarray):
        return _CPU
    name = backend.device_of(array)
    d = _by_name.get(name)
    if d is None:
        d = device("cuda", 0) if name == "cuda" else device(name)
        _by_name[name] = d
    return d


class _Option:
    """A layout or memory format (PyTorch's ``torch.strided``, ``torch.contiguous_format`` ...):
    flowgrad accepts these names, at the one value its arrays have."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"flowgrad.{self.name}"

    def __reduce__(self):
        return self.name


strided = _Option("strided")
contiguous_format = _Option("contiguous_format")
preserve_format = _Option("preserve_format")


# Legacy tensor types ---------------------------------------------------------------------------

class _LegacyTensorType(type):
    """The metaclass of fg.FloatTensor & co.: calling one builds a Tensor of its dtype with the
    legacy constructor's forms; ``isinstance(t, fg.FloatTensor)`` holds for a float32 CPU
    tensor, as in PyTorch."""

    dtype: np.dtype

    def __call__(cls, *args, **kwargs):
        from .tensor import Tensor

        t = object.__new__(Tensor)
        Tensor._init_legacy(t, cls.dtype, args, kwargs, cls.__name__)
        return t

    def __instancecheck__(cls, obj) -> bool:
        from .tensor import Tensor

        return (isinstance(obj, Tensor) and obj._data.dtype == cls.dtype
                and isinstance(obj._data, np.ndarray))

    def __subclasscheck__(cls, sub) -> bool:
        return sub is cls

    def __repr__(cls) -> str:
        return f"<class 'flowgrad.{cls.__name__}'>"


def _legacy(name: str, dtype) -> type:
    return _LegacyTensorType(name, (), {"dtype": np.dtype(dtype), "is_cuda": False,
                                        "__module__": "flowgrad"})


FloatTensor = _legacy("FloatTensor", np.float32)
DoubleTensor = _legacy("DoubleTensor", np.float64)
HalfTensor = _legacy("HalfTensor", np.float16)
LongTensor = _legacy("LongTensor", np.int64)
IntTensor = _legacy("IntTensor", np.int32)
ShortTensor = _legacy("ShortTensor", np.int16)
CharTensor = _legacy("CharTensor", np.int8)
ByteTensor = _legacy("ByteTensor", np.uint8)
BoolTensor = _legacy("BoolTensor", np.bool_)

LEGACY_TYPES = (FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor,
                CharTensor, ByteTensor, BoolTensor)


def legacy_type_name(dtype, cuda: bool = False) -> str:
    """``t.type()``: "flowgrad.FloatTensor", "flowgrad.cuda.LongTensor", ... (PyTorch's
    names under this library's prefix); dtypes with no legacy type give "flowgrad.<dtype>"."""
    for kind in LEGACY_TYPES:
        if kind.dtype == np.dtype(dtype):
            return f"flowgrad.{'cuda.' if cuda else ''}{kind.__name__}"
    return f"flowgrad.{np.dtype(dtype)}"


def legacy_dtype(name: str) -> np.dtype:
    """The dtype of a legacy type name: "FloatTensor", "flowgrad.cuda.FloatTensor" and
    PyTorch's "torch.DoubleTensor" alike."""
    short = name.rsplit(".", 1)[-1]
    for kind in LEGACY_TYPES:
        if kind.__name__ == short:
            return kind.dtype
    raise ValueError(f"type(): invalid type {name!r}; expected a legacy tensor type such as "
                     f"'flowgrad.FloatTensor' ({', '.join(k.__name__ for k in LEGACY_TYPES)})")

__all__ = ["Size", "device", "strided", "contiguous_format", "preserve_format", "FloatTensor",
           "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
           "CharTensor", "ByteTensor", "BoolTensor"]

"""Tensor: an array plus its place in the flow graph (lecture: "Chain Rule in Flow Graph" —
node = computation result, arc = computation dependency).

Every differentiable method calls one ``Op`` from ``flowgrad.ops``; ``backward()`` hands
the graph to the engine. The API and semantics are PyTorch's.
"""

from __future__ import annotations

import builtins
import itertools
import weakref
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import backend, dtypes
from .autograd import engine, grad_mode
from .autograd import op as _op_module
from .devices import Size as _Size
from .devices import _LegacyTensorType
from .devices import device as _device
from .devices import device_of as _device_of
from .errors import DTypeError, GraphError, IndexOutOfRangeError, ShapeError
from .ops import activation as A
from .ops import elementwise as E
from .ops import indexing as I
from .ops import linalg as L
from .ops import reduction as R
from .ops import shape as S

_Number = (int, float, bool)
values_indices = namedtuple("values_indices", ["values", "indices"])


def _dims(dim, ndim: int, op: str):
    """Normalise ``dim`` (None, int or tuple, negatives allowed) to None or a sorted tuple."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        if len(dim) == 0:
            return None
        dims = tuple(sorted(_dim(d, ndim, op) for d in dim))
        if len(set(dims)) != len(dims):
            raise ShapeError(f"{op}: dim {tuple(dim)} names a dimension more than once")
    else:
        dims = (_dim(dim, ndim, op),)
    return None if ndim == 0 else dims  # a 0-d tensor's dim 0 (or -1) is the whole tensor


def _dim(d: int, ndim: int, op: str) -> int:
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"{op}: dimension {d} is out of range for a tensor with {ndim} "
                         f"dimensions (expected {-n} to {n - 1})")
    return d + n if d < 0 else d


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _sizes(shape, op: str) -> tuple:
    """The sizes of reshape/view, checked as PyTorch checks them: ints (or integer scalars),
    each >= 0 except one -1 to infer."""
    shape = _shape_arg(shape)
    infer = 0
    for i, s in enumerate(shape):
        if type(s) is not int:
            if isinstance(s, (bool, np.bool_, float, np.floating)) or not hasattr(s, "__index__"):
                raise TypeError(f"{op}: sizes must be ints, got {type(s).__name__} {s!r} at "
                                f"position {i} of {shape}")
            shape = shape[:i] + (s.__index__(),) + shape[i + 1:]
            s = shape[i]
        if s < 0:
            if s != -1:
                raise ShapeError(f"{op}: invalid size {s} at position {i} of {shape}: sizes "
                                 "must be >= 0, or -1 for the one size to infer")
            infer += 1
    if infer > 1:
        raise ShapeError(f"{op}: only one size can be inferred (-1), got {shape}")
    return shape


def _index_arg(index):
    """Replace Tensors inside an index by their arrays (lists become int/bool arrays)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    if isinstance(index, list):
        return np.asarray([i.item() if isinstance(i, Tensor) else i for i in index])
    return index


class Tensor:
    """A multi-dimensional array that records the operations applied to it.

    Example:
        >>> x = fg.tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4.])
    """

    __slots__ = ("_data", "grad", "_requires_grad", "_ctx", "_version", "_hooks",
                 "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """PyTorch's legacy constructor: ``Tensor(2, 3)`` (sizes, or ``size=(2, 3)``) is a new
        tensor of that shape (zero-filled: PyTorch leaves it uninitialised), ``Tensor([1, 2])``
        or ``Tensor(array)`` a copy in the default dtype, ``Tensor()`` an empty (0,) tensor,
        ``Tensor(t)`` shares ``t``'s memory. ``fg.tensor(data, dtype=..., requires_grad=...)``
        is the data constructor."""
        Tensor._init_legacy(self, None, args, kwargs, "Tensor")

    @staticmethod
    def _init_legacy(self, dtype, args: tuple, kwargs: dict, name: str) -> None:
        """Fill ``self`` from the legacy constructor's arguments (``Tensor``, ``FloatTensor``
        ...; ``dtype`` None: the default dtype, Tensor(t) then keeps t's dtype)."""
        dt = dtypes.get_default_dtype() if dtype is None else dtype
        kwargs = dict(kwargs)
        dev = kwargs.pop("device", None)
        size = kwargs.pop("size", None)
        if kwargs:
            raise TypeError(f"{name}(): got an unexpected keyword argument "
                            f"'{next(iter(kwargs))}'; the legacy constructor takes sizes or data "
                            "(and device=); use flowgrad.tensor(data, dtype=..., "
                            "requires_grad=...) for the rest")
        if dev is not None and backend.normalize_device(dev) != "cpu":
            raise GraphError(f"legacy constructor expects device type: cpu but device type: "
                             f"{dev} was passed ({name}(); use flowgrad.zeros(..., "
                             "device=...) or flowgrad.tensor(data, device=...))")
        if size is not None:
            if args or not isinstance(size, (tuple, list)):
                raise TypeError(f"{name}(): size= takes a tuple of ints alone, got "
                                f"{len(args)} positional arguments and size={size!r}")
            args = tuple(size)
        elif len(args) == 1 and isinstance(args[0], _Size):
            args = tuple(args[0])
        if not args:
            arr = np.zeros((0,), dt)
        elif all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))
                 for a in args):
            shape = tuple(int(a) for a in args)
            for s in shape:
                if s < 0:
                    raise ShapeError(f"Trying to create tensor with negative dimension {s}: "
                                     f"{list(shape)} ({name}())")
            arr = np.zeros(shape, dt)
        elif len(args) == 1:
            data = args[0]
            if isinstance(data, Tensor):
                if dtype is not None and data.dtype != dtype:
                    raise TypeError(f"{name}(): expected a tensor of dtype {dtype}, got "
                                    f"{data.dtype}; use t.to({dtype}) instead")
                arr = data._data
            elif isinstance(data, str) or not (isinstance(data, (list, tuple, range))
                                               or hasattr(data, "__array__")
                                               or hasattr(data, "shape")):
                raise TypeError(f"new(): data must be a sequence (got {type(data).__name__}) "
                                f"({name}(); flowgrad.tensor({data!r}) makes a 0-d tensor)")
            else:
                arr = tensor(data, dtype=dt)._data
        else:
            raise TypeError(f"{name}() received an invalid combination of arguments: expected "
                            f"sizes (ints), size=(...), or one sequence of data, got "
                            f"{tuple(type(a).__name__ for a in args)}")
        self._data = arr
        self.grad = None
        self._ctx = None
        self._version = 0
        self._hooks = None
        self._retains_grad = False
        self._requires_grad = False

    @classmethod
    def _wrap(cls, data, ctx, requires_grad: bool) -> Tensor:
        t = object.__new__(Tensor)
        t._data = data
        t.grad = None
        t._ctx = ctx
        t._requires_grad = requires_grad
        t._version = 0
        t._hooks = None
        t._retains_grad = False
        return t

    # --- autograd state -----------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind not in "fc":
            raise DTypeError(f"requires_grad: only floating-point tensors can require gradients, "
                             f"got {self._data.dtype}; convert with .float() first")
        if not requires_grad and self._ctx is not None:
            raise GraphError("requires_grad_(False): this tensor is the output of a recorded "
                             "operation; use .detach() to get a tensor outside the graph")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> type | None:
        """The node type (Op subclass) that produced this tensor, or None for a leaf."""
        return None if self._ctx is None else self._ctx.fn

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if self._ctx is not None:
            self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook) -> _HookHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self._requires_grad:
            raise GraphError("register_hook: cannot register a hook on a tensor that does not "
                             "require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = _HookHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook) -> _HookHandle:
        """Call ``hook(self)`` after this leaf's ``.grad`` has received the gradient of a
        backward pass (PyTorch's hook of the same name: optimizers-in-backward and
        DistributedDataParallel's bucketed all-reduce start from it)."""
        if not self._requires_grad:
            raise GraphError("register_post_accumulate_grad_hook: cannot register a hook on a "
                             "tensor that does not require grad")
        if self._ctx is not None:
            raise GraphError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                             "cannot be registered on non-leaf tensors")
        hooks = engine.post_accumulate_hooks(self)
        handle = _HookHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Back-propagate from this tensor (lecture: "Back-Prop in General Flow Graph")."""
        if create_graph:
            raise GraphError("backward: create_graph=True (higher-order gradients) is not "
                             "supported; flowgrad computes first-order gradients")
        if not self._requires_grad:
            raise GraphError("backward: this tensor does not require grad and has no grad_fn; "
                             "did you forget requires_grad=True on a leaf, or run under no_grad?")
        seed = _seed(self, gradient, "backward")
        capture = None
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            capture = {id(t): None for t in inputs}
        engine.run_backward([self], [seed], bool(retain_graph), capture)
        if capture is not None:
            for t in inputs:
                g = capture[id(t)]
                if g is not None:
                    engine._accumulate(t, g)
                    engine.run_post_accumulate_hooks(t)

    def detach(self) -> Tensor:
        return Tensor._wrap(self._data, None, False)

    def detach_(self) -> Tensor:
        self._ctx = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        """PyTorch's ``t.data``: a new tensor sharing ``t``'s memory, outside the graph
        (``requires_grad`` False, no ``grad_fn``), so its in-place methods work on a parameter
        (``p.data.add_(p.grad, alpha=-lr)``). As in PyTorch, writes through it are not counted
        by ``t``'s version counter: a later backward does not raise "modified in place" and
        uses the new values. (The raw NumPy/CuPy array is ``t.numpy()`` or, inside flowgrad,
        the slot ``t._data``.)"""
        return Tensor._wrap(self._data, None, False)

    @data.setter
    def data(self, value: Tensor) -> None:
        """``t.data = other``: ``t`` now shares ``other``'s memory (its shape, dtype and device
        may differ, as in PyTorch); ``t`` keeps its ``requires_grad``, ``grad_fn`` and ``grad``."""
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__} "
                            "(t.data = ...; wrap it with flowgrad.as_tensor(...) first)")
        if self._requires_grad and value._data.dtype.kind not in "fc":
            raise DTypeError(f"t.data = ...: data set to a tensor that requires gradients must "
                             f"be floating point or complex dtype, got {value._data.dtype}")
        self._data = value._data

    # --- attributes and conversions -------------------------------------------------------------
    @property
    def shape(self) -> _Size:
        """The sizes, as a ``flowgrad.Size`` (a tuple: ``t.shape == (2, 3)`` holds)."""
        return tuple.__new__(_Size, self._data.shape)

    def size(self, dim: int | None = None) -> _Size | int:
        if dim is None:
            return tuple.__new__(_Size, self._data.shape)
        return self._data.shape[_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> _device:
        """A ``flowgrad.device`` (also the string 'cpu', 'cuda' or 'cuda:N')."""
        return _device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return not isinstance(self._data, np.ndarray)

    @property
    def is_cpu(self) -> bool:
        return isinstance(self._data, np.ndarray)

    is_xpu = is_mps = is_meta = property(lambda self: False)  # noqa: ARG005

    def get_device(self) -> int:
        """The CUDA device index, -1 for a CPU tensor (as PyTorch)."""
        d = self.device
        return -1 if d.type == "cpu" else (d.index or 0)

    @property
    def xp(self):
        """The array module of this tensor's storage (numpy or cupy)."""
        return backend.get_array_module(self._data)

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    def item(self) -> float | int | bool:
        if self._data.size != 1:
            raise ShapeError(f"item: only one-element tensors can be converted to a Python "
                             f"number, got shape {tuple(self._data.shape)}")
        return backend.to_numpy(self._data).reshape(()).item()

    def tolist(self) -> list | float | int | bool:
        return backend.to_numpy(self._data).tolist()

    def numpy(self, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise GraphError("numpy: can't call numpy() on a tensor that requires grad; use "
                             "tensor.detach().numpy()")
        if self.device != "cpu" and not force:
            raise GraphError(f"numpy: tensor is on {self.device}; use tensor.cpu().numpy()")
        return backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """NumPy's array protocol, as PyTorch: a tensor that requires grad refuses (like
        ``numpy()``); ``np.asarray(t)`` shares memory with a CPU tensor, ``np.array(t)`` (NumPy
        2 passes ``copy=True``) copies. ``copy=False`` shares memory or raises ValueError when a
        copy cannot be avoided (a dtype change, a GPU tensor); PyTorch raises that ValueError
        for every ``copy=False`` only because its ``__array__`` lacks the keyword."""
        if self._requires_grad:
            raise GraphError("__array__: can't convert a tensor that requires grad to a NumPy "
                             "array (np.array/np.asarray call numpy()); use "
                             "tensor.detach().numpy()")
        arr = self._data
        on_host = isinstance(arr, np.ndarray)
        if copy is False and (not on_host or (dtype is not None and np.dtype(dtype) != arr.dtype)):
            raise ValueError(f"__array__: unable to avoid a copy of a tensor on {self.device} "
                             f"with dtype {arr.dtype} (requested dtype {dtype}, copy=False); use "
                             "np.asarray(t) to allow a copy")
        arr = backend.to_numpy(arr)
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)  # a new array already
        return arr.copy() if copy and on_host else arr

    def clone(self) -> Tensor:
        return E.Clone.apply(self)

    def contiguous(self) -> Tensor:
        if self._data.flags.c_contiguous:
            return self
        return E.Clone.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def to(self, *args, **kwargs) -> Tensor:
        """to(dtype), to(device), to(device, dtype) or to(other), with PyTorch's keywords
        (device, dtype, non_blocking, copy, memory_format): PyTorch's overloads."""
        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
        if unknown:
            raise TypeError(f"to() got an unexpected keyword argument '{sorted(unknown)[0]}'")
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, bool):  # to(dtype, non_blocking, copy): PyTorch's positionals
                continue
            elif isinstance(a, (str, int, np.integer)) or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = out.type(dtype)
        if device is not None and backend.normalize_device(device) != out.device:
            out = _ToDevice.apply(out, backend.normalize_device(device))
        if kwargs.get("copy") and out is self:
            out = self.clone()
        return out

    def cpu(self, memory_format=None) -> Tensor:  # noqa: ARG002 (PyTorch's signature)
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: bool = False,  # noqa: ARG002
             memory_format=None) -> Tensor:  # noqa: ARG002 (PyTorch's signature)
        if device is None:
            return self.to("cuda")
        return self.to(f"cuda:{device}" if isinstance(device, (int, np.integer)) else device)

    def type(self, dtype=None, non_blocking: bool = False) -> Tensor | str:  # noqa: ARG002
        """PyTorch's legacy type: with no argument the type's name ("flowgrad.FloatTensor",
        "flowgrad.cuda.FloatTensor" on the GPU); with a dtype, a legacy type or such a name
        ("torch.DoubleTensor" is read too), the tensor in that dtype."""
        from .devices import legacy_dtype, legacy_type_name

        if dtype is None:
            return legacy_type_name(self._data.dtype, self.is_cuda)
        if isinstance(dtype, _LegacyTensorType):  # t.type(fg.LongTensor)
            dtype = dtype.dtype
        elif isinstance(dtype, str) and dtype.endswith("Tensor"):
            dtype = legacy_dtype(dtype)
        dtype = dtypes.to_dtype(dtype)
        if dtype == self._data.dtype:
            return self
        if dtype.kind == "f" and self._data.dtype.kind == "f":
            return E.Cast.apply(self, dtype)
        return Tensor._wrap(self._data.astype(dtype), None, False)

    def type_as(self, other) -> Tensor:
        return self.type(other.dtype)

    def new_tensor(self, data, dtype=None, requires_grad: bool = False) -> Tensor:
        return tensor(data, dtype=dtype or self.dtype, device=self.device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        return self._new_filled(size, 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        return self._new_filled(size, 1, dtype, requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
        return self._new_filled((tuple(size),), fill_value, dtype, requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        return self._new_filled(size, 0, dtype, requires_grad)

    def _new_filled(self, size, value, dtype, requires_grad) -> Tensor:
        dt = self.dtype if dtype is None else dtypes.to_dtype(dtype)
        t = Tensor._wrap(self.xp.full(_shape_arg(size), value, dtype=dt), None, False)
        return t.requires_grad_() if requires_grad else t

    def float(self) -> Tensor:
        return self.type(dtypes.float32)

    def double(self) -> Tensor:
        return self.type(dtypes.float64)

    def half(self) -> Tensor:
        return self.type(dtypes.float16)

    def long(self) -> Tensor:
        return self.type(dtypes.int64)

    def int(self) -> Tensor:
        return self.type(dtypes.int32)

    def bool(self) -> Tensor:
        return self.type(dtypes.bool_)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self._data), separator=", ", precision=4,
                               floatmode="maxprec_equal",
                               prefix="tensor(")
        extra = []
        if self._data.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_):
            extra.append(f"dtype=flowgrad.{self._data.dtype}")
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self._ctx is not None:
            extra.append(f"grad_fn=<{self._ctx.fn.__name__}Backward>")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self._data.size} "
                               "elements is ambiguous; use .any() or .all()")
        return bool(self._data.reshape(()))

    def __format__(self, format_spec: str) -> str:
        """A 0-d tensor formats as its Python number (``f"{loss:.4f}"``), as in PyTorch; other
        tensors take only an empty format spec."""
        if self._data.ndim == 0:
            return format(self.item(), format_spec)
        if format_spec:
            raise TypeError("unsupported format string passed to Tensor.__format__ (a format "
                            f"spec needs a 0-d tensor; this one has shape {list(self.shape)})")
        return str(self)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    # --- arithmetic -------------------------------------------------------------------------------
    def __add__(self, other) -> Tensor:
        a, b = _operands(self, other, "add")
        return E.Add.apply(a, b)

    def __radd__(self, other) -> Tensor:
        a, b = _operands(self, other, "add")
        return E.Add.apply(b, a)

    def __sub__(self, other) -> Tensor:
        _no_bool_sub(self, other)
        a, b = _operands(self, other, "sub")
        return E.Sub.apply(a, b)

    def __rsub__(self, other) -> Tensor:
        _no_bool_sub(self, other)
        a, b = _operands(self, other, "sub")
        return E.Sub.apply(b, a)

    def __mul__(self, other) -> Tensor:
        a, b = _operands(self, other, "mul")
        return E.Mul.apply(a, b)

    def __rmul__(self, other) -> Tensor:
        a, b = _operands(self, other, "mul")
        return E.Mul.apply(b, a)

    def __truediv__(self, other) -> Tensor:
        a, b = _operands(self, other, "div", true_div=True)
        return E.Div.apply(a, b)

    def __rtruediv__(self, other) -> Tensor:
        a, b = _operands(self, other, "div", true_div=True)
        return E.Div.apply(b, a)

    def __floordiv__(self, other) -> Tensor:
        a, b = _operands(self, other, "floor_divide")
        return E.FloorDivide.apply(a, b)

    def __rfloordiv__(self, other) -> Tensor:
        a, b = _operands(self, other, "floor_divide")
        return E.FloorDivide.apply(b, a)

    def __mod__(self, other) -> Tensor:
        a, b = _operands(self, other, "remainder")
        return E.Remainder.apply(a, b)

    def __rmod__(self, other) -> Tensor:
        a, b = _operands(self, other, "remainder")
        return E.Remainder.apply(b, a)

    def __pow__(self, other) -> Tensor:
        a, b = _operands(self, other, "pow")
        return E.Pow.apply(a, b)

    def __rpow__(self, other) -> Tensor:
        a, b = _operands(self, other, "pow")
        return E.Pow.apply(b, a)

    def __matmul__(self, other) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other) -> Tensor:
        return as_tensor(other, dtype=self.dtype).matmul(self)

    def __neg__(self) -> Tensor:
        return E.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return E.Abs.apply(self)

    def __invert__(self) -> Tensor:
        if self._data.dtype.kind != "b":
            return Tensor._wrap(~self._data, None, False)
        return E.LogicalNot.apply(self)

    def _compare(self, other, op) -> Tensor:
        a, b = _operands(self, other, op)
        return E.Compare.apply(a, b, op)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, "eq")

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, "ne")

    def __lt__(self, other) -> Tensor:
        return self._compare(other, "lt")

    def __le__(self, other) -> Tensor:
        return self._compare(other, "le")

    def __gt__(self, other) -> Tensor:
        return self._compare(other, "gt")

    def __ge__(self, other) -> Tensor:
        return self._compare(other, "ge")

    def __and__(self, other) -> Tensor:
        return self._compare(other, "and") if self.dtype.kind == "b" else \
            Tensor._wrap(self._data & _raw(other), None, False)

    def __or__(self, other) -> Tensor:
        return self._compare(other, "or") if self.dtype.kind == "b" else \
            Tensor._wrap(self._data | _raw(other), None, False)

    def __xor__(self, other) -> Tensor:
        return self._compare(other, "xor") if self.dtype.kind == "b" else \
            Tensor._wrap(self._data ^ _raw(other), None, False)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def add(self, other, alpha=1) -> Tensor:
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, alpha=1) -> Tensor:
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other) -> Tensor:
        return self * other

    def div(self, other, rounding_mode=None) -> Tensor:
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            q = self / other
            return Tensor._wrap(self.xp.trunc(q._data).astype(q.dtype), None, False)
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', "
                         f"got {rounding_mode!r}")

    multiply, subtract, divide, true_divide = mul, sub, div, __truediv__

    def floor_divide(self, other) -> Tensor:
        return self // other

    def remainder(self, other) -> Tensor:
        return self % other

    def pow(self, exponent) -> Tensor:
        return self ** exponent

    def neg(self) -> Tensor:
        return E.Neg.apply(self)

    negative = neg

    def eq(self, other) -> Tensor:
        return self == other

    def ne(self, other) -> Tensor:
        return self != other

    def lt(self, other) -> Tensor:
        return self < other

    def le(self, other) -> Tensor:
        return self <= other

    def gt(self, other) -> Tensor:
        return self > other

    def ge(self, other) -> Tensor:
        return self >= other

    def logical_and(self, other) -> Tensor:
        return E.Compare.apply(self, _raw_tensor(other), "and")

    def logical_or(self, other) -> Tensor:
        return E.Compare.apply(self, _raw_tensor(other), "or")

    def logical_xor(self, other) -> Tensor:
        return E.Compare.apply(self, _raw_tensor(other), "xor")

    def logical_not(self) -> Tensor:
        return E.LogicalNot.apply(self)

    def equal(self, other) -> bool:
        return self.shape == other.shape and bool((self._data == other._data).all())

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
        return bool(self.xp.allclose(self._data, _raw(other), rtol=rtol, atol=atol,
                                     equal_nan=equal_nan))

    def isnan(self) -> Tensor:
        return Tensor._wrap(self.xp.isnan(self._data), None, False)

    def isinf(self) -> Tensor:
        return Tensor._wrap(self.xp.isinf(self._data), None, False)

    def isfinite(self) -> Tensor:
        return Tensor._wrap(self.xp.isfinite(self._data), None, False)

    # --- maths ------------------------------------------------------------------------------------
    def exp(self) -> Tensor:
        return E.Exp.apply(self)

    def expm1(self) -> Tensor:
        return E.Expm1.apply(self)

    def log(self) -> Tensor:
        return E.Log.apply(self)

    def log1p(self) -> Tensor:
        return E.Log1p.apply(self)

    def log2(self) -> Tensor:
        return E.Log.apply(self) * (1 / np.log(2))

    def log10(self) -> Tensor:
        return E.Log.apply(self) * (1 / np.log(10))

    def sqrt(self) -> Tensor:
        return E.Sqrt.apply(self)

    def rsqrt(self) -> Tensor:
        return E.Rsqrt.apply(self)

    def sin(self) -> Tensor:
        return E.Sin.apply(self)

    def cos(self) -> Tensor:
        return E.Cos.apply(self)

    def tanh(self) -> Tensor:
        return A.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return A.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return A.Relu.apply(self)

    def abs(self) -> Tensor:
        return E.Abs.apply(self)

    absolute = abs

    def sign(self) -> Tensor:
        return E.Sign.apply(self)

    def erf(self) -> Tensor:
        return E.Erf.apply(self)

    def reciprocal(self) -> Tensor:
        return E.Reciprocal.apply(self)

    def square(self) -> Tensor:
        return E.Pow.apply(self, 2)

    def floor(self) -> Tensor:
        return Tensor._wrap(self.xp.floor(self._data), None, False)

    def ceil(self) -> Tensor:
        return Tensor._wrap(self.xp.ceil(self._data), None, False)

    def round(self) -> Tensor:
        return Tensor._wrap(self.xp.round(self._data), None, False)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            x, lo, hi = self, min, max
            for b in (min, max):  # one result dtype for all three, by the binary-op rule
                if b is not None:
                    x = _operands(x, b, "clamp")[0]
            lo = None if min is None else _operands(x, min, "clamp")[1]
            hi = None if max is None else _operands(x, max, "clamp")[1]
            return E.ClampTensor.apply(x, lo, hi)
        if self.dtype.kind != "f":
            if isinstance(min, float) or isinstance(max, float):  # int with float bound: float
                return E.Clamp.apply(self.type(dtypes.get_default_dtype()), min, max)
            return Tensor._wrap(self.xp.clip(self._data, min, max), None, False)
        return E.Clamp.apply(self, min, max)

    clip = clamp

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    def maximum(self, other) -> Tensor:
        a, b = _operands(self, other, "maximum")
        return E.Maximum.apply(a, b)

    def minimum(self, other) -> Tensor:
        a, b = _operands(self, other, "minimum")
        return E.Minimum.apply(a, b)

    def where(self, condition, other) -> Tensor:
        return where(condition, self, other)

    def masked_fill(self, mask, value) -> Tensor:
        mask = _raw_tensor(mask)
        if mask.dtype.kind != "b":
            raise DTypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}")
        return where(mask, value, self)

    def lerp(self, end, weight) -> Tensor:
        """start + weight (end - start), by PyTorch's rules: floating start; end, and weight when
        it is a tensor of 1 or more dims, of start's dtype (a 0-d weight is cast to it)."""
        if not isinstance(end, Tensor):
            raise TypeError(f"lerp: end must be a Tensor, got {type(end).__name__}")
        start = self
        if isinstance(weight, Tensor) and weight.ndim == 0 and weight.dtype.kind == "f" and \
                self.dtype.kind != "f" and end.dtype == self.dtype:
            # a 0-d floating weight promotes integer start and end (PyTorch's rule)
            start, end = self.type(weight.dtype), end.type(weight.dtype)
        return start._lerp(end, weight)

    def _lerp(self, end, weight) -> Tensor:
        if self.dtype.kind != "f":
            raise DTypeError(f"lerp: expected a floating-point input (float32 or float64), got "
                             f"{self.dtype}; convert it with .float()")
        if end.dtype != self.dtype:
            raise dtypes.mixed_dtypes("lerp", self.dtype, end.dtype, ("input", "end"))
        if isinstance(weight, Tensor):
            if weight.ndim and weight.dtype != self.dtype:
                raise dtypes.mixed_dtypes("lerp", self.dtype, weight.dtype, ("input", "weight"))
        elif not isinstance(weight, _Number) and not isinstance(weight, (np.number, np.bool_)):
            raise TypeError(f"lerp: weight must be a Tensor or a number, got "
                            f"{type(weight).__name__}")
        else:
            weight = float(weight)
        return E.Lerp.apply(self, end, weight)

    def softmax(self, dim) -> Tensor:
        return R.Softmax.apply(self, _dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim) -> Tensor:
        return R.LogSoftmax.apply(self, _dim(dim, self.ndim, "log_softmax"))

    # --- reductions -------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
        x = self if dtype is None else self.type(dtype)
        if x.dtype.kind != "f" and x.dtype != dtypes.int64:  # PyTorch sums integers in int64
            x = x.long()
        return R.Sum.apply(x, _dims(dim, self.ndim, "sum"), keepdim)

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
        x = self if dtype is None else self.type(dtype)
        if x.dtype.kind != "f":
            raise DTypeError(f"mean: input dtype should be floating point, got {x.dtype}")
        return R.Mean.apply(x, _dims(dim, self.ndim, "mean"), keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
        if self.dtype.kind != "f":  # checked before the dims, as in PyTorch
            raise DTypeError(f"var/std: only floating-point inputs are supported, got "
                             f"{self.dtype}; convert it with .float()")
        dims = _dims(dim, self.ndim, "var")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return R.Var.apply(self, dims, keepdim, correction)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _extreme(self, dim, keepdim, minimum):
        name = "min" if minimum else "max"
        if dim is None:
            _nonempty(self, None, name)
            return R.AMax.apply(self, None, False, minimum, True)
        if isinstance(dim, Tensor):
            return self.minimum(dim) if minimum else self.maximum(dim)
        d = _dim(dim, self.ndim, name)
        if self.ndim == 0:  # dim 0 of a 0-d tensor is the tensor itself (PyTorch's rule)
            return values_indices(E.Clone.apply(self),
                                  Tensor._wrap(self.xp.zeros((), dtype=np.int64), None, False))
        _nonempty(self, (d,), name)
        idx = (self.xp.argmin if minimum else self.xp.argmax)(self._data, axis=d, keepdims=True)
        values = I.Gather.apply(self, d, idx)
        indices = Tensor._wrap(idx, None, False)
        if not keepdim:
            values = values.squeeze(d)
            indices = indices.squeeze(d)
        return values_indices(values, indices)

    def max(self, dim=None, keepdim: bool = False) -> Tensor | values_indices:
        return self._extreme(dim, keepdim, False)

    def min(self, dim=None, keepdim: bool = False) -> Tensor | values_indices:
        return self._extreme(dim, keepdim, True)

    def amax(self, dim=(), keepdim: bool = False) -> Tensor:
        dims = _dims(dim if dim != () else None, self.ndim, "amax")
        _nonempty(self, dims, "amax")
        return R.AMax.apply(self, dims, keepdim, False)

    def amin(self, dim=(), keepdim: bool = False) -> Tensor:
        dims = _dims(dim if dim != () else None, self.ndim, "amin")
        _nonempty(self, dims, "amin")
        return R.AMax.apply(self, dims, keepdim, True)

    def argmax(self, dim=None, keepdim: bool = False) -> Tensor:
        return _argext(self, dim, keepdim, self.xp.argmax, "argmax")

    def argmin(self, dim=None, keepdim: bool = False) -> Tensor:
        return _argext(self, dim, keepdim, self.xp.argmin, "argmin")

    def prod(self, dim=None, keepdim: bool = False) -> Tensor:
        d = None if dim is None else _dim(dim, self.ndim, "prod")
        return R.Prod.apply(self, None if self.ndim == 0 else d, keepdim)

    def logsumexp(self, dim, keepdim: bool = False) -> Tensor:
        return R.LogSumExp.apply(self, _dims(dim, self.ndim, "logsumexp"), keepdim)

    def cumsum(self, dim) -> Tensor:
        return R.Cumsum.apply(self, _dim(dim, self.ndim, "cumsum"))

    def norm(self, p="fro", dim=None, keepdim: bool = False) -> Tensor:
        if self.dtype.kind != "f":  # checked before the dims, as in PyTorch
            raise DTypeError(f"norm: expected a floating-point input (float32 or float64), got "
                             f"{self.dtype}; convert it with .float()")
        dims = _dims(dim, self.ndim, "norm")
        if p in ("fro", 2, 2.0):
            return R.Norm2.apply(self, dims, keepdim)
        if p in (float("inf"), "inf"):
            if self._data.size == 0 and (dims is None or any(self.shape[d] == 0 for d in dims)):
                raise ShapeError(f"norm: cannot compute the inf norm over an empty dimension "
                                 f"(input shape {tuple(self.shape)}): max has no identity")
            return self.abs().amax(dim=dims if dims else (), keepdim=keepdim)
        if p == 1:
            return self.abs().sum(dim=dims, keepdim=keepdim)
        return (self.abs() ** p).sum(dim=dims, keepdim=keepdim) ** (1.0 / p)

    def all(self, dim=None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(self.xp.asarray(self._data.astype(bool).all(
            axis=_dims(dim, self.ndim, "all"), keepdims=keepdim)), None, False)

    def any(self, dim=None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(self.xp.asarray(self._data.astype(bool).any(
            axis=_dims(dim, self.ndim, "any"), keepdims=keepdim)), None, False)

    # --- shape ------------------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        shape = _sizes(shape, "reshape")
        if self._data.shape == shape:
            return self
        try:
            return S.Reshape.apply(self, shape)
        except ValueError:
            raise ShapeError(f"reshape: shape {shape} is invalid for input of shape "
                             f"{tuple(self.shape)} ({self.numel()} elements)") from None

    def view(self, *shape) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, float)) \
                and not hasattr(shape[0], "__index__"):
            return self.type(shape[0])
        return self.reshape(_sizes(shape, "view"))

    def view_as(self, other) -> Tensor:
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _dim(start_dim, self.ndim, "flatten"), _dim(end_dim, self.ndim, "flatten")
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:] if e >= s else self.shape
        if e >= s:
            shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def unflatten(self, dim: int, sizes) -> Tensor:
        d = _dim(dim, self.ndim, "unflatten")
        sizes = list(sizes)
        if -1 in sizes:
            known = int(np.prod([s for s in sizes if s != -1]))
            sizes[sizes.index(-1)] = self.shape[d] // known
        if int(np.prod(sizes)) != self.shape[d]:
            raise ShapeError(f"unflatten: sizes {tuple(sizes)} do not multiply to the size "
                             f"{self.shape[d]} of dimension {dim} of {tuple(self.shape)}")
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim=None) -> Tensor:
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            dims = _dims(dim, self.ndim, "squeeze") or ()
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim: int) -> Tensor:
        d = _dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims) -> Tensor:
        dims = tuple(_dim(d, self.ndim, "permute") for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise ShapeError(f"permute: dims {dims} are not a permutation of the "
                             f"{self.ndim} dimensions of {tuple(self.shape)}")
        return S.Permute.apply(self, dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        perm = list(range(self.ndim))
        d0, d1 = _dim(dim0, self.ndim, "transpose"), _dim(dim1, self.ndim, "transpose")
        if self.ndim == 0:  # dims 0 and -1 of a 0-d tensor are the tensor itself
            return S.Permute.apply(self, ())
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return S.Permute.apply(self, tuple(perm))

    swapaxes = swapdims = transpose

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ShapeError(f"t: expects a tensor with <= 2 dimensions, got {tuple(self.shape)}")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self):
        return S.Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        if self.ndim < 2:
            raise ShapeError(f"mT: expects at least 2 dimensions, got {tuple(self.shape)}")
        return self.transpose(-2, -1)

    def expand(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                             f"number of dimensions of {tuple(self.shape)}")
        shape = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        for i, s in enumerate(self.shape):
            if s != 1 and s != shape[i + lead]:
                raise ShapeError(f"expand: cannot expand {tuple(self.shape)} to {shape}: "
                                 f"dimension {i} has size {s} (only size-1 dims can expand)")
        if shape == self.shape:
            return self
        return S.Expand.apply(self, shape)

    def expand_as(self, other) -> Tensor:
        return self.expand(other.shape)

    def broadcast_to(self, shape) -> Tensor:
        return self.expand(shape)

    def repeat(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ShapeError(f"repeat: number of repeat sizes ({len(sizes)}) can not be smaller "
                             f"than the number of dimensions of {tuple(self.shape)}")
        return S.Repeat.apply(self, sizes)

    def split(self, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
        d = _dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            sizes = [builtins.min(step, n - s) for s in range(0, n, step)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if builtins.sum(sizes) != n:
                raise ShapeError(f"split: sections {sizes} do not sum to {n}, the size of "
                                 f"dimension {dim} of {tuple(self.shape)}")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        n = self.shape[_dim(dim, self.ndim, "chunk")]
        return self.split(-(-n // chunks) if n else 1, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        d = _dim(dim, self.ndim, "unbind")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        d = _dim(dim, self.ndim, "narrow")
        if start < 0:
            start += self.shape[d]
        if not 0 <= start <= start + length <= self.shape[d]:
            raise IndexError(f"narrow: start {start} + length {length} exceeds the size "
                             f"{self.shape[d]} of dimension {dim}")
        idx = (slice(None),) * d + (slice(start, start + length),)
        return I.GetItem.apply(self, idx)

    def select(self, dim: int, index: int) -> Tensor:
        d = _dim(dim, self.ndim, "select")
        return I.GetItem.apply(self, (slice(None),) * d + (index,))

    def flip(self, *dims) -> Tensor:
        dims = tuple(_dim(d, self.ndim, "flip") for d in _shape_arg(dims))
        return S.Flip.apply(self, () if self.ndim == 0 else dims)

    def roll(self, shifts, dims=None) -> Tensor:
        if dims is None:
            return S.Roll.apply(self.flatten(), shifts, None).reshape(self.shape)
        if isinstance(dims, int):
            dims = _dim(dims, self.ndim, "roll")
        else:
            dims = tuple(_dim(d, self.ndim, "roll") for d in dims)
            shifts = tuple(shifts)
        return S.Roll.apply(self, shifts, dims)

    def tril(self, diagonal: int = 0) -> Tensor:
        return S.Triangle.apply(self, diagonal, False)

    def triu(self, diagonal: int = 0) -> Tensor:
        return S.Triangle.apply(self, diagonal, True)

    # --- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, index) -> Tensor:
        index = _index_arg(index)
        try:
            return I.GetItem.apply(self, index)
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor of shape {tuple(self.shape)})") from None

    def __setitem__(self, index, value) -> None:
        index = _index_arg(index)
        if grad_mode.is_grad_enabled() and (self._requires_grad or (
                isinstance(value, Tensor) and value._requires_grad)):
            self._record_inplace("__setitem__ (x[...] = v)",
                                 lambda s: _SetItem.apply(s, value, index))
            return
        self._data[index] = _raw(value)
        self._version += 1

    def gather(self, dim: int, index) -> Tensor:
        d = _dim(dim, self.ndim, "gather")
        idx = _raw(index)
        if self.ndim == 0 and idx.ndim <= 1:  # a 0-d input is read as shape (1,)
            _check_index_range("gather", idx, 1)
            return self.reshape(1).gather(0, Tensor._wrap(idx.reshape(-1), None, False)).reshape(
                idx.shape)
        if idx.ndim != self.ndim:
            raise ShapeError(f"gather: index {tuple(idx.shape)} must have as many dimensions as "
                             f"the input {tuple(self.shape)}")
        _check_index_range("gather", idx, self.shape[d])
        return I.Gather.apply(self, d, idx)

    def take_along_dim(self, indices, dim=None) -> Tensor:
        idx = _raw(indices)
        if dim is None:
            return self.flatten().gather(0, Tensor._wrap(idx.reshape(-1), None, False))
        d = _dim(dim, self.ndim, "take_along_dim")
        shape = np.broadcast_shapes(
            tuple(1 if i == d else s for i, s in enumerate(self.shape)),
            tuple(1 if i == d else s for i, s in enumerate(idx.shape)))
        x_shape = tuple(self.shape[d] if i == d else s for i, s in enumerate(shape))
        i_shape = tuple(idx.shape[d] if i == d else s for i, s in enumerate(shape))
        x = self.expand(x_shape)
        return x.gather(d, Tensor._wrap(self.xp.broadcast_to(idx, i_shape), None, False))

    def scatter(self, dim: int, index, src=None, value=None, reduce=None) -> Tensor:
        if reduce is not None:
            if reduce != "add":
                raise ValueError(f"scatter: reduce={reduce!r} is not supported (only 'add')")
            return self.scatter_add(dim, index, src)
        src = value if src is None else src
        d = _dim(dim, self.ndim, "scatter")
        idx = _raw(index)
        _check_index_range("scatter", idx, self.shape[d])
        src = src if isinstance(src, Tensor) else float(src) if self.dtype.kind == "f" else src
        return I.Scatter.apply(self, d, idx, src)

    def scatter_add(self, dim: int, index, src) -> Tensor:
        d = _dim(dim, self.ndim, "scatter_add")
        idx = _raw(index)
        _check_index_range("scatter_add", idx, self.shape[d])
        return I.ScatterAdd.apply(self, d, idx, src)

    def scatter_(self, dim: int, index, src=None, value=None, reduce=None) -> Tensor:
        """In-place scatter (see ``scatter``); refused on tensors in the graph like every in-place
        op (docs/pytorch-differences.md)."""
        other = value if src is None else src
        if grad_mode.is_grad_enabled() and (self._requires_grad or (
                isinstance(other, Tensor) and other._requires_grad)):
            return self._record_inplace("scatter_", lambda s: s.scatter(
                dim, index, src, value=value, reduce=reduce))
        res = self.detach().scatter(dim, index, src, value=value, reduce=reduce)
        return self._inplace("scatter_", lambda a: self.xp.copyto(a, res._data), other)

    def index_add(self, dim: int, index, source, *, alpha=1) -> Tensor:
        """out = self with ``alpha * source`` slices added at ``index`` along ``dim`` (repeats
        accumulate); differentiable in self and source (a scatter-add)."""
        d = _dim(dim, self.ndim, "index_add")
        idx = _raw(index)
        if idx.ndim > 1:
            raise IndexOutOfRangeError(f"index_add_(): Index is supposed to be a vector, but got "
                                       f"dim: {idx.ndim} and size: {list(idx.shape)}")
        idx = idx.reshape(-1)
        if not isinstance(source, Tensor):
            source = as_tensor(source, dtype=self.dtype)
        if source.dtype != self.dtype:
            raise DTypeError(f"index_add_(): self ({self.dtype}) and source ({source.dtype}) "
                             "must have the same scalar type")
        src_shape = tuple(source.shape) if source.ndim else (1,)
        self_shape = tuple(self.shape) if self.ndim else (1,)
        if len(src_shape) != len(self_shape) or any(
                a != b for k, (a, b) in enumerate(zip(src_shape, self_shape)) if k != d):
            raise ShapeError(f"index_add_(): source tensor shape must match self tensor shape, "
                             f"excluding the specified dimension. Got self.shape = "
                             f"{list(self.shape)} source.shape = {list(source.shape)}")
        if idx.shape[0] != src_shape[d]:
            raise ShapeError(f"index_add_(): Number of indices ({idx.shape[0]}) should be equal "
                             f"to source.size(dim): ({src_shape[d]}), for dim: {dim}")
        _check_index_range("index_add", idx, self_shape[d])
        if alpha != 1:
            source = source * alpha
        full = self.xp.broadcast_to(
            idx.reshape(tuple(-1 if k == d else 1 for k in range(len(src_shape)))), src_shape)
        x = self if self.ndim else self.reshape(1)
        out = x.scatter_add(d, Tensor._wrap(self.xp.ascontiguousarray(full), None, False),
                            source.reshape(src_shape))
        return out if self.ndim else out.reshape(())

    def index_add_(self, dim: int, index, source, *, alpha=1) -> Tensor:
        """In-place ``index_add``."""
        if grad_mode.is_grad_enabled() and (self._requires_grad or (
                isinstance(source, Tensor) and source._requires_grad)):
            return self._record_inplace("index_add_", lambda s: s.index_add(
                dim, index, source, alpha=alpha))
        src = source.detach() if isinstance(source, Tensor) else source
        res = self.detach().index_add(dim, index, src, alpha=alpha)
        return self._inplace("index_add_", lambda a: self.xp.copyto(a, res._data), source)

    def diag(self, diagonal: int = 0) -> Tensor:
        """A 1-D input becomes the ``diagonal``-th diagonal of a square matrix; a 2-D input gives
        its ``diagonal``-th diagonal as 1-D (torch.diag)."""
        if self.ndim == 2:
            return self.diagonal(diagonal)
        if self.ndim != 1:
            raise ShapeError(f"diag(): Supports 1D or 2D tensors. Got {self.ndim}D")
        n = self.shape[0]
        k = int(diagonal)
        size = n + abs(k)
        i = self.xp.arange(n)
        flat = (i + max(-k, 0)) * size + i + max(k, 0)
        zeros = Tensor._wrap(self.xp.zeros(size * size, dtype=self._data.dtype), None, False)
        return zeros.scatter(0, Tensor._wrap(flat, None, False), self).reshape(size, size)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        """The diagonal of the (dim1, dim2) planes, as a new last dim (torch.diagonal); a copy,
        not a view."""
        d1, d2 = _dim(dim1, self.ndim, "diagonal"), _dim(dim2, self.ndim, "diagonal")
        if d1 == d2:
            raise ShapeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        rest = [k for k in range(self.ndim) if k not in (d1, d2)]
        x = self.permute(*rest, d1, d2)
        k = int(offset)
        n = max(0, min(self.shape[d1] + min(k, 0), self.shape[d2] - max(k, 0)))
        i = self.xp.arange(n)
        return x[(Ellipsis, i + max(-k, 0), i + max(k, 0))]

    def unique(self, sorted: bool = True, return_inverse: bool = False,  # noqa: ARG002
               return_counts: bool = False, dim: int | None = None):
        """The distinct values (or slices along ``dim``), always sorted; optionally the inverse
        indices and the counts. Not differentiable."""
        xp = self.xp
        if dim is None:
            vals, inv, counts = xp.unique(self._data.reshape(-1), return_inverse=True,
                                          return_counts=True)
            inv = inv.reshape(self.shape)
        else:
            d = _dim(dim, self.ndim, "unique")
            vals, inv, counts = xp.unique(self._data, return_inverse=True, return_counts=True,
                                          axis=d)
            inv = inv.reshape(-1)
        out = [Tensor._wrap(vals, None, False)]
        if return_inverse:
            out.append(Tensor._wrap(inv.astype(np.int64), None, False))
        if return_counts:
            out.append(Tensor._wrap(counts.astype(np.int64), None, False))
        return out[0] if len(out) == 1 else tuple(out)

    def index_select(self, dim: int, index) -> Tensor:
        d = _dim(dim, self.ndim, "index_select")
        idx = _raw(index)
        if idx.ndim > 1:
            raise ShapeError(f"index_select: index must be 1-D, got shape {tuple(idx.shape)}")
        _check_index_range("index_select", idx, self.shape[d])
        return I.IndexSelect.apply(self, d, idx.reshape(-1))

    def masked_select(self, mask) -> Tensor:
        return self[_raw(mask)]

    def nonzero(self, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
        nz = self.xp.nonzero(self._data)
        if as_tuple:
            return tuple(Tensor._wrap(a, None, False) for a in nz)
        return Tensor._wrap(self.xp.stack(nz, axis=1), None, False)

    def sort(self, dim: int = -1, descending: bool = False,
             stable: bool = False) -> values_indices:  # noqa: ARG002 - always stable
        """Sorted values (differentiable, through gather) and the permutation indices. The sort
        is always stable; NaN counts as the largest value, as in PyTorch."""
        d = _dim(dim, self.ndim, "sort")
        idx = _sort_indices(self.xp, self._data, d, descending)
        return values_indices(I.Gather.apply(self, d, idx), Tensor._wrap(idx, None, False))

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return self.sort(dim, descending, stable).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True):  # noqa: ARG002 - the result is always sorted
        """The k largest (or smallest) entries along ``dim`` and their indices, sorted."""
        d = _dim(dim, self.ndim, "topk")
        if self.dtype.kind == "b":
            raise DTypeError("topk: not defined for bool tensors; convert with .long()")
        if not 0 <= k <= self.shape[d]:
            raise ShapeError(f"topk: k={k} is out of range for dimension {dim} of size "
                             f"{self.shape[d]}")
        idx = _sort_indices(self.xp, self._data, d, largest)
        idx = self.xp.take(idx, self.xp.arange(k), axis=d)
        return values_indices(I.Gather.apply(self, d, idx), Tensor._wrap(idx, None, False))

    # --- linear algebra ---------------------------------------------------------------------------
    def matmul(self, other) -> Tensor:
        if not isinstance(other, Tensor):
            other = as_tensor(other, dtype=self.dtype)
        if other._data.dtype != self._data.dtype:
            raise DTypeError(f"matmul: expected both operands to have the same dtype, got "
                             f"{self.dtype} and {other.dtype}")
        return L.MatMul.apply(self, other)

    mm = matmul

    def bmm(self, other) -> Tensor:
        if self.ndim != 3 or other.ndim != 3:
            raise ShapeError(f"bmm: expects two 3-D tensors, got {tuple(self.shape)} and "
                             f"{tuple(other.shape)}")
        if self.shape[0] != other.shape[0]:
            raise ShapeError(f"bmm: batch sizes differ: {tuple(self.shape)} and "
                             f"{tuple(other.shape)}")
        return self.matmul(other)

    def outer(self, other) -> Tensor:
        if self.ndim != 1 or other.ndim != 1:
            raise ShapeError(f"outer: expects two 1-D tensors, got {tuple(self.shape)} and "
                             f"{tuple(other.shape)}")
        return self.reshape(-1, 1) * other.reshape(1, -1)

    ger = outer

    def dot(self, other) -> Tensor:
        if self.ndim != 1 or other.ndim != 1:
            raise ShapeError(f"dot: expects two 1-D tensors, got {tuple(self.shape)} and "
                             f"{tuple(other.shape)}")
        return self.matmul(other)

    # --- in place (each bumps the version counter) ------------------------------------------------
    # Outside the graph (no_grad, or nothing requires grad) an in-place op writes into the array.
    # Inside it, the op is recorded as in PyTorch: ``_record_inplace`` computes the out-of-place
    # result from a snapshot of the tensor (which takes over its history), writes it into the
    # array and rebases the tensor onto the new node.
    def _inplace(self, name, array_op, other=None, graph=None, saves_result=False) -> Tensor:
        if grad_mode.is_grad_enabled() and (self._requires_grad or (
                isinstance(other, Tensor) and other._requires_grad)):
            return self._record_inplace(name, graph, saves_result)
        array_op(self._data)
        self._version += 1
        return self

    def _record_inplace(self, name, graph, saves_result=False) -> Tensor:
        if self._ctx is None and self._requires_grad:
            raise GraphError(f"{name}: a leaf Variable that requires grad is being used in an "
                             "in-place operation. (wrap the update in fg.no_grad(), as optimizers "
                             "do, or write an out-of-place expression)")
        if graph is None:
            raise GraphError(f"in-place {name} on a tensor in the graph is not supported; write "
                             "an out-of-place expression, or wrap the update in fg.no_grad()")
        ctx = self._ctx
        if ctx is not None and ctx.parents is not None:
            may_share = getattr(self.xp, "may_share_memory", np.may_share_memory)
            for p in ctx.parents:
                if isinstance(p, Tensor) and p._requires_grad and may_share(self._data, p._data):
                    leaf = "leaf Variable that requires grad" if p._ctx is None else \
                        "tensor in the graph"
                    raise GraphError(
                        f"{name}: a view of a {leaf} is being used in an in-place operation; "
                        "flowgrad records in-place ops on non-view tensors only (clone() the "
                        "view first, docs/pytorch-differences.md)")
        old = Tensor._wrap(self._data.copy(), ctx, self._requires_grad)
        res = graph(old)
        if tuple(res.shape) != tuple(self.shape):
            raise ShapeError(f"{name}: output with shape {list(self.shape)} doesn't match the "
                             f"broadcast shape {list(res.shape)}")
        self.xp.copyto(self._data, res._data, casting="unsafe")
        self._version += 1
        if ctx is not None and ctx.out_ref is not None and ctx.out_ref[0]() is self:
            # the node that produced the old value saved it: its check must fire even once
            # this tensor is gone (the weak reference would then be dead)
            ctx.out_ref = (_Overwritten(self), ctx.out_ref[1])
        new = res._ctx
        if new is not None:
            if self._requires_grad:
                new.rebase = (_op_module._epoch, old)
                _op_module._epoch += 1
            # the node saved its output (PyTorch's relu_, exp_, tanh_, sigmoid_ do): now the
            # tensor itself, so that a later in-place op on it raises at backward
            if new.out_ref is not None or (saves_result and new.saved):
                new.out_ref = (weakref.ref(self), self._version)
        self._ctx = new
        self._requires_grad = res._requires_grad
        return self

    def add_(self, other, alpha=1) -> Tensor:
        _check_inplace_cast(self, other, "add_")
        o = _raw(other) if alpha == 1 else _raw(other) * alpha
        return self._inplace("add_", lambda a: self.xp.add(a, o, out=a, casting="unsafe"), other,
                             lambda s: s.add(other, alpha=alpha))

    def sub_(self, other, alpha=1) -> Tensor:
        _check_inplace_cast(self, other, "sub_")
        o = _raw(other) if alpha == 1 else _raw(other) * alpha
        return self._inplace("sub_", lambda a: self.xp.subtract(a, o, out=a, casting="unsafe"),
                             other, lambda s: s.sub(other, alpha=alpha))

    def mul_(self, other) -> Tensor:
        _check_inplace_cast(self, other, "mul_")
        o = _raw(other)
        return self._inplace("mul_", lambda a: self.xp.multiply(a, o, out=a, casting="unsafe"),
                             other, lambda s: s.mul(other))

    def div_(self, other) -> Tensor:
        _check_inplace_cast(self, other, "div_", true_div=True)
        o = _raw(other)
        return self._inplace("div_", lambda a: self.xp.true_divide(a, o, out=a, casting="unsafe"),
                             other, lambda s: s.div(other))

    def __iadd__(self, other) -> Tensor:
        return self.add_(other)

    def __isub__(self, other) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other) -> Tensor:
        return self.div_(other)

    def masked_fill_(self, mask, value) -> Tensor:
        m = _raw(mask)
        return self._inplace("masked_fill_", lambda a: self.xp.putmask(a, m, _raw(value))
                             if self.xp is np else a.__setitem__(m, _raw(value)), value,
                             lambda s: s.masked_fill(mask, value))

    def zero_(self) -> Tensor:
        return self._inplace("zero_", lambda a: a.fill(0), None,
                             lambda s: _SetItem.apply(s, 0, Ellipsis))

    def fill_(self, value) -> Tensor:
        return self._inplace("fill_", lambda a: a.fill(_raw(value)), value,
                             lambda s: _SetItem.apply(s, value, Ellipsis))

    def copy_(self, src) -> Tensor:
        s = _raw(src)
        if backend.get_array_module(s) is not self.xp:
            s = backend.to_device(s, self.device)
        src_t = src if not isinstance(src, Tensor) or src._data is s else \
            src.to(self.device)
        return self._inplace("copy_", lambda a: self.xp.copyto(a, s, casting="unsafe"), src,
                             lambda t: _SetItem.apply(t, src_t, Ellipsis))

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda a: self.xp.clip(a, _raw(min), _raw(max), out=a),
                             None, lambda s: s.clamp(min, max))

    clip_ = clamp_

    def relu_(self) -> Tensor:
        return self._inplace("relu_", lambda a: self.xp.maximum(a, 0, out=a), None,
                             lambda s: s.relu(),
                             saves_result=True)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", lambda a: self.xp.exp(a, out=a), None, lambda s: s.exp(),
                             saves_result=True)

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", lambda a: self.xp.tanh(a, out=a), None, lambda s: s.tanh(),
                             saves_result=True)

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", lambda a: self.xp.copyto(a, self.sigmoid()._data),
                             None, lambda s: s.sigmoid(),
                             saves_result=True)

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        r = backend.rng(self.xp).standard_normal(self.shape)
        return self._inplace("normal_", lambda a: self.xp.copyto(a, r * std + mean,
                                                                  casting="unsafe"))

    def multinomial(self, num_samples: int, replacement: bool = False, *,
                    generator=None) -> Tensor:
        """Indices drawn with probabilities proportional to this tensor's weights (see
        ``fg.multinomial``)."""
        from .creation import multinomial
        return multinomial(self, num_samples, replacement, generator=generator)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        r = backend.rng(self.xp).random(self.shape)
        return self._inplace("uniform_", lambda x: self.xp.copyto(x, r * (b - a) + a,
                                                                   casting="unsafe"))


_op_module.Tensor = Tensor


class _HookHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook. Ids come from one
    process-wide counter (as PyTorch's RemovableHandle), never reused, so removing a stale
    handle twice cannot remove a hook registered after it."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self.id = next(_HookHandle._next_id)

    @property
    def key(self) -> int:
        return self.id

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> _HookHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _check_inplace_cast(t: Tensor, other, name: str, true_div: bool = False) -> None:
    """PyTorch refuses an in-place op whose result type cannot be cast back to the tensor's
    dtype (int += float, int /= anything, bool += int)."""
    kind = t._data.dtype.kind
    if kind in "fc":
        return
    if isinstance(other, Tensor):
        ok = other._data.dtype.kind
    elif isinstance(other, (bool, np.bool_)):
        ok = "b"
    elif isinstance(other, (int, np.integer)):
        ok = "i"
    elif isinstance(other, (float, np.floating)):
        ok = "f"
    elif isinstance(other, complex):
        ok = "c"
    else:
        return
    result = "f" if true_div else ok
    if result in "fc" or (kind == "b" and result in "iu"):
        res = "Float" if result == "f" else "ComplexFloat" if result == "c" else "Long"
        raise DTypeError(f"{name}: result type {res} can't be cast to the desired output type "
                         f"{t.dtype} (as in PyTorch)")


class _Overwritten:
    """Stands in for a saved output that an in-place op recorded in the graph overwrote: called
    like the weak reference it replaces, it reports the version and shape the check prints."""

    __slots__ = ("_version", "shape")

    def __init__(self, t: Tensor) -> None:
        self._version = t._version
        self.shape = tuple(t.shape)

    def __call__(self) -> _Overwritten:
        return self


class _SetItem(_op_module.Op):
    """out = x with ``out[index] = v`` (the recorded form of ``x[index] = v``, ``copy_``,
    ``fill_``): the gradient wrt x is zero where it was overwritten, v's is the gradient read
    there."""

    @staticmethod
    def forward(ctx, x, v, index):
        out = x.copy()
        out[index] = v
        ctx.index = index
        ctx.vshape = getattr(v, "shape", None)
        return out

    @staticmethod
    def backward(ctx, grad):
        gx = grad.copy()
        gx[ctx.index] = 0
        if ctx.vshape is None:
            return gx, None
        gv = grad[ctx.index]
        if gv.shape != ctx.vshape and gv.size == int(np.prod(ctx.vshape)):
            gv = gv.reshape(ctx.vshape)
        return gx, gv


def _sort_indices(xp, data, d: int, descending: bool):
    """Stable argsort along ``d``; descending keeps equal entries in their original order and
    puts NaN first, as PyTorch does. (Sorting ``-data`` would break on unsigned and bool
    dtypes and put NaN last.)"""
    if not descending:
        return xp.argsort(data, axis=d, kind="stable")
    flipped = xp.argsort(xp.flip(data, axis=d), axis=d, kind="stable")
    return (data.shape[d] - 1) - xp.flip(flipped, axis=d)


def _check_index_range(op: str, idx, n: int) -> None:
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: index must be an integer tensor, got {idx.dtype}")
    if idx.size and (int(idx.max()) >= n or int(idx.min()) < -n):
        bad = int(idx.max()) if int(idx.max()) >= n else int(idx.min())
        raise IndexOutOfRangeError(f"{op}: index {bad} is out of bounds for dimension of size "
                                   f"{n}")


def _no_bool_sub(t: Tensor, other) -> None:
    if t._data.dtype.kind == "b" or (isinstance(other, Tensor) and other._data.dtype.kind == "b"):
        raise DTypeError("sub: subtraction with a bool tensor is not supported (as in PyTorch); "
                         "to invert a mask use ~ or .logical_not(), else convert with .float()")


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _raw_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _nonempty(t: Tensor, dims, op: str) -> None:
    """PyTorch's check before a reduction with no identity (max, min, argmax): IndexError for an
    empty reduced dim, RuntimeError (ShapeError) for an empty tensor reduced whole."""
    if t._data.size:
        return
    if dims is None:
        raise ShapeError(f"{op}: expected a reduction dim to be given for an empty tensor (shape "
                         f"{tuple(t.shape)}): a max/min over no elements is undefined; pass dim=")
    for d in dims:
        if t.shape[d] == 0:
            raise IndexError(f"{op}: expected reduction dim {d} to have non-zero size (the input "
                             f"has shape {tuple(t.shape)}): a max/min over no elements is "
                             "undefined")


def _argext(t: Tensor, dim, keepdim, fn, op: str) -> Tensor:
    if dim is None:
        _nonempty(t, None, op)
        out = fn(t._data.reshape(-1))
        if keepdim:
            out = t.xp.asarray(out).reshape((1,) * t.ndim)
        return Tensor._wrap(t.xp.asarray(out), None, False)
    d = _dim(dim, t.ndim, op)
    if t.ndim:
        _nonempty(t, (d,), op)
    return Tensor._wrap(t.xp.asarray(fn(t._data, axis=d, keepdims=keepdim)), None, False)


def _operands(t: Tensor, other, op: str, true_div: bool = False):
    """The two operands of a binary op on ``t``, promoted by PyTorch's dtype rules.

    A Python number stays a (weakly typed) scalar, so float32 * 2.0 stays float32.
    """
    kind = t._data.dtype.kind
    if isinstance(other, Tensor):
        odt = other._data.dtype
        if odt != t._data.dtype:
            target = dtypes.promote(t._data.dtype, odt, t._data.ndim, other._data.ndim)
            if true_div and target.kind != "f":
                target = dtypes.get_default_dtype()
            return t.type(target), other.type(target)
        if true_div and kind != "f":
            d = dtypes.get_default_dtype()
            return t.type(d), other.type(d)
        return t, other
    if type(other) in _Number or isinstance(other, (np.number, np.bool_)):
        if kind == "f":
            return t, (float(other) if isinstance(other, np.floating) else other)
        if isinstance(other, (float, np.floating)) or true_div:
            return t.type(dtypes.get_default_dtype()), float(other)
        if kind == "b" and not isinstance(other, (bool, np.bool_)):
            return t.long(), int(other)
        return t, other
    other = as_tensor(other, device=t.device)
    return _operands(t, other, op, true_div)


def _seed(root: Tensor, gradient, op: str):
    if gradient is None:
        if root._data.size != 1:
            raise GraphError(f"{op}: grad can be implicitly created only for scalar outputs; "
                             f"this output has shape {tuple(root.shape)}, so pass a gradient of "
                             f"that shape: {op}(gradient=fg.ones_like(out))")
        return root.xp.array(1, dtype=root._data.dtype).reshape(root._data.shape)
    g = _raw(gradient)
    g = root.xp.asarray(g, dtype=root._data.dtype)
    if g.shape != root._data.shape:
        raise ShapeError(f"{op}: gradient has shape {tuple(g.shape)} but the output has shape "
                         f"{tuple(root.shape)}")
    return g


_ToDevice = E.ToDevice


# Public functions that need Tensor ---------------------------------------------------------------

def as_tensor(data, dtype=None, device=None) -> Tensor:
    """A Tensor sharing ``data``'s memory when it is already an array of the right dtype."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None or device is not None:
            out = data.to(device=device, dtype=dtype)
        return out
    return tensor(data, dtype=dtype, device=device, _copy=False)


def tensor(data, dtype=None, device=None, requires_grad: bool = False,
           _copy: bool = True) -> Tensor:
    """A new leaf tensor from nested lists, numbers or arrays (PyTorch's ``torch.tensor``).

    Python floats become float32 (the default dtype), ints int64 and bools bool; arrays keep
    their dtype.
    """
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in _flat(data)):
        data = _nested_to_array(data)
    xp = backend.get_array_module(data) if device is None else backend.xp_for(
        backend.normalize_device(device))
    if dtype is not None:
        dt = dtypes.to_dtype(dtype)
    elif hasattr(data, "dtype"):
        dt = data.dtype
        if dt == np.float64 and not isinstance(data, np.ndarray) and np.ndim(data) == 0 \
                and isinstance(data, np.floating):
            dt = np.dtype(np.float64)
    else:
        probe = np.asarray(data)
        dt = probe.dtype
        if dt.kind == "f":
            dt = dtypes.get_default_dtype()
        elif dt.kind in "iu":
            dt = dtypes.int64
    if device is not None and backend.normalize_device(device) != "cpu":
        arr = backend.to_device(np.asarray(backend.to_numpy(data), dtype=dt),
                                backend.normalize_device(device))
    else:
        arr = xp.array(data, dtype=dt, copy=True) if _copy else xp.asarray(data, dtype=dt)
    t = Tensor._wrap(arr, None, False)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _flat(data):
    for v in data:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _nested_to_array(data):
    if isinstance(data, Tensor):
        return backend.to_numpy(data._data)
    if isinstance(data, (list, tuple)):
        return np.asarray([_nested_to_array(v) for v in data])
    return data


def where(condition, input=None, other=None):
    """Elementwise choice: ``input`` where ``condition`` holds, else ``other``."""
    cond = _raw_tensor(condition)
    if input is None and other is None:
        return cond.nonzero(as_tuple=True)
    if cond.dtype.kind != "b":
        raise DTypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    if isinstance(input, Tensor) and isinstance(other, Tensor) and input.dtype != other.dtype:
        input, other = _operands(input, other, "where")
    elif isinstance(input, Tensor) and not isinstance(other, Tensor):
        input, other = _operands(input, other, "where")
    elif isinstance(other, Tensor) and not isinstance(input, Tensor):
        other, input = _operands(other, input, "where")
    elif not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = as_tensor(input)
    return E.Where.apply(cond._data, input, other)

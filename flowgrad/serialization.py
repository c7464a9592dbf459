"""Safe ``save``/``load`` of nested dicts and lists of tensors, like torch.save/torch.load
(safetensors by default, ``.npz``, or PyTorch's own ``.pt``/``.pth`` zip format; see the section
"PyTorch's zip checkpoints" below).

Loading a file never runs code: tensors go into a ``.safetensors`` file (or an ``.npz`` read with
``allow_pickle=False``), and the nested structure with its non-tensor values (numbers, strings,
booleans, None) into JSON. Every write is atomic: a temporary file in the target's directory,
flushed and fsync'ed, then renamed over the target, so a crash mid-write leaves the previous file
intact. A SHA-256 digest of the tensor bytes is stored alongside, so a corrupt file is refused.

Example:
    >>> fg.save({"model": model.state_dict(), "epoch": 3}, "ckpt.safetensors")
    >>> fg.load("ckpt.safetensors")["epoch"]
    3
"""

from __future__ import annotations

import _compat_pickle
import collections
import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import struct
import uuid
import zipfile
from collections.abc import Callable, Mapping

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "SerializationError", "UnsafePickleError", "atomic_write"]

FORMAT = "flowgrad"
VERSION = "1"
_NPZ_STRUCTURE = "__flowgrad__"  # the npz member holding the JSON structure
_NPZ_MAGIC = b"PK\x03\x04"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


class SerializationError(ValueError):
    """A file that is not a readable flowgrad/safetensors/npz checkpoint, or an unsavable object."""


# --- atomic writes ------------------------------------------------------------------------------

def _fsync_dir(directory: str) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync it, then rename it over
    ``path``: readers see the old file or the new one, never a partial one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode honours the umask
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


# --- structure <-> JSON + flat arrays -----------------------------------------------------------

_ALLOWED = ("flowgrad Tensors, NumPy arrays and scalars, dict, list, tuple, str, int, float, "
            "bool and None")


def _where(path: tuple) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


def _unsavable(obj, path: tuple) -> SerializationError:
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if callable(getattr(obj, "state_dict", None)):  # a Module, an Optimizer, a scheduler
        return SerializationError(
            f"save: can't store the {kind} object at {_where(path)}: flowgrad files hold "
            f"tensors and plain data, never pickled objects or code. Save its state instead, "
            f"fg.save(obj.state_dict(), path), and restore it with "
            f"obj.load_state_dict(fg.load(path)) on a newly built {type(obj).__qualname__}")
    return SerializationError(
        f"save: can't store {kind} at {_where(path)}; a checkpoint holds only {_ALLOWED} "
        f"(convert it, e.g. to a dict of those, or to its state_dict())")


class _Encoder:
    """Walks the object once: returns the JSON node and collects the arrays by unique key."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.seen: dict[int, dict] = {}  # id(tensor) -> node: shared tensors are stored once
        self.keep: list = []  # keeps encoded objects alive so their ids stay unique
        self.active: set[int] = set()  # containers on the current path (cycle check)

    def _key(self, path: tuple) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        key, n = base, 1
        while key in self.arrays or key == _NPZ_STRUCTURE:
            n += 1
            key = f"{base}#{n}"
        return key

    def _array(self, obj, path: tuple, node: dict) -> dict:
        if id(obj) in self.seen:
            return self.seen[id(obj)]
        arr = obj._data if isinstance(obj, Tensor) else obj
        arr = backend.to_numpy(arr)
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            arr = arr.copy(order="C")
        if arr.dtype.hasobject or arr.dtype.kind not in "biufc":
            raise SerializationError(
                f"save: the array at {_where(path)} has dtype {arr.dtype}; only bool, integer, "
                f"floating and complex arrays can be stored (object arrays would need pickle)")
        key = self._key(path)
        self.arrays[key] = arr
        node[next(iter(node))] = key
        self.seen[id(obj)] = node
        self.keep.append(obj)
        return node

    def encode(self, obj, path: tuple = ()):
        if obj is None or isinstance(obj, (bool, str)):
            return str(obj) if isinstance(obj, str) else obj
        if isinstance(obj, np.generic):  # before int/float: np.float64 subclasses float
            return self._array(np.asarray(obj), path, {"$npscalar": None})
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"$float": repr(float(obj))}
        if isinstance(obj, Tensor):
            node = {"$tensor": None, "requires_grad": obj.requires_grad, "device": obj.device}
            return self._array(obj, path, node)
        if isinstance(obj, np.ndarray) or (backend.cupy is not None
                                           and isinstance(obj, backend.cupy.ndarray)):
            return self._array(obj, path, {"$ndarray": None})
        if isinstance(obj, (Mapping, list, tuple)):
            if id(obj) in self.active:
                raise SerializationError(f"save: {_where(path)} contains itself (a cycle)")
            self.active.add(id(obj))
            try:
                if isinstance(obj, Mapping):
                    return {"$dict": [[self._encode_key(k, path), self.encode(v, (*path, k))]
                                      for k, v in obj.items()]}
                items = [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
                return items if isinstance(obj, list) else {"$tuple": items}
            finally:
                self.active.discard(id(obj))
        raise _unsavable(obj, path)

    def _encode_key(self, key, path: tuple):
        if key is None or isinstance(key, (bool, int, float, str, tuple)):
            return self.encode(key, path)
        raise SerializationError(f"save: dict key {key!r} at {_where(path)} has type "
                                 f"{type(key).__name__}; keys must be str, int, float, bool, "
                                 f"None or tuples of those")


def _decode(node, arrays: Mapping[str, np.ndarray], place: Callable, cache: dict):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(n, arrays, place, cache) for n in node]
    if not isinstance(node, dict) or len(node) == 0:
        raise SerializationError(f"unexpected node {node!r} in the structure")
    tag = next(iter(node))
    if tag == "$dict":
        return {_freeze(_decode(k, arrays, place, cache)): _decode(v, arrays, place, cache)
                for k, v in node[tag]}
    if tag == "$tuple":
        return tuple(_decode(n, arrays, place, cache) for n in node[tag])
    if tag == "$float":
        return float(node[tag])
    if tag in ("$tensor", "$ndarray", "$npscalar"):
        key = node[tag]
        if key in cache:
            return cache[key]
        if key not in arrays:
            raise SerializationError(f"the structure names array {key!r}, which the file lacks")
        arr = arrays[key]
        if tag == "$ndarray":
            out = arr
        elif tag == "$npscalar":
            out = arr[()]
        else:
            out = place(arr, node.get("device", "cpu"))
            if node.get("requires_grad"):
                out.requires_grad_(True)
        cache[key] = out
        return out
    raise SerializationError(f"unknown tag {tag!r} in the structure")


def _freeze(key):
    return tuple(_freeze(k) for k in key) if isinstance(key, list) else key


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        arr = arrays[key]
        h.update(f"{key}|{arr.dtype.newbyteorder('<').str}|{arr.shape}|".encode())
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        h.update(memoryview(np.ascontiguousarray(arr).reshape(-1)).cast("B"))
    return h.hexdigest()


# --- PyTorch's zip checkpoints (.pt/.pth) -------------------------------------------------------
#
# torch.save (since 1.6) writes a zip: ``<prefix>/data.pkl`` (a protocol-2 pickle of the object,
# whose tensors name their storages by persistent id), ``<prefix>/data/<key>`` (the raw bytes of
# each storage), ``<prefix>/byteorder`` and ``<prefix>/version``. Reading: an Unpickler whose
# find_class admits only what torch.load(weights_only=True) admits, each mapped to a flowgrad-side
# stand-in that builds data and calls nothing else. Writing: the pickle is emitted opcode by opcode
# (pickle's own Pickler would import torch to check each global it names).

class UnsafePickleError(SerializationError, pickle.UnpicklingError):
    """A PyTorch file whose pickle names a global outside the allow-list, or uses it in a way the
    allow-list does not admit. Like torch.load(weights_only=True), a pickle.UnpicklingError;
    nothing the pickle names was run."""


# torch's storage classes and dtype names -> NumPy dtype names ("bfloat16" has no NumPy dtype:
# its 16 bits are widened to float32, which is exact)
_TORCH_STORAGES = {"FloatStorage": "float32", "DoubleStorage": "float64",
                   "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                   "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                   "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
                   "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_STORAGE_OF = {v: k for k, v in _TORCH_STORAGES.items()}
_TORCH_DTYPES = (*_TORCH_STORAGES.values(), "uint16", "uint32", "uint64")
_TORCH_VERSION = 3  # the archive's "version" record torch.save writes


class _TorchDType:
    """What ``torch.float32`` (a GLOBAL in the pickle) loads as, until the walk maps it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _StorageType:
    __slots__ = ("dtype",)

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


class _Storage:
    __slots__ = ("array", "dtype", "device")

    def __init__(self, array: np.ndarray, dtype: str, device: str) -> None:
        self.array, self.dtype, self.device = array, dtype, device


class _Rebuilt:
    """A tensor read from the file; the walk after unpickling turns it into a flowgrad Tensor."""

    __slots__ = ("array", "device", "requires_grad", "parameter")

    def __init__(self, array: np.ndarray, device: str, requires_grad: bool) -> None:
        self.array, self.device = array, device
        self.requires_grad, self.parameter = bool(requires_grad), False

    def __setstate__(self, state):  # BUILD on a tensor: PyTorch's tensor subclasses, refused
        raise UnsafePickleError("the pickle sets attributes on a tensor (a tensor subclass or "
                                "python attributes), which flowgrad does not load")


def _int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise SerializationError(f"{what} is {x!r}, not an integer")
    return x


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafePickleError(f"_rebuild_tensor_v2 got {type(storage).__name__}, not a "
                                f"storage")
    if backward_hooks or metadata:
        raise UnsafePickleError("a tensor with backward hooks or metadata, which flowgrad "
                                "does not load")
    offset = _int(storage_offset, "a tensor's storage offset")
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        raise SerializationError(f"a tensor's size {size!r} and stride {stride!r} do not match")
    size = tuple(_int(n, "a tensor size") for n in size)
    stride = tuple(_int(s, "a tensor stride") for s in stride)
    if offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0:
        raise SerializationError(f"a tensor has a negative offset, size or stride "
                                 f"({offset}, {size}, {stride})")
    data = storage.array
    if 0 in size:
        arr = np.empty(size, data.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= data.size:
            raise SerializationError(
                f"a tensor of size {list(size)} (offset {offset}, stride {list(stride)}) needs "
                f"{last + 1} elements, but its storage holds {data.size}: the file is corrupt")
        view = np.lib.stride_tricks.as_strided(
            data[offset:], size, tuple(s * data.itemsize for s in stride), writeable=False)
        arr = np.array(view, order="C")  # an owned, writable, contiguous copy
    if storage.dtype == "bfloat16":  # 16 bits of bfloat16 are the top half of a float32's
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return _Rebuilt(arr, storage.device, requires_grad)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, _Rebuilt) or backward_hooks or state:
        raise UnsafePickleError("a Parameter with hooks, python attributes or no tensor, which "
                                "flowgrad does not load")
    data.requires_grad, data.parameter = bool(requires_grad), True
    return data


def _torch_size(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (tuple, list))):
        raise UnsafePickleError(f"torch.Size{args!r}")
    return tuple(_int(n, "a torch.Size entry") for n in (args[0] if args else ()))


def _torch_device(kind, index=None):
    if not isinstance(kind, str) or not (index is None or isinstance(index, int)):
        raise UnsafePickleError(f"torch.device({kind!r}, {index!r})")
    return kind if index is None else f"{kind}:{index}"


def _codecs_encode(text, encoding="utf-8"):  # how a protocol-2 pickle stores bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


def _checked(kind):
    def make(*args):
        if not all(isinstance(a, (list, tuple, set, str, bytes, int, float)) for a in args):
            raise UnsafePickleError(f"builtins.{kind.__name__} of {args!r}")
        return kind(*args)
    return make


_SAFE_GLOBALS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): _checked(set),
    ("builtins", "bytearray"): _checked(bytearray),
    ("builtins", "complex"): _checked(complex),
    ("torch", "UntypedStorage"): _StorageType("uint8"),
    ("torch.storage", "UntypedStorage"): _StorageType("uint8"),
    **{("torch", name): _StorageType(dt) for name, dt in _TORCH_STORAGES.items()},
    **{("torch", name): _TorchDType(name) for name in _TORCH_DTYPES},
}


class _TorchUnpickler(pickle.Unpickler):
    """Admits only _SAFE_GLOBALS (never imports anything) and reads storages from the zip."""

    def __init__(self, file, zf: zipfile.ZipFile, prefix: str, byteorder: str) -> None:
        super().__init__(file, fix_imports=False, encoding="utf-8")
        self.zf, self.prefix, self.byteorder = zf, prefix, byteorder
        self.storages: dict[str, bytes] = {}

    def find_class(self, module, name):
        # protocol-2 pickles name Python 2's modules (__builtin__); map them as pickle does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _SAFE_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"the pickle names the global {module}.{name}, which is not on the allow-list "
                f"of torch.load(weights_only=True) (tensors, storages, dtypes, OrderedDict and "
                f"plain containers); it was not run. Only load files from sources you trust, "
                f"and re-save such a file as a state_dict")
        return found

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[3], str)):
            raise UnsafePickleError(f"unsupported persistent id {pid!r}")
        _, stype, key, location, numel = pid
        numel = _int(numel, "a storage's size")
        if key not in self.storages:
            name = f"{self.prefix}data/{key}"
            try:
                self.storages[key] = self.zf.read(name)
            except KeyError:
                raise SerializationError(f"the pickle names storage {key!r}, but the archive "
                                         f"has no {name!r}") from None
        raw = self.storages[key]
        dtype = np.dtype(np.uint16 if stype.dtype == "bfloat16" else stype.dtype)
        if len(raw) < numel * dtype.itemsize:
            raise SerializationError(
                f"storage {key!r} holds {len(raw)} bytes, fewer than its {numel} elements of "
                f"{stype.dtype} need ({numel * dtype.itemsize}): the file is corrupt")
        order = ">" if self.byteorder == "big" else "<"
        arr = np.frombuffer(raw, dtype.newbyteorder(order), count=numel)
        if arr.dtype.byteorder not in ("=", "|") and arr.dtype != arr.dtype.newbyteorder("="):
            arr = arr.astype(dtype.newbyteorder("="))
        return _Storage(arr, stype.dtype, location)


def _torch_prefix(names: list[str]) -> str | None:
    """The record prefix ('archive/') when the zip is a torch.save archive, else None."""
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return pkls[0][: -len("data.pkl")] if len(pkls) == 1 else None


def _read_torch(zf: zipfile.ZipFile, prefix: str, place: Callable):
    names = set(zf.namelist())
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise SerializationError(f"unknown byteorder {byteorder!r}")
    if prefix + "version" in names:
        version = zf.read(prefix + "version").decode("ascii", "replace").strip()
        if not version.isdigit() or int(version) > _TORCH_VERSION:
            raise SerializationError(f"archive version {version!r}; flowgrad reads torch.save "
                                     f"archives up to version {_TORCH_VERSION}")
    pkl = zf.read(prefix + "data.pkl")
    if not pkl.startswith(b"\x80") or not pkl.rstrip().endswith(b"."):
        raise SerializationError(f"{prefix}data.pkl is not a pickle")
    unpickler = _TorchUnpickler(io.BytesIO(pkl), zf, prefix, byteorder)
    try:
        obj = unpickler.load()
    except SerializationError:
        raise
    except (pickle.UnpicklingError, EOFError) as e:
        raise SerializationError(f"{prefix}data.pkl is not a readable pickle: {e}") from e
    except (AttributeError, TypeError, ValueError, IndexError, KeyError, RecursionError,
            MemoryError, OverflowError) as e:
        raise UnsafePickleError(f"{prefix}data.pkl does not build plain data "
                                f"({type(e).__name__}: {e})") from e
    return _from_torch(obj, place, {})


def _from_torch(obj, place: Callable, memo: dict):
    """Map what the unpickler built to flowgrad objects; refuse anything else."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray)):
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _Rebuilt):
        t = place(obj.array, backend.normalize_device(obj.device))
        if obj.parameter:
            from .nn.parameter import Parameter

            t = Parameter(t, requires_grad=obj.requires_grad)
        elif obj.requires_grad:
            t.requires_grad_(True)
        out = t
    elif isinstance(obj, _TorchDType):
        from . import dtypes

        out = getattr(dtypes, obj.name, None)
        if out is None or obj.name == "bfloat16":
            out = dtypes.float32 if obj.name == "bfloat16" else np.dtype(obj.name)
    elif isinstance(obj, dict):
        kind = type(obj) if type(obj) in (dict, collections.OrderedDict,
                                          collections.Counter) else dict
        out = kind()
        memo[id(obj)] = out
        for k, v in obj.items():
            out[_from_torch(k, place, memo)] = _from_torch(v, place, memo)
        meta = getattr(obj, "__dict__", {}).get("_metadata")
        if isinstance(meta, dict) and kind is collections.OrderedDict:
            out._metadata = _from_torch(meta, place, memo)
    elif isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(_from_torch(v, place, memo) for v in obj)
    elif isinstance(obj, (tuple, set, frozenset)):
        out = type(obj)(_from_torch(v, place, memo) for v in obj)
    else:
        what = {_Storage: "a bare storage", _StorageType: "a bare storage type"}.get(
            type(obj), f"a bare {type(obj).__name__} global")
        raise UnsafePickleError(f"the pickle holds {what}, which flowgrad does not load")
    memo[id(obj)] = out
    return out


class _TorchPickle:
    """Emits a protocol-2 pickle of plain data whose tensors use only the globals that
    torch.load(weights_only=True) admits; collects the storages."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}
        self.keep: list = []
        self.active: set[int] = set()

    def w(self, b: bytes) -> None:
        self.out.write(b)

    def str_(self, s: str) -> None:
        data = s.encode("utf-8", "surrogatepass")
        self.w(b"X" + struct.pack("<I", len(data)) + data)

    def global_(self, module: str, name: str) -> None:
        self.w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def put(self, obj) -> None:
        n = len(self.memo)
        self.memo[id(obj)] = n
        self.keep.append(obj)
        self.w(b"q" + bytes([n]) if n < 256 else b"r" + struct.pack("<I", n))

    def get(self, obj) -> bool:
        n = self.memo.get(id(obj))
        if n is None:
            return False
        self.w(b"h" + bytes([n]) if n < 256 else b"j" + struct.pack("<I", n))
        return True

    def empty_ordered_dict(self) -> None:
        self.global_("collections", "OrderedDict")
        self.w(b")R")

    def tensor(self, obj, path: tuple) -> None:
        if self.get(obj):
            return
        arr = backend.to_numpy(obj._data if isinstance(obj, Tensor) else obj)
        name = arr.dtype.name
        if name not in _STORAGE_OF:
            raise SerializationError(f"save: the tensor at {_where(path)} has dtype {arr.dtype}, "
                                     f"which PyTorch's format has no storage type for")
        device = obj.device if isinstance(obj, Tensor) else (
            "cpu" if isinstance(obj, np.ndarray) else "cuda")
        is_param = type(obj).__name__ == "Parameter" and isinstance(obj, Tensor)
        if is_param:
            self.global_("torch._utils", "_rebuild_parameter")
            self.w(b"(")
        key = str(len(self.storages))
        self.storages[key] = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"),
                                                              copy=False)
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.w(b"((")  # the args tuple, then the persistent id tuple
        self.str_("storage")
        self.global_("torch", _STORAGE_OF[name])
        self.str_(key)
        self.str_(device)
        self.obj(int(arr.size), path)
        self.w(b"tQ")
        self.obj(0, path)
        self.obj(tuple(int(n) for n in arr.shape), path)
        strides, acc = [], 1
        for n in reversed(arr.shape):
            strides.append(acc)
            acc *= int(n)
        self.obj(tuple(reversed(strides)), path)
        self.obj(bool(not is_param and isinstance(obj, Tensor) and obj.requires_grad), path)
        self.empty_ordered_dict()
        self.w(b"tR")
        if is_param:
            self.obj(bool(obj.requires_grad), path)
            self.empty_ordered_dict()
            self.w(b"tR")
        self.put(obj)

    def obj(self, obj, path: tuple = ()) -> None:
        if obj is None:
            self.w(b"N")
        elif obj is True or obj is False:
            self.w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, np.generic) and obj.dtype.kind in "biufc":
            self.obj(obj.item(), path)
        elif isinstance(obj, int):
            obj = int(obj)
            if 0 <= obj < 256:
                self.w(b"K" + bytes([obj]))
            elif -2 ** 31 <= obj < 2 ** 31:
                self.w(b"J" + struct.pack("<i", obj))
            else:
                data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
                self.w((b"\x8a" + bytes([len(data)]) if len(data) < 256
                        else b"\x8b" + struct.pack("<i", len(data))) + data)
        elif isinstance(obj, float):
            self.w(b"G" + struct.pack(">d", obj))
        elif isinstance(obj, complex):
            self.global_("builtins", "complex")
            self.obj((obj.real, obj.imag), path)
            self.w(b"R")
        elif isinstance(obj, str):
            self.str_(str(obj))
        elif isinstance(obj, bytes):
            self.global_("_codecs", "encode")
            self.obj((obj.decode("latin1"), "latin1"), path)
            self.w(b"R")
        elif isinstance(obj, Tensor) or isinstance(obj, np.ndarray) or (
                backend.cupy is not None and isinstance(obj, backend.cupy.ndarray)):
            self.tensor(obj, path)
        elif isinstance(obj, (Mapping, list, tuple, set)):
            if id(obj) in self.active:
                raise SerializationError(f"save: {_where(path)} contains itself (a cycle)")
            self.active.add(id(obj))
            try:
                self.container(obj, path)
            finally:
                self.active.discard(id(obj))
        else:
            raise _unsavable(obj, path)

    def container(self, obj, path: tuple) -> None:
        if isinstance(obj, tuple):
            self.w(b"(")
            for i, v in enumerate(obj):
                self.obj(v, (*path, i))
            self.w(b"t")
        elif isinstance(obj, set):
            self.global_("builtins", "set")
            self.w(b"(")
            self.obj(list(obj), path)
            self.w(b"tR")
        elif isinstance(obj, list):
            self.w(b"](")
            for i, v in enumerate(obj):
                self.obj(v, (*path, i))
            self.w(b"e")
        else:
            if isinstance(obj, collections.OrderedDict):
                self.empty_ordered_dict()
            else:
                self.w(b"}")
            self.w(b"(")
            for k, v in obj.items():
                if not (k is None or isinstance(k, (bool, int, float, str, tuple))):
                    raise SerializationError(f"save: dict key {k!r} at {_where(path)} has "
                                             f"type {type(k).__name__}")
                self.obj(k, path)
                self.obj(v, (*path, k))
            self.w(b"u")


def _write_torch(fh, obj) -> None:
    p = _TorchPickle()
    p.w(b"\x80\x02")
    p.obj(obj)
    p.w(b".")
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr("archive/data.pkl", p.out.getvalue())
        zf.writestr("archive/.format_version", b"1")
        zf.writestr("archive/byteorder", b"little")
        for key, arr in p.storages.items():
            with zf.open(f"archive/data/{key}", "w", force_zip64=True) as member:
                member.write(arr.reshape(-1).view(np.uint8).data)
        zf.writestr("archive/version", f"{_TORCH_VERSION}\n".encode())


# --- save ---------------------------------------------------------------------------------------

def _is_npz(path: str) -> bool:
    return path.lower().endswith(".npz")


def _write_npz(fh, members: Mapping[str, np.ndarray]) -> None:
    """np.savez's layout (one .npy per member in an uncompressed zip), whatever the names."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in members.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


_FORMATS = ("safetensors", "npz", "torch")
_TORCH_SUFFIXES = (".pt", ".pth")


def _is_file(f) -> bool:
    return hasattr(f, "write") or hasattr(f, "read")


def _name(f) -> str:
    return os.fspath(f) if not _is_file(f) else str(getattr(f, "name", "<file object>"))


def _format_of(f, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"save: format={format!r}; expected one of {_FORMATS}")
        return format
    name = _name(f).lower()
    if name.endswith(".npz"):
        return "npz"
    return "torch" if name.endswith(_TORCH_SUFFIXES) else "safetensors"


def save(obj, f, *, format: str | None = None) -> None:
    """Save a nested dict/list of Tensors, arrays and plain values to ``f``: a path (written
    atomically) or a binary file object, like torch.save.

    ``format``: ``"safetensors"`` (the default), ``"npz"`` (NumPy's format) or ``"torch"``
    (PyTorch's zip format, which ``torch.load(f, weights_only=True)`` reads). Without it, a path
    ending in ``.npz`` gives npz and one ending in ``.pt``/``.pth`` gives torch. A whole model or
    optimizer is refused: save its ``state_dict()``.
    """
    fmt = _format_of(f, format)
    if fmt == "torch":
        buf = io.BytesIO()
        _write_torch(buf, obj)  # build it all first: a refused object writes nothing
        return _write_out(f, buf.getvalue())
    enc = _Encoder()
    structure = json.dumps(enc.encode(obj), allow_nan=False, separators=(",", ":"))
    arrays = enc.arrays
    meta = {"format": FORMAT, "version": VERSION, "structure": structure,
            "sha256": _digest(arrays)}
    if fmt == "npz":
        members = dict(arrays)
        members[_NPZ_STRUCTURE] = np.array(json.dumps(meta))
        if _is_file(f):
            return _write_npz(f, members)
        return atomic_write(f, lambda fh: _write_npz(fh, members))
    from safetensors.numpy import save as st_save

    bad = sorted({str(a.dtype) for a in arrays.values() if a.dtype.kind == "c"
                  and a.dtype != np.complex64})
    if bad:
        raise SerializationError(f"save: safetensors can't store dtype {bad[0]}; save to a "
                                 f"'.npz' path instead")
    try:
        payload = st_save(arrays, metadata=meta)
    except Exception as e:
        raise SerializationError(f"save {_name(f)!r}: safetensors refused the arrays: "
                                 f"{e}") from e
    return _write_out(f, payload)


def _write_out(f, payload: bytes) -> None:
    if _is_file(f):
        f.write(payload)
    else:
        atomic_write(f, lambda fh: fh.write(payload))


# --- load ---------------------------------------------------------------------------------------

def _placer(map_location):
    def to(arr, device):
        if device != "cpu":
            if not backend.cuda_available():
                raise SerializationError(
                    f"a tensor was saved on {device!r}, but CUDA is not available here; "
                    f"pass map_location='cpu'")
            arr = backend.to_device(arr, device)
        return Tensor._wrap(arr, None, False)

    if map_location is None:
        return to
    if callable(map_location):
        def call(arr, device):
            out = map_location(Tensor._wrap(arr, None, False), device)
            return to(arr, device) if out is None else out
        return call
    if isinstance(map_location, Mapping):
        table = {backend.normalize_device(k): backend.normalize_device(v)
                 for k, v in map_location.items()}
        return lambda arr, device: to(arr, table.get(backend.normalize_device(device), device))
    target = backend.normalize_device(getattr(map_location, "type", map_location))
    return lambda arr, _device: to(arr, target)


def _read_safetensors(src, name: str) -> tuple[dict, dict | None]:
    """``src``: a path, or the file's bytes (a file object's content)."""
    if isinstance(src, bytes):
        size, head = len(src), src[:8]
    else:
        size = os.path.getsize(src)
        with open(src, "rb") as fh:
            head = fh.read(8)
    if len(head) < 8:
        raise SerializationError(f"load {name!r}: the file is {size} bytes long, too short "
                                 f"for a safetensors header (truncated?)")
    n = int.from_bytes(head, "little")
    if n > _MAX_HEADER or 8 + n > size:
        raise SerializationError(f"load {name!r}: the header claims {n} bytes but the file "
                                 f"has {size}: the file is truncated or not a safetensors, npz "
                                 f"or PyTorch file")
    if isinstance(src, bytes):
        raw = src[8:8 + n]
    else:
        with open(src, "rb") as fh:
            fh.seek(8)
            raw = fh.read(n)
    try:
        header = json.loads(raw)
    except ValueError as e:
        raise SerializationError(f"load {name!r}: the safetensors header is not valid JSON "
                                 f"(corrupt file): {e}") from e
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    try:
        if isinstance(src, bytes):
            from safetensors.numpy import load as st_load

            arrays = {k: np.array(a) for k, a in st_load(src).items()}  # writable copies
        else:
            from safetensors import safe_open

            with safe_open(src, framework="np") as st:
                arrays = {k: st.get_tensor(k) for k in st.keys()}
    except Exception as e:
        raise SerializationError(f"load {name!r}: corrupt or truncated safetensors file: "
                                 f"{e}") from e
    return arrays, meta


def _read_npz(src, name: str) -> tuple[dict, dict | None]:
    try:
        with np.load(io.BytesIO(src) if isinstance(src, bytes) else src,
                     allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise SerializationError(f"load {name!r}: corrupt or truncated npz file (or one that "
                                 f"holds pickled objects, which flowgrad never loads): "
                                 f"{e}") from e
    bad = [k for k, a in arrays.items() if not isinstance(a, np.ndarray)]
    if bad:
        raise SerializationError(f"load {name!r}: the zip member {bad[0]!r} is not a .npy "
                                 f"array: not an npz or PyTorch file")
    meta = None
    if _NPZ_STRUCTURE in arrays:
        raw = arrays.pop(_NPZ_STRUCTURE)
        try:
            meta = json.loads(str(raw[()]))
        except ValueError as e:
            raise SerializationError(f"load {name!r}: the structure record is not valid JSON "
                                     f"(corrupt file): {e}") from e
    return arrays, meta


def _torch_zip(src):
    """(ZipFile, prefix) when the file is a zip holding a torch.save archive, else None. A zip is
    recognised by its content (a ``<prefix>/data.pkl`` record), whatever the file's name."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(src) if isinstance(src, bytes) else src)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # a truncated zip: the npz reader reports it
    prefix = _torch_prefix(zf.namelist())
    if prefix is None:
        zf.close()
        return None
    return zf, prefix


def load(f, map_location=None, *, weights_only: bool | None = None):
    """Load what ``save`` wrote, a PyTorch ``.pt``/``.pth`` file (torch.save's zip format), or
    any safetensors/npz file (as a flat dict of Tensors). ``f``: a path or a binary file object.
    The format is found from the content, not the name. Never runs code: PyTorch's pickle goes
    through an allow-list unpickler (what ``torch.load(weights_only=True)`` admits), and any
    other global is refused with UnsafePickleError; ``weights_only`` is accepted for PyTorch's
    signature, and every load is weights-only whatever its value.
    ``map_location``: a device, a {saved: target} dict, or fn(tensor, saved_device)."""
    del weights_only  # every load is weights-only
    if _is_file(f):
        src, name = f.read(), _name(f)
        if not isinstance(src, bytes):
            raise TypeError(f"load: {name!r} is a text file object; open it in binary mode "
                            f"('rb')")
        magic = src[:9]
    else:
        src = name = os.fspath(f)
        if not os.path.exists(src):
            raise FileNotFoundError(f"load: no such file {name!r}")
        with open(src, "rb") as fh:
            magic = fh.read(9)
    place = _placer(map_location)
    if magic[:4] == _NPZ_MAGIC:
        found = _torch_zip(src)
        if found is not None:
            zf, prefix = found
            try:
                with zf:
                    return _read_torch(zf, prefix, place)
            except SerializationError as e:
                raise type(e)(f"load {name!r}: {e}") from e
            except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as e:
                raise SerializationError(f"load {name!r}: corrupt or truncated PyTorch zip "
                                         f"file: {e}") from e
    elif magic[:1] == b"\x80" and magic[1:2] < b"\x06" and magic[8:9] != b"{":
        raise SerializationError(
            f"load {name!r}: the file is a bare pickle (PyTorch's legacy format from before "
            f"1.6, or pickle.dump); flowgrad never unpickles those. Re-save it with a recent "
            f"torch.save (a zip) or as safetensors")
    arrays, meta = (_read_npz if magic[:4] == _NPZ_MAGIC else _read_safetensors)(src, name)
    if not meta or meta.get("format") != FORMAT:  # a plain file: a flat dict of its arrays
        return {k: place(a, "cpu") for k, a in arrays.items()}
    if meta.get("version") != VERSION:
        raise SerializationError(f"load {name!r}: written by flowgrad serialization version "
                                 f"{meta.get('version')!r}; this flowgrad reads version {VERSION}")
    digest = _digest(arrays)
    if digest != meta.get("sha256"):
        raise SerializationError(f"load {name!r}: the tensor data does not match its SHA-256 "
                                 f"digest: the file is corrupt; use an earlier checkpoint")
    try:
        structure = json.loads(meta["structure"])
        return _decode(structure, arrays, place, {})
    except SerializationError as e:
        raise SerializationError(f"load {name!r}: {e}") from e
    except (KeyError, ValueError, TypeError) as e:
        raise SerializationError(f"load {name!r}: corrupt structure record: {e}") from e

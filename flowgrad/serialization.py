"""Safe ``save``/``load`` of nested dicts and lists of tensors, like torch.save/torch.load.

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

import contextlib
import hashlib
import io
import json
import math
import os
import uuid
import zipfile
from collections.abc import Callable, Mapping

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "SerializationError", "atomic_write"]

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
        arr = obj.data if isinstance(obj, Tensor) else obj
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
        raise SerializationError(
            f"save: can't store {type(obj).__module__}.{type(obj).__qualname__} at "
            f"{_where(path)}; a checkpoint holds only {_ALLOWED} (convert it, e.g. to a dict of "
            f"those, or to its state_dict())")

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


# --- save ---------------------------------------------------------------------------------------

def _is_npz(path: str) -> bool:
    return path.lower().endswith(".npz")


def _write_npz(fh, members: Mapping[str, np.ndarray]) -> None:
    """np.savez's layout (one .npy per member in an uncompressed zip), whatever the names."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in members.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def save(obj, f) -> None:
    """Save a nested dict/list of Tensors, arrays and JSON-able values to ``f`` (a path ending in
    ``.safetensors``, or ``.npz`` for NumPy's format), atomically."""
    path = os.fspath(f)
    enc = _Encoder()
    structure = json.dumps(enc.encode(obj), allow_nan=False, separators=(",", ":"))
    arrays = enc.arrays
    meta = {"format": FORMAT, "version": VERSION, "structure": structure,
            "sha256": _digest(arrays)}
    if _is_npz(path):
        members = dict(arrays)
        members[_NPZ_STRUCTURE] = np.array(json.dumps(meta))
        atomic_write(path, lambda fh: _write_npz(fh, members))
        return
    from safetensors.numpy import save as st_save

    bad = sorted({str(a.dtype) for a in arrays.values() if a.dtype.kind == "c"
                  and a.dtype != np.complex64})
    if bad:
        raise SerializationError(f"save: safetensors can't store dtype {bad[0]}; save to a "
                                 f"'.npz' path instead")
    try:
        payload = st_save(arrays, metadata=meta)
    except Exception as e:
        raise SerializationError(f"save {path!r}: safetensors refused the arrays: {e}") from e
    atomic_write(path, lambda fh: fh.write(payload))


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


def _read_safetensors(path: str) -> tuple[dict, dict | None]:
    from safetensors import safe_open

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise SerializationError(f"load {path!r}: the file is {size} bytes long, too short "
                                     f"for a safetensors header (truncated?)")
        n = int.from_bytes(head, "little")
        if n > _MAX_HEADER or 8 + n > size:
            raise SerializationError(f"load {path!r}: the header claims {n} bytes but the file "
                                     f"has {size}: the file is truncated or not a safetensors or "
                                     f"npz file")
        try:
            header = json.loads(fh.read(n))
        except ValueError as e:
            raise SerializationError(f"load {path!r}: the safetensors header is not valid JSON "
                                     f"(corrupt file): {e}") from e
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    try:
        with safe_open(path, framework="np") as st:
            arrays = {k: st.get_tensor(k) for k in st.keys()}
    except Exception as e:
        raise SerializationError(f"load {path!r}: corrupt or truncated safetensors file: "
                                 f"{e}") from e
    return arrays, meta


def _read_npz(path: str) -> tuple[dict, dict | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise SerializationError(f"load {path!r}: corrupt or truncated npz file (or one that "
                                 f"holds pickled objects, which flowgrad never loads): "
                                 f"{e}") from e
    meta = None
    if _NPZ_STRUCTURE in arrays:
        raw = arrays.pop(_NPZ_STRUCTURE)
        try:
            meta = json.loads(str(raw[()]))
        except ValueError as e:
            raise SerializationError(f"load {path!r}: the structure record is not valid JSON "
                                     f"(corrupt file): {e}") from e
    return arrays, meta


def load(f, map_location=None):
    """Load what ``save`` wrote (or any safetensors/npz file, as a flat dict of Tensors); never
    unpickles. ``map_location``: a device, a {saved: target} dict, or fn(tensor, saved_device)."""
    path = os.fspath(f)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    arrays, meta = (_read_npz if magic == _NPZ_MAGIC else _read_safetensors)(path)
    place = _placer(map_location)
    if not meta or meta.get("format") != FORMAT:  # a plain file: a flat dict of its arrays
        return {k: place(a, "cpu") for k, a in arrays.items()}
    if meta.get("version") != VERSION:
        raise SerializationError(f"load {path!r}: written by flowgrad serialization version "
                                 f"{meta.get('version')!r}; this flowgrad reads version {VERSION}")
    digest = _digest(arrays)
    if digest != meta.get("sha256"):
        raise SerializationError(f"load {path!r}: the tensor data does not match its SHA-256 "
                                 f"digest: the file is corrupt; use an earlier checkpoint")
    try:
        structure = json.loads(meta["structure"])
        return _decode(structure, arrays, place, {})
    except SerializationError as e:
        raise SerializationError(f"load {path!r}: {e}") from e
    except (KeyError, ValueError, TypeError) as e:
        raise SerializationError(f"load {path!r}: corrupt structure record: {e}") from e

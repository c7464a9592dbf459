"""Reading IDX files (optionally gzipped), the format of MNIST (LeCun et al. 1998) and
Fashion-MNIST (Xiao et al. 2017): big-endian magic, dimensions, then the raw array."""

from __future__ import annotations

import gzip
import math
import struct
import zlib

import numpy as np

# IDX type codes (third magic byte) -> big-endian dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class CorruptFileError(ValueError):
    """A dataset file that cannot be parsed: truncated, corrupt or not the expected format."""


def read_idx(path, magic: int | None = None) -> np.ndarray:
    """The array stored in IDX file ``path`` (.gz is decompressed), native-endian and writable;
    ``magic`` checks the 4-byte magic number (0x00000803 images, 0x00000801 labels)."""
    path = str(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise CorruptFileError(f"{path}: truncated or corrupt gzip data ({e}); delete the "
                                   f"file and fetch it again") from None
    if len(raw) < 4:
        raise CorruptFileError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    found = struct.unpack(">I", raw[:4])[0]
    if magic is not None and found != magic:
        raise CorruptFileError(f"{path}: IDX magic number is 0x{found:08x}, expected "
                               f"0x{magic:08x}; wrong or corrupt file")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in IDX_DTYPES or ndim == 0:
        raise CorruptFileError(f"{path}: not an IDX file (magic number 0x{found:08x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptFileError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    count = math.prod(dims)
    need = count * dtype.itemsize
    if len(raw) - header != need:
        raise CorruptFileError(f"{path}: IDX data for shape {dims} needs {need} bytes after the "
                               f"header but the file has {len(raw) - header}; it is truncated "
                               f"or corrupt")
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a native, writable copy


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in .gz); for tests and tools."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    dt = array.dtype.newbyteorder("=")
    if dt not in codes:
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype}")
    data = (struct.pack(">BBBB", 0, 0, codes[dt], array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(IDX_DTYPES[codes[dt]]).tobytes())
    compress = str(path).endswith(".gz") if compress is None else compress
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if compress else data)

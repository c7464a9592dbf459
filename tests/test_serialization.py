"""flowgrad.serialization: safe, atomic save/load of nested structures of tensors."""

import json
import math
import os
import pickle
import zipfile

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import backend
from flowgrad import serialization as S
from flowgrad.serialization import SerializationError

FORMATS = ["safetensors", "npz"]


def _nested():
    w = fg.randn(3, 4, requires_grad=True)
    return {
        "model": {"fc.weight": w, "fc.bias": fg.zeros(4), "steps": fg.tensor([1, 2, 3])},
        "optimizer": {"state": {0: {"momentum_buffer": np.ones((3, 4), np.float32), "step": 7}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False,
                                        "foreach": None, "params": [0, 1]}]},
        "dtypes": {str(d): (np.arange(6) % 3).astype(d).reshape(2, 3) for d in
                   (np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16, np.int32,
                    np.int64, np.bool_)},
        "scalars": [np.float32(0.25), np.int64(-3), np.bool_(True), 0.1, -2, True, None, "text"],
        "special": [math.inf, -math.inf, 2 ** 100, 1e-300, ""],
        "empty": [np.zeros((0, 3), np.float32), np.zeros(()), [], {}, ()],
        ("tuple", 1): "tuple key",
        3: "int key",
        "shared": w,
        "file": np.arange(3),  # a member name that np.savez's keyword arguments would reject
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
        "nan": math.nan,
    }


def _assert_same(a, b, path="obj"):
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, fg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        assert np.array_equal(a.detach().numpy(), b.detach().numpy()), path
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), path
        assert np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_nested_structure_and_dtypes(tmp_path, fmt):
    obj = _nested()
    path = tmp_path / f"ckpt.{fmt}"
    S.save(obj, path)
    back = S.load(path)
    _assert_same(obj, back)
    assert back["shared"] is back["model"]["fc.weight"]  # shared tensors stay shared
    assert back["model"]["fc.weight"].is_leaf and back["model"]["fc.weight"].requires_grad
    back["optimizer"]["state"][0]["momentum_buffer"] += 1  # loaded arrays are writable
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_float_bits_and_python_floats_are_exact(tmp_path, fmt):
    x = fg.randn(1000)
    floats = [float(v) for v in np.random.default_rng(0).standard_normal(50)]
    S.save({"x": x, "f": floats, "lr": 1 / 3}, tmp_path / f"a.{fmt}")
    back = S.load(tmp_path / f"a.{fmt}")
    assert back["x"].numpy().tobytes() == x.numpy().tobytes()
    assert back["f"] == floats and back["lr"] == 1 / 3


def test_safetensors_file_is_standard(tmp_path):
    from safetensors.numpy import load_file

    sd = {"fc.weight": fg.randn(2, 3), "fc.bias": fg.zeros(2)}
    S.save(sd, tmp_path / "m.safetensors")
    flat = load_file(str(tmp_path / "m.safetensors"))  # any safetensors reader sees the keys
    assert sorted(flat) == ["fc.bias", "fc.weight"]
    assert np.array_equal(flat["fc.weight"], sd["fc.weight"].numpy())
    # and a plain safetensors file from elsewhere loads as a flat dict of Tensors
    from safetensors.numpy import save_file

    save_file({"a": np.ones(2, np.float32)}, str(tmp_path / "plain.safetensors"))
    plain = S.load(tmp_path / "plain.safetensors")
    assert isinstance(plain["a"], fg.Tensor) and plain["a"].tolist() == [1.0, 1.0]


def test_npz_reads_with_allow_pickle_false(tmp_path):
    S.save({"w": np.arange(4.0), "n": 3}, tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert "w" in z.files
        assert np.array_equal(z["w"], np.arange(4.0))
        meta = json.loads(str(z["__flowgrad__"][()]))  # the structure: a JSON string array
    assert meta["format"] == "flowgrad" and json.loads(meta["structure"])


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))  # needs pickle to read
    with pytest.raises(SerializationError, match="evil.npz"):
        S.load(path)


def test_pickle_file_is_refused_without_running_it(tmp_path):
    path = tmp_path / "model.pt"

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(SerializationError, match="model.pt"):
        S.load(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_are_refused(tmp_path, fmt):
    good = tmp_path / f"good.{fmt}"
    S.save({"w": fg.randn(64, 64), "epoch": 3}, good)
    data = good.read_bytes()
    for n in (0, 3, 8, 20, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"bad{n}.{fmt}"
        bad.write_bytes(data[:n])
        with pytest.raises(SerializationError, match=f"bad{n}"):
            S.load(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_bytes_are_refused(tmp_path, fmt):
    good = tmp_path / f"good.{fmt}"
    w = fg.randn(64, 64)
    S.save({"w": w, "epoch": 3}, good)
    data = bytearray(good.read_bytes())
    i = data.find(w.numpy()[10].tobytes())  # inside the tensor data
    assert i > 0
    data[i + 5] ^= 0x40
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match="bad") as e:
        S.load(bad)
    assert "corrupt" in str(e.value) or "CRC" in str(e.value)


def test_corrupt_header_is_refused(tmp_path):
    good = tmp_path / "good.safetensors"
    S.save({"w": fg.randn(4)}, good)
    data = bytearray(good.read_bytes())
    data[10] = ord("}")  # breaks the JSON header
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(SerializationError, match="bad.safetensors"):
        S.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("fmt", FORMATS)
def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"ckpt.{fmt}"
    S.save({"epoch": 1, "w": fg.ones(100)}, path)
    before = path.read_bytes()

    if fmt == "npz":  # the writer dies after having written part of the new file
        real = np.lib.format.write_array
        calls = []

        def failing(fp, array, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                fp.write(b"partial")
                raise OSError("disk full")
            return real(fp, array, *args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
    else:
        def failing_fsync(fd):
            raise OSError("disk full")

        monkeypatch.setattr(S.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        S.save({"epoch": 2, "w": fg.zeros(100), "v": fg.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert S.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # temporary file removed


def test_unsavable_objects_are_named(tmp_path):
    with pytest.raises(SerializationError, match=r"obj\['a'\]\[1\]"):
        S.save({"a": [1, object()]}, tmp_path / "x.safetensors")
    with pytest.raises(SerializationError, match="dtype object"):
        S.save({"a": np.array([None])}, tmp_path / "x.safetensors")
    cyc = []
    cyc.append(cyc)
    with pytest.raises(SerializationError, match="cycle"):
        S.save(cyc, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_complex_and_top_level_tensor(tmp_path):
    S.save(np.ones(3, np.complex128), tmp_path / "c.npz")
    assert S.load(tmp_path / "c.npz").dtype == np.complex128
    with pytest.raises(SerializationError, match="npz"):
        S.save(np.ones(3, np.complex128), tmp_path / "c.safetensors")
    t = fg.arange(5)
    S.save(t, tmp_path / "t.safetensors")
    assert S.load(tmp_path / "t.safetensors").tolist() == [0, 1, 2, 3, 4]


def test_map_location(tmp_path):
    from safetensors.numpy import save_file

    # a file saved from a GPU: its structure says device 'cuda'
    arrays = {"w": np.ones(2, np.float32)}
    structure = json.dumps({"$dict": [["w", {"$tensor": "w", "requires_grad": False,
                                             "device": "cuda"}]]})
    meta = {"format": "flowgrad", "version": "1", "structure": structure,
            "sha256": S._digest(arrays)}
    path = str(tmp_path / "gpu.safetensors")
    save_file(arrays, path, metadata=meta)
    if not fg.cuda_is_available():
        with pytest.raises(SerializationError, match="map_location='cpu'"):
            S.load(path)
    assert S.load(path, map_location="cpu")["w"].device == "cpu"
    assert S.load(path, map_location={"cuda": "cpu"})["w"].device == "cpu"
    seen = []
    S.load(path, map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cuda"]


def test_missing_file_and_wrong_version(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        S.load(tmp_path / "nope.safetensors")
    S.save({"a": 1}, tmp_path / "v.npz")
    with zipfile.ZipFile(tmp_path / "v.npz") as z:
        assert sorted(z.namelist()) == ["__flowgrad__.npy"]


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and CUDA")
@pytest.mark.parametrize("fmt", FORMATS)
def test_gpu_tensors_round_trip(tmp_path, fmt):
    t = fg.randn(3, 4, device="cuda").requires_grad_()
    path = tmp_path / f"g.{fmt}"
    S.save({"t": t, "raw": t._data}, path)
    back = S.load(path)
    assert back["t"].device == "cuda" and back["t"].requires_grad
    assert np.array_equal(back["t"].detach().cpu().numpy(), t.detach().cpu().numpy())
    assert isinstance(back["raw"], np.ndarray)  # a bare CuPy array comes back as NumPy
    assert S.load(path, map_location="cpu")["t"].device == "cpu"

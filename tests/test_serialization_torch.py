"""fg.save/fg.load with PyTorch's own checkpoint files (torch.save's zip format).

torch is the test oracle only: it writes files flowgrad must read, and reads files flowgrad wrote
(with weights_only=True). Hostile files must be refused without running anything."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.serialization import SerializationError, UnsafePickleError

torch = pytest.importorskip("torch")


def _torch_model():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(64, 5))
    m(torch.randn(8, 3, 6, 6))  # update BatchNorm's running stats and num_batches_tracked
    return m.eval()


def _fg_model():
    return fg.nn.Sequential(fg.nn.Conv2d(3, 4, 3), fg.nn.BatchNorm2d(4), fg.nn.ReLU(),
                            fg.nn.Flatten(), fg.nn.Linear(64, 5)).eval()


def _same(t, ref):
    assert isinstance(t, fg.Tensor)
    ref = ref.detach().numpy()
    assert t.dtype == ref.dtype and t.shape == ref.shape
    assert np.array_equal(t.numpy(), ref)


def test_torch_state_dict_loads_into_flowgrad_model(tmp_path):
    m = _torch_model()
    path = tmp_path / "model.pt"
    torch.save(m.state_dict(), path)
    sd = fg.load(path)
    assert list(sd) == list(m.state_dict())
    for k, v in m.state_dict().items():
        _same(sd[k], v)
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].ndim == 0
    fm = _fg_model()
    fm.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(fm(fg.tensor(x)).detach().numpy(),
                               m(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_flowgrad_pt_file_loads_in_torch_weights_only(tmp_path):
    fm = _fg_model()
    path = tmp_path / "weights.pth"
    fg.save(fm.state_dict(), path)  # the .pth suffix picks PyTorch's format
    with zipfile.ZipFile(path) as z:
        assert "archive/data.pkl" in z.namelist()
    m = _torch_model()
    m.load_state_dict(torch.load(path, weights_only=True))
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(m(torch.tensor(x)).detach().numpy(),
                               fm(fg.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_views_shared_storage_dtypes_and_nesting(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {
        "base": base, "col": base[:, 1], "t": base.t(), "strided": base[1:, ::2],
        "zero_d": torch.tensor(2.5, dtype=torch.float64), "empty": torch.zeros(0, 3),
        "bool": torch.tensor([True, False]), "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "param": torch.nn.Parameter(torch.ones(2)),
        "dtypes": {str(d): torch.arange(5).to(d) for d in
                   (torch.float16, torch.float32, torch.float64, torch.int8, torch.int16,
                    torch.int32, torch.int64, torch.uint8)},
        "nested": {"epoch": 3, "lr": 0.1, "name": "run", "flags": [True, None], "pair": (1, 2),
                   "big": 2 ** 70, "blob": b"\x00\xff", "c": 1 + 2j},
        "same": None,
    }
    obj["same"] = obj["col"]
    f = io.BytesIO()
    torch.save(obj, f)
    f.seek(0)
    back = fg.load(f)  # a file object, like torch.load
    for k in ("base", "col", "t", "strided", "zero_d", "empty", "bool"):
        _same(back[k], obj[k])
    assert back["bf16"].dtype == np.float32  # bfloat16 widens to float32, exactly
    assert back["bf16"].tolist() == [1.5, -2.0]
    assert isinstance(back["param"], fg.nn.Parameter) and back["param"].requires_grad
    for k, v in obj["dtypes"].items():
        _same(back["dtypes"][k], v)
    assert back["nested"] == obj["nested"]
    assert back["same"] is back["col"]  # one tensor saved twice loads as one object
    back["base"][0, 0] = 100.0  # loaded tensors are writable copies
    assert back["col"].tolist() == obj["col"].tolist()


def test_optimizer_state_dict_from_torch(tmp_path):
    m = _torch_model().train()
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3},
               tmp_path / "ckpt.pt")
    back = fg.load(tmp_path / "ckpt.pt")
    assert back["epoch"] == 3
    ref = opt.state_dict()
    assert back["optimizer"]["param_groups"][0]["lr"] == 0.01
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    for i, st in ref["state"].items():
        for k, v in st.items():
            _same(back["optimizer"]["state"][i][k], v)
    fm = _fg_model().train()
    fm.load_state_dict(back["model"])
    fopt = fg.optim.Adam(fm.parameters(), lr=0.01)
    fopt.load_state_dict(back["optimizer"])


@pytest.mark.parametrize("fmt", ["torch", "safetensors", "npz"])
def test_round_trip_and_file_objects(tmp_path, fmt):
    fm = _fg_model()
    obj = {"model": fm.state_dict(), "epoch": 3, "hist": [0.5, 0.25], "w": fg.nn.Parameter(
        fg.randn(2, 3)), "ints": fg.arange(4)}
    f = io.BytesIO()
    fg.save(obj, f, format=fmt)
    f.seek(0)
    back = fg.load(f)
    path = tmp_path / "x.bin"
    with open(path, "wb") as fh:
        fg.save(obj, fh, format=fmt)
    with open(path, "rb") as fh:
        back2 = fg.load(fh)
    for b in (back, back2, fg.load(path)):
        assert b["epoch"] == 3 and b["hist"] == [0.5, 0.25]
        for k, v in obj["model"].items():
            assert np.array_equal(b["model"][k].numpy(), v.numpy())
            assert b["model"][k].dtype == v.dtype
        assert b["w"].requires_grad and b["ints"].dtype == np.int64
    if fmt == "torch":
        f.seek(0)
        t = torch.load(f, weights_only=True)
        assert isinstance(t["w"], torch.nn.Parameter) and t["ints"].dtype == torch.int64
        assert t["model"]["1.num_batches_tracked"].dim() == 0


def test_whole_model_is_refused_with_the_state_dict_way(tmp_path):
    fm = _fg_model()
    for name in ("m.pt", "m.safetensors", "m.npz"):
        with pytest.raises(SerializationError, match=r"fg\.save\(obj\.state_dict\(\), path\)"):
            fg.save(fm, tmp_path / name)
        with pytest.raises(SerializationError, match="state_dict"):
            fg.save({"model": fm}, tmp_path / name)
    assert not list(tmp_path.iterdir())


def _torch_zip_with(pkl: bytes, storages=None) -> bytes:
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, v in (storages or {}).items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")
    return f.getvalue()


@pytest.mark.parametrize("target", ["os.system", "posix.system", "builtins.eval",
                                    "builtins.exec", "subprocess.call"])
def test_hostile_globals_are_refused_without_running(tmp_path, target):
    marker = tmp_path / "pwned"
    module, name = target.split(".")
    cmd = (f"open({str(marker)!r}, 'w')" if name in ("eval", "exec")
           else f"touch {marker}")
    payload = (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
               + pickle.dumps((cmd,), protocol=2)[2:-1] + b"R.")
    path = tmp_path / "evil.pt"
    path.write_bytes(_torch_zip_with(payload))
    with pytest.raises(UnsafePickleError, match=target.replace(".", r"\.")) as e:
        fg.load(path)
    assert isinstance(e.value, pickle.UnpicklingError)  # what torch raises under weights_only
    assert "evil.pt" in str(e.value)
    assert not marker.exists()
    # the same pickle inside a real torch archive (named like a safetensors file) too
    good = io.BytesIO()
    torch.save({"a": torch.ones(2)}, good)
    with zipfile.ZipFile(io.BytesIO(good.getvalue())) as zin:
        records = {n: zin.read(n) for n in zin.namelist()}
    records["archive/data.pkl"] = payload
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as zout:
        for n, v in records.items():
            zout.writestr(n, v)
    (tmp_path / "evil.safetensors").write_bytes(f.getvalue())
    with pytest.raises(UnsafePickleError):
        fg.load(tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_reduce_based_payload_via_torch_pickler_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"w": torch.ones(2), "boom": Boom()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match="system"):
        fg.load(tmp_path / "evil.pt")
    assert not marker.exists()


def test_corrupt_torch_files_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.randn(64, 64), "epoch": 3}, good)
    data = good.read_bytes()
    for n in (4, 100, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"trunc{n}.pt"
        bad.write_bytes(data[:n])
        with pytest.raises(SerializationError, match=f"trunc{n}"):
            fg.load(bad)
    # a storage smaller than its tensor needs
    with zipfile.ZipFile(good) as z:
        records = {n: z.read(n) for n in z.namelist()}
    small = dict(records)
    key = next(n for n in small if "/data/" in n and not n.endswith("serialization_id"))
    small[key] = small[key][:100]
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        for n, v in small.items():
            z.writestr(n, v)
    (tmp_path / "small.pt").write_bytes(f.getvalue())
    with pytest.raises(SerializationError, match="small.pt.*storage"):
        fg.load(tmp_path / "small.pt")
    # a data.pkl that is not a pickle
    (tmp_path / "notpkl.pt").write_bytes(_torch_zip_with(b"hello, not a pickle"))
    with pytest.raises(SerializationError, match="not a pickle"):
        fg.load(tmp_path / "notpkl.pt")
    pkl = next(v for n, v in records.items() if n.endswith("/data.pkl"))
    (tmp_path / "cut.pt").write_bytes(_torch_zip_with(pkl[:-20]))
    with pytest.raises(SerializationError, match="cut.pt"):
        fg.load(tmp_path / "cut.pt")


def test_view_outside_its_storage_is_refused(tmp_path):
    # a handwritten pickle: a 10-element view with stride 3 into a 4-element storage
    pkl = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
           b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\n\x85K"
           b"\x03\x85\x89ccollections\nOrderedDict\n)RtR.")
    (tmp_path / "oob.pt").write_bytes(_torch_zip_with(pkl, {"0": np.ones(4, "<f4").tobytes()}))
    with pytest.raises(SerializationError, match="needs 28 elements, but its storage holds 4"):
        fg.load(tmp_path / "oob.pt")


def test_detection_is_by_content_not_suffix(tmp_path):
    torch.save({"a": torch.arange(3)}, tmp_path / "weights.safetensors")
    assert fg.load(tmp_path / "weights.safetensors")["a"].tolist() == [0, 1, 2]
    fg.save({"a": fg.arange(3)}, tmp_path / "flow.pt", format="safetensors")
    assert fg.load(tmp_path / "flow.pt")["a"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="format="):
        fg.save({}, tmp_path / "x.pt", format="pickle")

"""flowgrad.datasets: finding, verifying and reading dataset files (MNIST, LeCun et al. 1998;
Fashion-MNIST, Xiao et al. 2017), the bundled digits and generated MNIST-1D (Greydanus 2020).

Tests on the real files run where ../shared/data exists; the rest use fixtures in tmp_path and
never touch the network (the downloader is monkeypatched)."""

import gzip
import hashlib
import re
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.datasets import (
    CHECKSUMS,
    MNIST,
    ChecksumError,
    CorruptFileError,
    DatasetNotFoundError,
    FashionMNIST,
    digits,
    locate,
    mnist1d,
    read_idx,
    search_path,
    write_idx,
)
from flowgrad.datasets import files as files_mod
from flowgrad.utils.data import DataLoader

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason="../shared/data/mnist is not here")
TRAIN = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    """An IDX file written by hand (independent of flowgrad's writer)."""
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(">u1" if code == 8 else ">f4").tobytes()


def _fixture(folder: Path, n: int = 6, seed: int = 0) -> tuple:
    """A tiny MNIST-format training set in ``folder``; returns (images, labels, checksums)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRAIN[0]).write_bytes(gzip.compress(_idx_bytes(images, 8)))
    (folder / TRAIN[1]).write_bytes(gzip.compress(_idx_bytes(labels, 8)))
    sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in TRAIN}
    return images, labels, sums


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset is reachable: HOME, the working directory and the checkout all point
    into tmp_path, FLOWGRAD_DATA is unset, and any download attempt fails as if offline."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWGRAD_DATA", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(files_mod, "_REPO", tmp_path / "repo" / "checkout")

    def offline(url, dest, timeout=None):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(files_mod, "_download", offline)
    return tmp_path


# --- the real files ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(train=True, download=False)


@needs_shared
def test_mnist_shapes_dtypes_first_labels(mnist_train):
    ds = mnist_train
    assert ds.root.resolve() == (SHARED / "mnist").resolve()
    assert ds.data.shape == (60000, 28, 28) and ds.data.dtype == fg.uint8
    assert ds.targets.shape == (60000,) and ds.targets.dtype == fg.int64
    assert ds.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(ds.targets.numpy()).tolist()[:2] == [5923, 6742]
    img, label = ds[0]
    assert img.shape == (1, 28, 28) and img.dtype == fg.float32 and label == 5
    assert 0.0 <= float(img.min()) and float(img.max()) == 1.0
    np.testing.assert_array_equal(img.numpy()[0], ds.data.numpy()[0] / np.float32(255))
    test = MNIST(train=False, download=False)
    assert len(test) == 10000 and test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@needs_shared
def test_mnist_tensor_dataset_and_loader(mnist_train):
    tds = mnist_train.to_tensor_dataset(flatten=True)
    x, y = tds.tensors
    assert x.shape == (60000, 784) and x.dtype == fg.float32 and y.dtype == fg.int64
    np.testing.assert_array_equal(x.numpy()[7], mnist_train[7][0].numpy().reshape(-1))
    norm = mnist_train.to_tensor_dataset(normalize=True).tensors[0]
    assert norm.shape == (60000, 1, 28, 28)
    assert abs(float(norm.mean())) < 1e-3 and abs(float(norm.std()) - 1) < 1e-3
    xb, yb = next(iter(DataLoader(tds, batch_size=128, shuffle=True)))
    assert xb.shape == (128, 784) and yb.shape == (128,)
    seen = DataLoader(mnist_train, batch_size=4)  # the per-sample path through __getitem__
    xb, yb = next(iter(seen))
    assert xb.shape == (4, 1, 28, 28) and yb.tolist() == [5, 0, 4, 1]


@needs_shared
def test_fashion_mnist_first_labels():
    ds = FashionMNIST(train=True, download=False)
    assert ds.data.shape == (60000, 28, 28)
    assert ds.targets[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.classes[9] == "Ankle boot"
    test = FashionMNIST(train=False, download=False)
    assert test.targets[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


@needs_shared
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_shared_checksums_match_readme_and_code(name):
    readme = (SHARED / name / "README.md").read_text()
    table = dict(re.findall(r"\|\s*`([^`]+)`\s*\|\s*\d+\s*\|\s*`([0-9a-f]{64})`\s*\|", readme))
    assert table == CHECKSUMS[name]  # the hard-coded hashes are the README's
    for f, digest in table.items():
        assert files_mod.sha256(SHARED / name / f) == digest


@needs_shared
def test_transforms_receive_uint8_image(mnist_train):
    ds = MNIST(download=False, transform=lambda a: a.shape + (a.dtype.name,),
               target_transform=lambda t: t + 100)
    assert ds[0] == ((28, 28, "uint8"), 105)


# --- fixtures: reading and verifying -------------------------------------------------------------

def test_tiny_idx_fixture_loads(isolated, monkeypatch):
    images, labels, sums = _fixture(isolated / "mine" / "mnist")
    monkeypatch.setitem(CHECKSUMS, "mnist", sums)
    ds = MNIST(root=isolated / "mine", train=True)
    assert ds.root == isolated / "mine" / "mnist"
    np.testing.assert_array_equal(ds.data.numpy(), images)
    assert ds.targets.dtype == fg.int64 and ds.targets.tolist() == labels.tolist()
    img, label = ds[3]
    np.testing.assert_array_equal(img.numpy(), images[3][None] / np.float32(255))
    assert label == labels[3]
    assert len(ds) == 6 and len(ds.to_tensor_dataset()) == 6


def test_read_idx_roundtrip_dtypes(tmp_path):
    for arr in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.linspace(-1, 1, 6,
                                                                            dtype=np.float32)):
        for name in ("a.idx", "a.idx.gz"):
            write_idx(tmp_path / name, arr)
            out = read_idx(tmp_path / name)
            assert out.dtype == arr.dtype and out.flags.writeable
            np.testing.assert_array_equal(out, arr)
    (tmp_path / "f.gz").write_bytes(gzip.compress(_idx_bytes(np.ones((2, 2), np.float32), 0x0D)))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), np.ones((2, 2), np.float32))


def test_truncated_and_corrupt_files_give_clear_errors(isolated, monkeypatch):
    folder = isolated / "mine" / "mnist"
    _fixture(folder)
    gz = (folder / TRAIN[0]).read_bytes()
    raw = gzip.decompress(gz)
    cases = {
        "cut.gz": gz[: len(gz) // 2],                           # truncated gzip stream
        "short.gz": gzip.compress(raw[:-100]),                  # valid gzip, payload too short
        "garbage.gz": b"\x1f\x8b" + b"\x00" * 40,               # not gzip at all inside
        "magic.gz": gzip.compress(b"\x01\x02" + raw[2:]),       # not an IDX file
    }
    messages = {"cut.gz": "truncated or corrupt gzip", "short.gz": "truncated or corrupt",
                "garbage.gz": "truncated or corrupt gzip", "magic.gz": "not an IDX file"}
    for name, data in cases.items():
        (isolated / name).write_bytes(data)
        with pytest.raises(CorruptFileError, match=messages[name]) as e:
            read_idx(isolated / name)
        assert name in str(e.value)
    with pytest.raises(CorruptFileError, match="expected 0x00000801"):
        read_idx(folder / TRAIN[0], magic=0x00000801)
    # through the loader: a truncated images file whose checksum was (wrongly) trusted
    (folder / TRAIN[0]).write_bytes(cases["short.gz"])
    sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in TRAIN}
    monkeypatch.setitem(CHECKSUMS, "mnist", sums)
    with pytest.raises(CorruptFileError, match=r"needs 4704 bytes .* has 4604"):
        MNIST(root=isolated / "mine")


def test_wrong_checksum_names_file_and_both_hashes(isolated, monkeypatch):
    folder = isolated / "mine" / "mnist"
    _, _, sums = _fixture(folder)
    wrong = dict(sums, **{TRAIN[1]: "0" * 64})
    monkeypatch.setitem(CHECKSUMS, "mnist", wrong)
    with pytest.raises(ChecksumError) as e:
        MNIST(root=isolated / "mine")
    msg = str(e.value)
    assert str(folder / TRAIN[1]) in msg and "0" * 64 in msg and sums[TRAIN[1]] in msg


@needs_shared
def test_real_mnist_checksum_is_enforced(isolated):
    # the real checksums against a fixture: the fixture is refused, naming both hashes
    folder = isolated / "mine" / "mnist"
    _, _, sums = _fixture(folder)
    with pytest.raises(ChecksumError, match=CHECKSUMS["mnist"][TRAIN[0]]) as e:
        MNIST(root=isolated / "mine")
    assert sums[TRAIN[0]] in str(e.value)


# --- fixtures: where files are looked for --------------------------------------------------------

def test_search_order_and_flowgrad_data_precedence(isolated, monkeypatch):
    monkeypatch.setenv("FLOWGRAD_DATA", str(isolated / "env"))
    places = [p for p, _ in search_path("tiny")]
    assert places == [isolated / "env" / "tiny",
                      Path.cwd().parent / "shared" / "data" / "tiny",
                      isolated / "repo" / "shared" / "data" / "tiny",  # checkout/../shared
                      isolated / "home" / ".cache" / "flowgrad" / "tiny"]
    folders = {"env": isolated / "env" / "tiny", "cwd": isolated / "shared" / "data" / "tiny",
               "repo": isolated / "repo" / "shared" / "data" / "tiny",
               "cache": isolated / "home" / ".cache" / "flowgrad" / "tiny"}
    sums = {}
    for seed, folder in enumerate(folders.values()):
        _, _, sums[folder] = _fixture(folder, seed=seed)
    # each copy differs; verification with the env copy's hashes passes only if env wins
    assert locate("tiny", TRAIN, checksums=sums[folders["env"]]) == folders["env"]
    monkeypatch.delenv("FLOWGRAD_DATA")
    assert locate("tiny", TRAIN, checksums=sums[folders["cwd"]]) == folders["cwd"]
    assert locate("tiny", TRAIN, root=isolated / "r", checksums=sums[folders["cwd"]]) \
        == folders["cwd"]
    monkeypatch.chdir(isolated)  # now ../shared/data from here has nothing
    assert locate("tiny", TRAIN, checksums=sums[folders["repo"]]) == folders["repo"]
    _fixture(isolated / "r" / "tiny", seed=9)
    with pytest.raises(ChecksumError):  # root comes first, and its copy differs
        locate("tiny", TRAIN, root=isolated / "r", checksums=sums[folders["repo"]])


@needs_shared
def test_flowgrad_data_beats_shared_data(isolated, monkeypatch):
    monkeypatch.setattr(files_mod, "_REPO", Path(__file__).resolve().parents[1])  # real checkout
    images, _, sums = _fixture(isolated / "env" / "mnist")
    assert MNIST(download=False).data.shape[0] == 60000  # found in ../shared/data
    monkeypatch.setenv("FLOWGRAD_DATA", str(isolated / "env"))
    monkeypatch.setitem(CHECKSUMS, "mnist", sums)
    np.testing.assert_array_equal(MNIST(download=False).data.numpy(), images)


def test_offline_missing_file_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv("FLOWGRAD_DATA", str(isolated / "env"))
    (isolated / "env" / "mnist").mkdir(parents=True)
    (isolated / "env" / "mnist" / TRAIN[1]).write_bytes(b"x")  # a partial copy
    with pytest.raises(DatasetNotFoundError) as e:
        MNIST()
    msg = str(e.value)
    for place, _ in search_path("mnist"):
        assert str(place) in msg
    assert "$FLOWGRAD_DATA" in msg and "has only train-labels-idx1-ubyte.gz" in msg
    assert "network is unreachable" in msg and "ossci-datasets" in msg
    assert f"Put the files in {isolated / 'home' / '.cache' / 'flowgrad' / 'mnist'}" in msg
    assert "FLOWGRAD_DATA=<dir>" in msg
    assert not list((isolated / "home").rglob("*.part"))
    with pytest.raises(DatasetNotFoundError, match=r"download=False"):
        MNIST(download=False)
    assert isinstance(e.value, FileNotFoundError)


def test_download_goes_to_cache_and_is_verified(isolated, monkeypatch):
    source = isolated / "mirror"
    _, labels, sums = _fixture(source)
    monkeypatch.setitem(CHECKSUMS, "mnist", sums)
    fetched = []

    def fake_download(url, dest, timeout=None):
        fetched.append(url)
        dest.write_bytes((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(files_mod, "_download", fake_download)
    ds = MNIST()
    cache = isolated / "home" / ".cache" / "flowgrad" / "mnist"
    assert ds.root == cache and sorted(p.name for p in cache.iterdir()) == sorted(TRAIN)
    assert fetched == [files_mod.MIRRORS["mnist"][0] + f for f in TRAIN]
    assert ds.targets.tolist() == labels.tolist()
    MNIST()  # now found in the cache: no second download
    assert len(fetched) == 2

    # a mirror serving wrong bytes: nothing is kept, the next mirror is tried
    monkeypatch.setitem(CHECKSUMS, "mnist", dict(sums, **{TRAIN[0]: "f" * 64}))
    for f in TRAIN:
        (cache / f).unlink()
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as e:
        MNIST()
    assert str(e.value).count("checksum mismatch") == len(files_mod.MIRRORS["mnist"])
    assert not (cache / TRAIN[0]).exists() and not list(cache.glob("*.part"))


# --- embedded and generated datasets -------------------------------------------------------------

def test_digits_shapes_and_determinism():
    (xtr, ytr), (xte, yte) = digits()
    assert xtr.shape == (1438, 64) and xte.shape == (359, 64)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert 0.0 <= xtr.min() and xtr.max() == 1.0 and set(np.unique(ytr)) == set(range(10))
    again = digits()
    np.testing.assert_array_equal(again.x_train, xtr)
    np.testing.assert_array_equal(again["y_test"], yte)
    other = digits(seed=1)
    assert not np.array_equal(other.y_train, ytr)
    assert digits(flatten=False).x_test.shape == (359, 1, 8, 8)
    assert len(digits(test_fraction=0.5).x_test) == 898
    assert len(digits().train_dataset()) == 1438


def test_mnist1d_official_defaults_and_determinism():
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    s = mnist1d()
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global state put back
    (xtr, ytr), (xte, yte) = s
    assert xtr.shape == (4000, 40) and xte.shape == (1000, 40)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert set(np.unique(ytr)) == set(range(10)) and s["t"].shape == (40,)
    official = make_dataset(get_dataset_args())  # the package's own defaults, seed 42
    np.testing.assert_array_equal(xtr, official["x"].astype(np.float32))
    np.testing.assert_array_equal(yte, official["y_test"])
    np.testing.assert_array_equal(mnist1d().x_test, xte)
    small = mnist1d(num_samples=200, train_split=0.5, seed=3)
    assert small.x_train.shape == (100, 40) and small.x_test.shape == (100, 40)
    assert not np.array_equal(mnist1d(num_samples=200, train_split=0.5, seed=4).x_train,
                              small.x_train)

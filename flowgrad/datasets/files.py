"""Finding dataset files: search the usual folders, verify SHA-256 checksums, download from the
canonical source when online, and otherwise say exactly where the files should go.

Search order for ``locate(name, files)``: ``root`` (when given), ``$FLOWGRAD_DATA/<name>``,
``../shared/data/<name>`` from the working directory, ``../shared/data/<name>`` from the
repository checkout, then ``~/.cache/flowgrad/<name>`` (where downloads go).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

# SHA-256 of every file, from the READMEs in shared/data/<name> (they match TensorFlow Datasets').
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {  # LeCun et al. 1998
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {  # Xiao et al. 2017
        "train-images-idx3-ubyte.gz":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "LICENSE": "13ef4788476d292858fa60eb9a5f74aeca5c65770bc885ccaa05823a17ef7be1",
    },
}

# Canonical sources, tried in order: the mirror torchvision uses, then the original host.
MIRRORS: dict[str, list[str]] = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "http://yann.lecun.com/exdb/mnist/"],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                      "data/fashion/"],
}

TIMEOUT_S = 30.0
_REPO = Path(__file__).resolve().parents[2]  # flowgrad/data/files.py -> the checkout
_hash_memo: dict[tuple, str] = {}


class ChecksumError(ValueError):
    """A dataset file whose SHA-256 differs from the published one."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is in none of the searched folders and could not be downloaded."""


def cache_dir() -> Path:
    """~/.cache/flowgrad, where downloads go."""
    return Path.home() / ".cache" / "flowgrad"


def search_path(name: str, root=None) -> list[tuple[Path, str]]:
    """The folders searched for dataset ``name``, in order, each with why it is searched."""
    places: list[tuple[Path, str]] = []
    if root is not None:
        places += [(Path(root) / name, "root/<name>"), (Path(root), "root")]
    env = os.environ.get("FLOWGRAD_DATA")
    if env:
        places.append((Path(env) / name, "$FLOWGRAD_DATA"))
    places.append((Path.cwd().parent / "shared" / "data" / name,
                   "../shared/data from the working directory"))
    places.append((_REPO.parent / "shared" / "data" / name,
                   "../shared/data from the flowgrad checkout"))
    places.append((cache_dir() / name, "download cache"))
    seen, out = set(), []
    for path, why in places:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append((path, why))
    return out


def sha256(path) -> str:
    """The file's SHA-256 hex digest (remembered per path, size and mtime)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    digest = _hash_memo.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = _hash_memo[key] = h.hexdigest()
    return digest


def verify(path, expected: str | None) -> None:
    """Raise ChecksumError naming the file and both hashes when its SHA-256 is not ``expected``."""
    if expected is None:
        return
    got = sha256(path)
    if got != expected.lower():
        raise ChecksumError(f"checksum mismatch for {path}: expected sha256 {expected}, got {got}. "
                            f"The file is corrupt, truncated or a different version; delete it "
                            f"and put the canonical file there (or let flowgrad download it).")


def _download(url: str, dest: Path, timeout: float = TIMEOUT_S) -> None:
    """Fetch ``url`` into ``dest`` (urllib, with a timeout)."""
    req = urllib.request.Request(url, headers={"User-Agent": "flowgrad"})
    with urllib.request.urlopen(req, timeout=timeout) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)


def _fetch(file: str, folder: Path, expected: str | None, urls: list[str]) -> list:
    """Download one file into ``folder`` from the first mirror that works; the errors met."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {folder}: {e}"]
    errors = []
    part = folder / (file + ".part")
    for base in urls:
        url = base + file
        try:
            _download(url, part)
            verify(part, expected)
        except ChecksumError as e:
            errors.append(f"{url}: {e}")
            part.unlink(missing_ok=True)
            continue
        except Exception as e:
            errors.append(f"{url}: {type(e).__name__}: {e}")
            part.unlink(missing_ok=True)
            continue
        os.replace(part, folder / file)
        return []
    return errors


def locate(name: str, files, *, root=None, download: bool = True, checksums=None,
           urls=None) -> Path:
    """The folder holding every one of ``files`` for dataset ``name``, checksums verified;
    downloads what is missing into ``root/<name>`` or ~/.cache/flowgrad/<name> when online."""
    files = list(files)
    checksums = CHECKSUMS.get(name, {}) if checksums is None else checksums
    urls = MIRRORS.get(name, []) if urls is None else list(urls)
    places = search_path(name, root)
    for folder, _ in places:
        if all((folder / f).is_file() for f in files):
            for f in files:
                verify(folder / f, checksums.get(f))
            return folder
    dest = Path(root) / name if root is not None else cache_dir() / name
    errors: list[str] = []
    if download and urls:
        for f in files:
            if (dest / f).is_file():
                verify(dest / f, checksums.get(f))
                continue
            errors += _fetch(f, dest, checksums.get(f), urls)
            if errors:
                break
        if not errors:
            return dest
    lines = [f"dataset {name!r}: could not find {', '.join(files)}.", "Searched:"]
    for folder, why in places:
        have = [f for f in files if (folder / f).is_file()]
        note = f"; has only {', '.join(have)}" if have else ""
        lines.append(f"  - {folder} ({why}{note})")
    if not download:
        lines.append("Downloading is off (download=False).")
    elif not urls:
        lines.append("No download source is known for this dataset.")
    else:
        lines.append("Download failed (offline?):")
        lines += [f"  - {e}" for e in errors]
    lines.append(f"Put the files in {dest}, or in <dir>/{name} and set FLOWGRAD_DATA=<dir>"
                 + (f"; they are at {' or '.join(urls)}" if urls else "") + ".")
    raise DatasetNotFoundError("\n".join(lines))

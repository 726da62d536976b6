"""The file habits both halves share: a sha256 of a file, a write that a reader never sees half done, and the
IDX format (MNIST's, and what `digitrec feedback export` writes for `train --extra-data`)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError


class IdxError(DigitrecError):
    """Bytes that are not an IDX file of unsigned bytes."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, raw: bytes) -> None:
    """Write via a temp file in the same folder and rename, so a reader never sees half a file and a crash
    mid-write leaves the previous version intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: dict) -> None:
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, raw data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def decode_idx(raw: bytes) -> np.ndarray:
    """Parse IDX bytes (uint8 payload only, as MNIST uses)."""
    if len(raw) < 4:
        raise IdxError("not an IDX file: it is shorter than its 4-byte header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise IdxError("not an IDX file of unsigned bytes (bad magic number)")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    payload = raw[4 + 4 * ndim :]
    if len(payload) != int(np.prod(dims)):
        raise IdxError(f"IDX payload has {len(payload)} bytes, its header promises {int(np.prod(dims))}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)

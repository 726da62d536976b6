"""Where things live on disk: the MNIST cache, hand-supplied MNIST files, the server's data (the feedback
store) and the bundled model. Environment variables win; they are all read here."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def cache_dir() -> Path:
    """The MNIST cache: $DIGITREC_CACHE, else ~/.cache/digitrec."""
    env = os.environ.get("DIGITREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "digitrec"


def mnist_dir() -> Path | None:
    """A folder with hand-supplied MNIST files ($DIGITREC_MNIST_DIR), if set. Its old name, $DIGITREC_DATA, was
    one letter group away from $DIGITREC_DATA_DIR (the server's data): it still works, with a warning."""
    env = os.environ.get("DIGITREC_MNIST_DIR")
    if not env and os.environ.get("DIGITREC_DATA"):
        warnings.warn("DIGITREC_DATA is now DIGITREC_MNIST_DIR; the old name goes away in the next release",
                      FutureWarning, stacklevel=2)
        env = os.environ["DIGITREC_DATA"]
    return Path(env).expanduser() if env else None


def data_dir() -> Path:
    """The server's data, where the default SQLite feedback store lives: $DIGITREC_DATA_DIR, else
    ~/.local/share/digitrec."""
    env = os.environ.get("DIGITREC_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "digitrec"

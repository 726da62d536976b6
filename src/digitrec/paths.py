"""Where things live on disk: the data cache and the bundled model. Environment variables win."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def cache_dir() -> Path:
    """The MNIST cache: $DIGITREC_CACHE, else ~/.cache/digitrec."""
    env = os.environ.get("DIGITREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "digitrec"


def user_data_dir() -> Path | None:
    """A folder with hand-supplied MNIST files ($DIGITREC_DATA), if set."""
    env = os.environ.get("DIGITREC_DATA")
    return Path(env).expanduser() if env else None

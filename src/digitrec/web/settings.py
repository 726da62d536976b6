"""The request limits every route reads, and where the page's files are: what the routes and the body readers
need from the app, in a module that imports none of them (so nothing imports web/app back)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError

STATIC_DIR = Path(__file__).resolve().parent / "static"
SETTINGS_ENV_PREFIX = "DIGITREC_"


@dataclass(frozen=True)
class Settings:
    """Request limits. Each can be set from the environment, e.g. DIGITREC_MAX_BODY_BYTES=4000000."""

    max_body_bytes: int = 10 * 1024 * 1024  # a phone photo is a 3-8 MB JPEG
    max_image_pixels: int = 4096 * 4096  # checked from the header, before a single pixel is decoded
    max_batch: int = 256
    max_batch_pixels: int = 32 * 1024 * 1024  # all images of one batch together, from their headers

    @classmethod
    def from_env(cls) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(SETTINGS_ENV_PREFIX + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = int(raw)
                except ValueError as exc:
                    raise DigitrecError(f"{SETTINGS_ENV_PREFIX}{f.name.upper()} must be an integer.") from exc
        return cls(**values)

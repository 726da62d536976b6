"""Every serving option in one pydantic-settings object: `digitrec serve` builds it from its flags, and the
app factory from DIGITREC_* variables, the only way worker processes (and `uvicorn --factory
digitrec.web.app:create_app`) can be told anything, so `--workers 4` serves exactly what `--workers 1` does.

Values are checked in `check()`, with the flag's name in one sentence, rather than by field constraints:
the CLI and the tests build settings first and check them once, before anything starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digitrec.errors import DigitrecError

if TYPE_CHECKING:
    from digitrec.feedback.retention import Retention
    from digitrec.feedback.store import FeedbackStore

STATIC_DIR = Path(__file__).resolve().parent / "static"
ENV_PREFIX = "DIGITREC_"
NO_DB = ("off", "none")
HTTP_STACKS = ("auto", "h11", "httptools")


class ServeSettings(BaseSettings):
    """What `digitrec serve` runs with; each field is also DIGITREC_<FIELD> (e.g. DIGITREC_MAX_HEAVY=2)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid")

    model: str | None = None  # a run folder or .onnx; None: the bundled model
    # Request limits, reported by /api/model.
    max_body_bytes: int = 10 * 1024 * 1024  # a phone photo is a 3-8 MB JPEG
    max_image_pixels: int = 4096 * 4096  # checked from the header, before a single pixel is decoded
    max_batch: int = 256
    max_batch_pixels: int = 32 * 1024 * 1024  # all images of one batch together, from their headers
    # Production: feedback store, rate limit, CORS, A/B, access log, admin.
    db: str | None = None  # None: $DIGITREC_DB or SQLite under the data dir; "off": no store
    rate_limit: str | None = None  # e.g. "20/second"; None (or "off"): no limit
    rate_limit_storage: str | None = None  # redis://HOST:PORT: one count for every worker and replica
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # comma-separated in the environment
    candidate: str | None = None  # A/B: a second model...
    candidate_share: float = 0.1  # ...answering this share of clients
    access_log: bool = True
    admin_token: SecretStr | None = None  # unset: the admin API does not exist (404)
    model_dirs: Annotated[tuple[Path, ...], NoDecode] = ()  # where admin reload may load from (os.pathsep)
    # uvicorn's setting, under uvicorn's own variable: X-Forwarded-For is believed only from these
    # addresses/networks. None: uvicorn's default (127.0.0.1). The parent gives it to uvicorn for every worker.
    forwarded_allow_ips: str | None = Field(
        default=None, validation_alias=AliasChoices("forwarded_allow_ips", "FORWARDED_ALLOW_IPS"))
    # Hardening (web/admission.py, web/connections.py, feedback/retention.py).
    retain: str | None = None  # '30d' or a row count; None: keep every prediction
    max_heavy: int = 8  # heavy requests in flight per worker...
    heavy_wait: float = 1.0  # ...and how long one beyond waits for a slot before its 503
    header_timeout: float = 10.0  # seconds for a request's headers...
    body_timeout: float = 30.0  # ...and for its whole body
    http: str = "auto"  # uvicorn's HTTP parser: auto (httptools when installed), h11 or httptools

    @field_validator("rate_limit")
    @classmethod
    def _off_is_none(cls, value: str | None) -> str | None:
        # The image sets DIGITREC_RATE_LIMIT; `--rate-limit off` (or the variable set to off) turns it off.
        return None if value is None or value.strip().lower() in ("off", "none", "0") else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return tuple(o.strip() for o in value.split(",") if o.strip()) if isinstance(value, str) else value

    @field_validator("model_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: Any) -> Any:
        return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, **given: Any) -> ServeSettings:
        """The environment's settings (`given` wins over it), or one sentence naming the bad variable."""
        try:
            return cls(**given)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err.get("loc") else "?"
            where = f"--{name.replace('_', '-')}" if name in given else ENV_PREFIX + name.upper()
            raise DigitrecError(f"{where}: {err['msg']} (got {err.get('input')!r}).") from exc

    def to_env(self) -> dict[str, str]:
        """The DIGITREC_* variables that rebuild these settings in a worker process (`from_env`)."""
        values = self.model_dump(exclude={"forwarded_allow_ips"})  # uvicorn.run takes that one itself
        env = {}
        for name, value in values.items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, tuple):
                text = (os.pathsep if name == "model_dirs" else ",").join(str(v) for v in value)
            else:
                text = "" if value is None else str(value)
            env[ENV_PREFIX + name.upper()] = text
        return env

    def check(self) -> None:
        """Fail fast with one sentence on a bad option (serve() calls it before starting uvicorn)."""
        if not 0.0 <= self.candidate_share <= 1.0:
            raise DigitrecError(f"--candidate-share must be between 0 and 1, not {self.candidate_share}.")
        if self.rate_limit:
            from digitrec.web.protection import parse_rate

            parse_rate(self.rate_limit)
        if self.rate_limit_storage:
            from digitrec.web.protection import check_storage_uri

            if not self.rate_limit:
                raise DigitrecError("--rate-limit-storage needs --rate-limit (e.g. --rate-limit 20/second).")
            check_storage_uri(self.rate_limit_storage)
        if self.forwarded_allow_ips:
            _check_forwarded_allow_ips(self.forwarded_allow_ips)
        self.retention()
        for name in ("max_heavy", "header_timeout", "body_timeout", "max_body_bytes", "max_image_pixels",
                     "max_batch", "max_batch_pixels"):
            if getattr(self, name) <= 0:
                raise DigitrecError(f"--{name.replace('_', '-')} must be positive, not {getattr(self, name)}.")
        if self.http not in HTTP_STACKS:
            raise DigitrecError(f"--http must be auto, h11 or httptools, not {self.http!r}.")

    def check_reachable(self) -> None:
        """The shared rate-limit store answers: checked once at start, in the parent (a clear exit 1 if not);
        a worker started later while Redis is down fails open instead of crash-looping."""
        if self.rate_limit and self.rate_limit_storage:
            from digitrec.web.protection import ping_storage

            ping_storage(self.rate_limit_storage)

    def retention(self) -> Retention:
        """The --retain policy; each worker prunes with it (the passes are idempotent: after the first, the
        others of a minute find nothing to delete)."""
        from digitrec.feedback.retention import parse_retain

        return parse_retain(self.retain)

    def open_store(self) -> FeedbackStore | None:
        from digitrec.feedback.store import open_store

        return None if (self.db or "").lower() in NO_DB else open_store(self.db)


def _check_forwarded_allow_ips(value: str) -> None:
    """uvicorn takes a malformed entry silently as a literal that never matches: refuse it here instead."""
    import ipaddress

    for item in (v.strip() for v in value.split(",")):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise DigitrecError(f"--forwarded-allow-ips: {item!r} is not an IP address or network "
                                "(e.g. 10.0.0.0/8,127.0.0.1).") from exc

"""Rate limiting, security headers and CORS (the admin token: routes/admin.py).

- Rate limit (`--rate-limit 20/second`, off by default): per client IP, a moving window from the `limits`
  library. Its counts live in memory, so per worker process (N workers allow up to N times the rate), unless
  `--rate-limit-storage redis://HOST:PORT` puts them in Redis, shared by every worker and replica. Redis lost
  mid-run: the limiter fails open (requests pass, one warning per outage, counted in /metrics), since a
  limiter that turns every answer into a 5xx would do what it exists to prevent. The client IP is uvicorn's:
  X-Forwarded-For is believed only from --forwarded-allow-ips. Over the limit: 429 with `Retry-After` and JSON
  detail. Probes and metrics are never limited: a busy client must not get a pod restarted or blind monitoring.
- Security headers on every answer; the strict CSP (no inline script or style) everywhere except the
  Swagger/ReDoc pages, which FastAPI builds with inline script and a CDN.
"""

from __future__ import annotations

import logging
import math
import time
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.errors import DigitrecError
from digitrec.web.observability import RATE_LIMITED
from digitrec.web.responses import send_json_error

log = logging.getLogger("digitrec.web")
STORAGE_SCHEMES = ("memory", "redis", "rediss")
STORAGE_TIMEOUT_S = 0.5  # a Redis that hangs may delay an answer by this much, never hold it
STORAGE_ERRORS = Counter("digitrec_rate_limit_storage_errors_total",
                         "Requests let through unlimited because the rate-limit storage failed")
UNLIMITED = ("/healthz", "/readyz", "/metrics")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def parse_rate(text: str):
    """'20/second', '100/minute', '5 per second' -> a `limits` item; a clear error otherwise."""
    from limits import parse

    try:
        return parse(text)
    except ValueError as exc:
        raise DigitrecError(f"--rate-limit {text!r} is not a rate; write it like 20/second or 600/minute.") from exc


def check_storage_uri(uri: str) -> None:
    """A clear error for a storage the limiter cannot use: wrong scheme, or Redis without its client."""
    scheme = urlsplit(uri).scheme
    if scheme not in STORAGE_SCHEMES:
        raise DigitrecError(f"--rate-limit-storage {uri!r}: use memory:// or redis://HOST:PORT (rediss:// for TLS).")
    if scheme != "memory":
        try:
            import redis  # noqa: F401
        except ImportError as exc:
            raise DigitrecError("--rate-limit-storage redis://... needs the Redis client: "
                                "pip install 'digitrec[redis]'.") from exc


def ping_storage(uri: str, timeout: float = 5.0) -> None:
    """Fail at start, with the reason, when the shared store does not answer (serve() calls it once)."""
    check_storage_uri(uri)
    if urlsplit(uri).scheme == "memory":
        return
    import redis

    try:
        client = redis.Redis.from_url(uri, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise DigitrecError(f"--rate-limit-storage {_redact(uri)}: Redis does not answer ({exc}).") from exc


def _redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def _storage(uri: str | None):
    """The limiter's async storage: in memory (one process) or Redis through redis-py's asyncio client."""
    from limits.aio.storage import MemoryStorage, RedisStorage

    if not uri or urlsplit(uri).scheme == "memory":
        return MemoryStorage()
    check_storage_uri(uri)
    return RedisStorage(f"async+{uri}", implementation="redispy", wrap_exceptions=True, key_prefix="digitrec",
                        socket_timeout=STORAGE_TIMEOUT_S, socket_connect_timeout=STORAGE_TIMEOUT_S)


class RateLimitMiddleware:
    """429 once a client IP goes over `rate` (a string such as '20/second'); counts in `storage` (a URI).

    Built lazily by Starlette inside the worker's event loop, so the Redis client belongs to that loop."""

    def __init__(self, app: ASGIApp, rate: str, storage: str | None = None) -> None:
        from limits.aio.strategies import MovingWindowRateLimiter

        self.app = app
        self.item = parse_rate(rate)
        self.storage_uri = storage
        self.limiter = MovingWindowRateLimiter(_storage(storage))
        self.storage_down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        retry = await self._over_limit(key)
        if retry is None:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.inc()
        detail = f"too many requests: the limit is {self.item}; retry in {retry} s."
        await send_json_error(send, 429, detail, [(b"retry-after", str(retry).encode())])

    async def _over_limit(self, key: str) -> int | None:
        """Seconds to wait when `key` is over the limit; None to let the request through (fail open)."""
        from limits.errors import StorageError

        try:
            if await self.limiter.hit(self.item, key):
                self._storage_ok()
                return None
            reset = (await self.limiter.get_window_stats(self.item, key)).reset_time
        except StorageError as exc:
            self._storage_failed(exc.storage_error)
            return None
        self._storage_ok()
        return max(1, math.ceil(reset - time.time()))

    def _storage_failed(self, exc: Exception) -> None:
        STORAGE_ERRORS.inc()
        if not self.storage_down:
            self.storage_down = True
            log.warning("rate limit storage %s failed (%s: %s): requests pass unlimited until it answers again",
                        _redact(self.storage_uri or "memory://"), type(exc).__name__, exc)

    def _storage_ok(self) -> None:
        if self.storage_down:
            self.storage_down = False
            log.warning("rate limit storage %s answers again: limiting resumed", _redact(self.storage_uri or ""))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in ("/docs", "/redoc", "/docs/oauth2-redirect")
        extra = [*_COMMON, (b"content-security-policy", (DOCS_CSP if docs else CSP).encode())]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def add_cors(app, origins: tuple[str, ...]) -> None:
    """CORS only for the origins given with --cors-origin; without any, browsers keep the same-origin rule."""
    if not origins:
        return
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-request-id", "x-client-id"],
        expose_headers=["x-request-id", "x-model", "retry-after"],
        max_age=600,
    )

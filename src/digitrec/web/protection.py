"""Rate limiting, security headers, CORS and the admin token.

- Rate limit (`--rate-limit 20/second`, off by default): per client IP, a moving window from the `limits`
  library, in memory, so per worker process (N workers allow up to N times the rate; use one worker, or a
  shared limiter at the proxy, where that matters). Over the limit: 429 with `Retry-After` and JSON detail.
  Probes and metrics are never limited: a busy client must not get a pod restarted or blind monitoring.
- Security headers on every answer; the strict CSP (no inline script or style) everywhere except the
  Swagger/ReDoc pages, which FastAPI builds with inline script and a CDN.
- Admin: a bearer token from $DIGITREC_ADMIN_TOKEN; unset means the admin API does not exist (404).
"""

from __future__ import annotations

import hmac
import math
import os
import time

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.errors import DigitrecError
from digitrec.web.app import send_json_error
from digitrec.web.observability import RATE_LIMITED

ADMIN_TOKEN_ENV = "DIGITREC_ADMIN_TOKEN"
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


class RateLimitMiddleware:
    """429 once a client IP goes over `rate` (a string such as '20/second')."""

    def __init__(self, app: ASGIApp, rate: str) -> None:
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.app = app
        self.item = parse_rate(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        if self.limiter.hit(self.item, key):
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.inc()
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        detail = f"too many requests: the limit is {self.item}; retry in {retry} s."
        await send_json_error(send, 429, detail, [(b"retry-after", str(retry).encode())])


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


def require_admin(request: Request) -> None:
    """FastAPI dependency: 404 when admin is off, 401 without the right `Authorization: Bearer` token."""
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    if not token:
        raise HTTPException(404, f"the admin API is disabled; set {ADMIN_TOKEN_ENV} on the server to enable it.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "send the admin token as 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})


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

"""JSON error answers sent straight from ASGI middleware (body limit, rate limit), before a route runs."""

from __future__ import annotations

import json

from starlette.types import Send


async def send_json_error(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    """A `{"detail": ...}` answer sent straight from ASGI middleware, before the app sees the request."""
    body = json.dumps({"detail": detail}).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + headers})
    await send({"type": "http.response.body", "body": body})

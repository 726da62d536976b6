"""The body limit and the error handlers: how a request too big, malformed or refused becomes one JSON
sentence `{"detail": ...}` with a 4xx status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.errors import DigitrecError
from digitrec.feedback.store import StoreUnavailable, UnknownPrediction
from digitrec.web.responses import send_json_error

log = logging.getLogger("digitrec.web")


class BodyLimitMiddleware:
    """Reject bodies over `max_bytes` with 413 without reading them: by Content-Length when the client sends
    one, and by counting streamed bytes otherwise (chunked uploads, or a Content-Length that lies)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_json(send, 400, "Content-Length is not a number.")
                    return
                if length > limit:
                    await _send_json(send, 413, _too_large(limit))
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read; FastAPI turns it into a 413 JSON answer.
                    raise StarletteHTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> str:
    size = f"{limit / 2**20:.3g} MiB" if limit >= 2**20 else f"{limit / 1024:.3g} KiB"
    return f"the request body is larger than the {size} limit; send a smaller image."


async def _send_json(send: Send, status: int, detail: str) -> None:
    # Connection: close, since we answer before the client has finished sending its body.
    await send_json_error(send, status, detail, [(b"connection", b"close")])


def _validation_detail(exc: RequestValidationError) -> str:
    """Pydantic's error list as one readable sentence: 'body.pixels: pixels must be 28 rows ...'."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(DigitrecError)
    async def _on_user_error(request: Request, exc: DigitrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def _on_store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        # The error's text names the database (host, port, user): for the log, never for an anonymous caller.
        log.warning("feedback store unavailable: %s", exc)
        return JSONResponse({"detail": "the feedback database is unavailable right now. Predictions still work; "
                                       "retry feedback later."}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(UnknownPrediction)
    async def _on_unknown(request: Request, exc: UnknownPrediction) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

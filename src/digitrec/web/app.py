"""The web app: `create_app()` builds it, its lifespan loads the model once, `serve()` runs uvicorn."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.errors import DigitrecError
from digitrec.web.production import ServeOptions
from digitrec.web.responses import send_json_error
from digitrec.web.settings import STATIC_DIR, Settings

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


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(DigitrecError)
    async def _on_user_error(request: Request, exc: DigitrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


def create_app(
    model_path: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """The app factory; the lifespan loads the model once (None -> $DIGITREC_MODEL or the bundled one).
    `options` (feedback store, rate limit, CORS, A/B; default from DIGITREC_* variables): see production.py."""
    from digitrec.web import production
    from digitrec.web.routes import api_router, page_router

    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from digitrec.inference.predictor import load_model

        _return_big_buffers_to_the_os()
        app.state.predictor = load_model(model_path)
        log.info("model %s loaded", app.state.predictor)
        production.start(app)
        yield
        production.stop(app)
        app.state.predictor = None

    app = FastAPI(
        title="digitrec",
        summary="Handwritten-digit recognition: draw a digit or send an image.",
        version=_package_version(),
        lifespan=lifespan,
        docs_url=None,  # served below from local Swagger UI files: FastAPI's default loads them from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.predictor = None
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(page_router)
    app.include_router(_insight_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_offline_docs(app)
    production.install(app, options or production.ServeOptions.from_env())
    return app


def _return_big_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold at 128 KB. By default it grows after each large block freed (up to 32 MB),
    so a photo's decoding buffers come from the heap afterwards and fragment it: after four clients sent
    large images for 15 s the process kept 306 MB; with the threshold fixed, 120 MB (benchmarks/hostile.py,
    run with MALLOC_MMAP_THRESHOLD_=131072, which does the same). Not glibc (musl, macOS): nothing to do."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _install_offline_docs(app: FastAPI) -> None:
    """OpenAPI docs at /docs that work offline: Swagger UI's files come from the swagger-ui-bundle wheel."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="digitrec API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _insight_router():
    """Numbers and explanations (web/insight.py), imported here as the other routers are: lazily."""
    from digitrec.web.insight import insight_router

    return insight_router


def _package_version() -> str:
    from digitrec import __version__

    return __version__


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | os.PathLike[str] | None = None,
    workers: int = 1,
    options: ServeOptions | None = None,
) -> None:
    """Run the app with uvicorn. Loads the model first so that a bad --model fails here, not in a worker;
    likewise the candidate model and the feedback database (unreachable at start: one clear error)."""
    import uvicorn

    from digitrec.inference.predictor import MODEL_ENV, Predictor, resolve_model_path

    options = options or ServeOptions.from_env()
    options.check()
    path = resolve_model_path(model)
    Predictor(path)  # verify (sha256, contract) once, in the parent, with a clear error
    if options.candidate:
        Predictor(resolve_model_path(options.candidate))
    store = options.open_store()
    if store is not None:
        store.close()
    options.check_reachable()
    run = uvicorn_options(host, port, options)
    if options.forwarded_allow_ips:
        run["forwarded_allow_ips"] = options.forwarded_allow_ips
    from digitrec.web.connections import HEADER_TIMEOUT_ENV

    os.environ[HEADER_TIMEOUT_ENV] = str(options.header_timeout)  # read by the protocol, in every worker
    if workers > 1:
        # Worker processes import the app by name, so the model path and the options travel through the
        # environment; metrics are summed over workers through prometheus-client's multiprocess folder.
        import tempfile

        os.environ[MODEL_ENV] = str(path)
        os.environ.update(options.to_env())
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="digitrec-metrics-"))
        uvicorn.run("digitrec.web.app:create_app", factory=True, workers=workers, **run)
    else:
        uvicorn.run(create_app(path, options=options), **run)


def uvicorn_options(host: str, port: int, options: ServeOptions | None = None) -> dict[str, Any]:
    """The keyword arguments `serve()` gives `uvicorn.run`, for one worker or several."""
    from digitrec.web.connections import GuardedH11Protocol, protocol_for

    options = options or ServeOptions()
    # uvicorn's access log is off: ObservabilityMiddleware writes JSON lines with request ids instead.
    # Keep-alive longer than a load balancer's idle timeout (60 s on the common ones): otherwise the server
    # may close a connection just as the client reuses it, and that request fails with a reset.
    # http=: a deadline for each request's headers and TCP_NODELAY on every connection (connections.py).
    # limit_concurrency: past this many connections + requests uvicorn answers 503 at once, before the app;
    # h11_max_incomplete_event_size: a header block over 16 KiB is a 400 (h11; httptools caps it itself).
    # loop: uvloop goes with httptools (uvicorn[standard]); h11 runs on asyncio's own loop.
    http = protocol_for(options.http)
    return {
        "host": host, "port": port, "access_log": False, "proxy_headers": True, "timeout_keep_alive": 75,
        "http": http, "loop": "asyncio" if http is GuardedH11Protocol else "auto",
        "limit_concurrency": 512, "h11_max_incomplete_event_size": 16 * 1024,
    }

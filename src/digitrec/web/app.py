"""The app factory: `create_app()` builds the app from the settings; its lifespan loads the models and opens
the feedback store once per worker. `digitrec serve` runs it through web/server.py."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from digitrec.web.deps import Models
from digitrec.web.settings import STATIC_DIR, ServeSettings

log = logging.getLogger("digitrec.web")


def create_app(model_path: str | os.PathLike[str] | None = None, settings: ServeSettings | None = None) -> FastAPI:
    """The app; None -> settings from DIGITREC_* variables, the model from `model_path`, else the settings'
    (else $DIGITREC_MODEL or the bundled one). Middleware added last is outermost: observability sees all."""
    from digitrec.web.admission import AdmissionMiddleware
    from digitrec.web.connections import BodyTimeoutMiddleware
    from digitrec.web.middleware import BodyLimitMiddleware, install_error_handlers
    from digitrec.web.observability import ObservabilityMiddleware, configure_access_log, metrics_endpoint
    from digitrec.web.protection import RateLimitMiddleware, SecurityHeadersMiddleware, add_cors
    from digitrec.web.routes import ROUTERS

    settings = settings or ServeSettings.from_env()
    settings.check()
    app = FastAPI(
        title="digitrec",
        summary="Handwritten-digit recognition: draw a digit or send an image.",
        version=_package_version(),
        lifespan=_lifespan(model_path if model_path is not None else settings.model),
        docs_url=None,  # served below from local Swagger UI files: FastAPI's default loads them from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.models = Models(candidate_share=settings.candidate_share)
    app.state.store = None
    app.state.pruner = None
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)  # an APIRoute: labelled by route
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_offline_docs(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.body_timeout)
    app.add_middleware(AdmissionMiddleware, limit=settings.max_heavy, wait=settings.heavy_wait)
    if settings.rate_limit:
        app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit, storage=settings.rate_limit_storage)
    add_cors(app, settings.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    configure_access_log(settings.access_log)
    return app


def _lifespan(model_path: str | os.PathLike[str] | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from digitrec.inference.predictor import load_model
        from digitrec.web.model_paths import model_dirs
        from digitrec.web.observability import set_model_info

        settings: ServeSettings = app.state.settings
        models: Models = app.state.models
        _return_big_buffers_to_the_os()
        models.primary = load_model(model_path)
        log.info("model %s loaded", models.primary)
        set_model_info("primary", models.primary)
        if settings.candidate:
            models.candidate = load_model(settings.candidate)
            set_model_info("candidate", models.candidate)
        models.folders = model_dirs(settings.model_dirs, models.primary.path)
        app.state.store = store = settings.open_store()
        log.info("feedback store: %s", store.kind if store else "off")
        retention = settings.retention()
        if store is not None and retention.active:
            from digitrec.feedback.retention import Pruner

            app.state.pruner = Pruner(store, retention)
            app.state.pruner.start()
        try:
            yield
        finally:
            if app.state.pruner is not None:
                app.state.pruner.stop()
            if store is not None:
                store.close()
                app.state.store = None
            models.primary = models.candidate = None

    return lifespan


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


def _package_version() -> str:
    from digitrec import __version__

    return __version__

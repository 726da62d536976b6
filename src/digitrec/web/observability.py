"""Prometheus metrics (`GET /metrics`) and JSON access logs with request ids.

One pure-ASGI middleware does both (a BaseHTTPMiddleware would cost a task switch per request). Request ids:
a client's `X-Request-ID` is kept when it looks sane (else we make one) and is echoed in the response and the
log line. Logs carry method, path, route, status, time and sizes: never a body, so never image data.

Several uvicorn workers: each process counts on its own, so `serve()` points PROMETHEUS_MULTIPROC_DIR at a
fresh folder and /metrics then sums every worker (prometheus-client's multiprocess mode). Feedback figures
come from the database's running counts (a few rows: feedback/schema.py), so they agree across workers; a
scrape runs in the thread pool, so a slow database never holds the event loop.

Label values are bounded whatever clients send: the method from a fixed set, the route from the app's own
route templates, anything else `other`. (A made-up method name as a label would grow /metrics, and the
multiprocess folder, by a series per name.)
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("digitrec.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"

REQUESTS = Counter("digitrec_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"])
LATENCY = Histogram(
    "digitrec_http_request_duration_seconds",
    "Time from request start to the last body byte, by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter("digitrec_predictions_total", "Predictions by model and digit ('none' = no digit)",
                      ["model", "digit"])
NO_DIGIT = Counter("digitrec_no_digit_total", "Blank images answered with digit null", ["model"])
CONFIDENCE = Histogram(
    "digitrec_prediction_confidence",
    "Probability of the predicted digit (blank images excluded)",
    ["model"],
    buckets=(0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0),
)
MODEL_INFO = Gauge("digitrec_model_info", "The models loaded (1 per role)", ["role", "name", "version", "sha256"],
                   multiprocess_mode="max")
STORE_ERRORS = Counter("digitrec_feedback_store_errors_total", "Failed database writes and reads", ["op"])
RATE_LIMITED = Counter("digitrec_rate_limited_total", "Requests answered 429")
ADMISSION_REJECTED = Counter("digitrec_admission_rejected_total",
                             "Heavy requests answered 503 because the worker had no free slot")


def observe_predictions(model: str, digits: list[int | None], confidences: list[float]) -> None:
    for digit, conf in zip(digits, confidences, strict=True):
        PREDICTIONS.labels(model, "none" if digit is None else str(digit)).inc()
        if digit is None:
            NO_DIGIT.labels(model).inc()
        else:
            CONFIDENCE.labels(model).observe(conf)


def set_model_info(role: str, predictor: Any) -> None:
    MODEL_INFO.labels(role, predictor.name, predictor.version, predictor.sha256[:12]).set(1)


class StoreCollector:
    """Feedback figures read from the store at scrape time (the same numbers as /api/stats)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self):
        store = self.app.state.store
        if store is None:
            return
        try:
            stats = store.stats()
        except Exception:  # the database being down must not break /metrics
            STORE_ERRORS.labels("stats").inc()
            return
        stored = GaugeMetricFamily("digitrec_stored_predictions", "Predictions in the feedback store", labels=["model"])
        fed = GaugeMetricFamily("digitrec_feedback", "Predictions with a user-given label", labels=["model"])
        acc = GaugeMetricFamily("digitrec_feedback_accuracy", "Share of feedback that agreed with the model",
                                labels=["model"])
        for model, s in stats["by_model"].items():
            stored.add_metric([model], s["predictions"])
            fed.add_metric([model], s["feedback"])
            if s["feedback_accuracy"] is not None:
                acc.add_metric([model], s["feedback_accuracy"])
        yield from (stored, fed, acc)


def metrics_response(app: Any) -> Response:
    """The process's metrics (or every worker's, in multiprocess mode) plus the store's figures."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    body = generate_latest(registry) + generate_latest(_store_registry(app))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _store_registry(app: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    return registry


async def metrics_endpoint(request: Request) -> Response:
    # In the thread pool: the multiprocess files and the database are read here, never on the event loop.
    return await run_in_threadpool(metrics_response, request.app)


# -- logging ---------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        return json.dumps(entry, separators=(",", ":"))


def configure_access_log(enabled: bool) -> None:
    """JSON lines on stderr for `digitrec.access`, independent of uvicorn's own logging config."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        access_log.addHandler(handler)
        access_log.propagate = False
    access_log.setLevel(logging.INFO if enabled else logging.WARNING)


class ObservabilityMiddleware:
    """Request id in and out, one JSON access-log line, and the HTTP metrics, for every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status, sent, model, done = 500, 0, "", 0.0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent, model, done
            if message["type"] == "http.response.start":
                status = message["status"]
                out = list(message.get("headers", []))
                out.append((b"x-request-id", request_id.encode()))
                model = str(scope["state"].get("model") or "")  # set by the prediction hook
                if model:
                    out.append((b"x-model", model.encode("latin-1", "replace")))
                message = {**message, "headers": out}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done = time.perf_counter()  # the last byte: not the work a route leaves for after it

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = (done or time.perf_counter()) - start
            route, method = _route_of(scope), _method_of(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                fields = {
                    "request_id": request_id,
                    "method": scope["method"][:16],
                    "path": scope["path"][:256],  # never the query string or the body
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "bytes_in": int(headers.get(b"content-length", b"0") or 0)
                    if headers.get(b"content-length", b"").isdigit() else None,
                    "bytes_out": sent,
                    "client": client[0] if client else None,
                }
                if model:
                    fields["model"] = model
                access_log.info("request", extra={"fields": fields})


def _route_of(scope: Scope) -> str:
    """The route's template (/api/predict, /static), never the raw path; `other` for a path no route
    matched (a 404): bounded metric label values."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return path if isinstance(path, str) else OTHER


def _method_of(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else OTHER

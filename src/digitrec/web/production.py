"""Production options (feedback store, rate limit, CORS, A/B, access log) and their wiring into the app.

`ServeOptions` travels to uvicorn worker processes through DIGITREC_* environment variables, as the model
path does, so `--workers 4` serves exactly what `--workers 1` does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from digitrec.errors import DigitrecError
from digitrec.feedback.store import DB_ENV, StoreUnavailable, UnknownPrediction, open_store

if TYPE_CHECKING:
    from digitrec.feedback.retention import Retention

log = logging.getLogger("digitrec.web")
NO_DB = ("off", "none")
_ENV = {
    "db": DB_ENV,
    "rate_limit": "DIGITREC_RATE_LIMIT",
    "rate_limit_storage": "DIGITREC_RATE_LIMIT_STORAGE",
    "cors_origins": "DIGITREC_CORS_ORIGINS",
    "candidate": "DIGITREC_CANDIDATE",
    "candidate_share": "DIGITREC_CANDIDATE_SHARE",
    "access_log": "DIGITREC_ACCESS_LOG",
}
# Hardening (web/admission.py, web/connections.py, feedback_retention.py): see _hardening_from_env.
_HARDENING_ENV = {
    "retain": "DIGITREC_RETAIN",
    "max_heavy": "DIGITREC_MAX_HEAVY",
    "heavy_wait": "DIGITREC_HEAVY_WAIT",
    "header_timeout": "DIGITREC_HEADER_TIMEOUT",
    "body_timeout": "DIGITREC_BODY_TIMEOUT",
    "http": "DIGITREC_HTTP",
}


@dataclass(frozen=True)
class ServeOptions:
    db: str | None = None  # None: $DIGITREC_DB or SQLite under the data dir; "off": no store
    rate_limit: str | None = None  # e.g. "20/second"; None: no limit
    cors_origins: tuple[str, ...] = ()
    candidate: str | None = None  # A/B: a second model...
    candidate_share: float = 0.1  # ...answering this share of clients
    access_log: bool = True
    rate_limit_storage: str | None = None  # redis://HOST:PORT: one count for every worker and replica
    # uvicorn's setting (the parent gives it to uvicorn, which applies it in every worker; not in the env):
    # X-Forwarded-For is believed only from these addresses/networks. None: $FORWARDED_ALLOW_IPS or 127.0.0.1.
    forwarded_allow_ips: str | None = None
    retain: str | None = None  # '30d' or a row count; None: keep every prediction
    max_heavy: int = 8  # heavy requests in flight per worker (web/admission.py)...
    heavy_wait: float = 1.0  # ...and how long one beyond waits for a slot before its 503
    header_timeout: float = 10.0  # seconds for a request's headers (web/connections.py)...
    body_timeout: float = 30.0  # ...and for its whole body
    http: str = "auto"  # uvicorn's HTTP parser: auto (httptools when installed), h11 or httptools

    @classmethod
    def from_env(cls) -> ServeOptions:
        env = {k: os.environ.get(v) for k, v in _ENV.items()}
        try:
            share = float(env["candidate_share"]) if env["candidate_share"] else cls.candidate_share
        except ValueError as exc:
            raise DigitrecError("DIGITREC_CANDIDATE_SHARE must be a number between 0 and 1.") from exc
        return cls(
            db=env["db"] or None,
            rate_limit=env["rate_limit"] or None,
            cors_origins=tuple(o for o in (env["cors_origins"] or "").split(",") if o),
            candidate=env["candidate"] or None,
            candidate_share=share,
            access_log=(env["access_log"] or "1").lower() not in ("0", "false", "no", "off"),
            rate_limit_storage=env["rate_limit_storage"] or None,
            **_hardening_from_env(),
        )

    def to_env(self) -> dict[str, str]:
        values = {
            "db": self.db or "",
            "rate_limit": self.rate_limit or "",
            "cors_origins": ",".join(self.cors_origins),
            "candidate": self.candidate or "",
            "candidate_share": str(self.candidate_share),
            "access_log": "1" if self.access_log else "0",
            "rate_limit_storage": self.rate_limit_storage or "",
        }
        hardening = {_HARDENING_ENV[k]: str(getattr(self, k) or "") for k in _HARDENING_ENV}
        return {**{_ENV[k]: v for k, v in values.items()}, **hardening}

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
        for name in ("max_heavy", "header_timeout", "body_timeout"):
            if getattr(self, name) <= 0:
                raise DigitrecError(f"--{name.replace('_', '-')} must be positive, not {getattr(self, name)}.")
        from digitrec.web.connections import protocol_for

        protocol_for(self.http)

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

    def open_store(self) -> Any:
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


def _hardening_from_env() -> dict[str, Any]:
    types = {"max_heavy": int, "heavy_wait": float, "header_timeout": float, "body_timeout": float}
    values: dict[str, Any] = {}
    for name, var in _HARDENING_ENV.items():
        raw = os.environ.get(var)
        if not raw:
            continue
        try:
            values[name] = types[name](raw) if name in types else raw
        except ValueError as exc:
            raise DigitrecError(f"{var} must be a number, not {raw!r}.") from exc
    return values


def install(app: FastAPI, options: ServeOptions) -> None:
    """Routes, hooks, error handlers and middleware (added last = outermost: observability sees all)."""
    from digitrec.web.admission import AdmissionMiddleware
    from digitrec.web.connections import BodyTimeoutMiddleware
    from digitrec.web.feedback import choose_predictor, record_predictions, router
    from digitrec.web.observability import ObservabilityMiddleware, configure_access_log, metrics_endpoint
    from digitrec.web.protection import RateLimitMiddleware, SecurityHeadersMiddleware, add_cors

    options.check()
    app.state.options = options
    app.state.store = None
    app.state.candidate = None
    app.state.candidate_share = options.candidate_share
    app.state.choose_predictor = choose_predictor
    app.state.prediction_hooks = [record_predictions]
    app.include_router(router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)  # an APIRoute: labelled by route

    @app.exception_handler(StoreUnavailable)
    async def _on_store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        # The error's text names the database (host, port, user): for the log, never for an anonymous caller.
        log.warning("feedback store unavailable: %s", exc)
        return JSONResponse({"detail": "the feedback database is unavailable right now. Predictions still work; "
                                       "retry feedback later."}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(UnknownPrediction)
    async def _on_unknown(request: Request, exc: UnknownPrediction) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    app.add_middleware(BodyTimeoutMiddleware, timeout=options.body_timeout)
    app.add_middleware(AdmissionMiddleware, limit=options.max_heavy, wait=options.heavy_wait)
    if options.rate_limit:
        app.add_middleware(RateLimitMiddleware, rate=options.rate_limit, storage=options.rate_limit_storage)
    add_cors(app, options.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    configure_access_log(options.access_log)


def start(app: FastAPI) -> None:
    """Lifespan start, after the primary model is loaded: the store and the candidate model."""
    from digitrec.inference.predictor import load_model
    from digitrec.web.observability import set_model_info

    options: ServeOptions = app.state.options
    set_model_info("primary", app.state.predictor)
    if options.candidate:
        app.state.candidate = load_model(options.candidate)
        set_model_info("candidate", app.state.candidate)
    app.state.store = options.open_store()
    log.info("feedback store: %s", app.state.store.kind if app.state.store else "off")
    from digitrec.web.model_paths import model_dirs

    app.state.model_dirs = model_dirs(app.state.predictor.path)
    app.state.pruner = None
    retention = options.retention()
    if app.state.store is not None and retention.active:
        from digitrec.feedback.retention import Pruner

        app.state.pruner = Pruner(app.state.store, retention)
        app.state.pruner.start()


def stop(app: FastAPI) -> None:
    pruner = getattr(app.state, "pruner", None)
    if pruner is not None:
        pruner.stop()
    store = getattr(app.state, "store", None)
    if store is not None:
        store.close()
        app.state.store = None

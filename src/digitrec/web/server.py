"""`digitrec serve`: check everything once in the parent, then run the app with uvicorn, in one process or
several (which import the app by name and rebuild the settings from the environment)."""

from __future__ import annotations

import os
from typing import Any

from digitrec.web.settings import ServeSettings


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, settings: ServeSettings | None = None) -> None:
    """Run the app with uvicorn. Loads the model first so that a bad --model fails here, not in a worker;
    likewise the candidate model and the feedback database (unreachable at start: one clear error)."""
    import uvicorn

    from digitrec.inference.predictor import Predictor, resolve_model_path
    from digitrec.web.app import create_app
    from digitrec.web.connections import protocol_for

    settings = settings or ServeSettings.from_env()
    settings.check()
    protocol_for(settings.http)  # httptools asked for and missing: one sentence, here
    path = resolve_model_path(settings.model)
    Predictor(path)  # verify (sha256, contract) once, in the parent, with a clear error
    if settings.candidate:
        Predictor(resolve_model_path(settings.candidate))
    store = settings.open_store()
    if store is not None:
        store.close()
    settings.check_reachable()
    settings = settings.model_copy(update={"model": str(path)})
    run = uvicorn_options(host, port, settings)
    if settings.forwarded_allow_ips:
        run["forwarded_allow_ips"] = settings.forwarded_allow_ips
    # Every process reads the settings from here: the header deadline is read by the HTTP protocol, which
    # uvicorn makes (connections.py), and worker processes build the app from them.
    os.environ.update(settings.to_env())
    if workers > 1:
        # Metrics are summed over workers through prometheus-client's multiprocess folder.
        import tempfile

        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="digitrec-metrics-"))
        uvicorn.run("digitrec.web.app:create_app", factory=True, workers=workers, **run)
    else:
        uvicorn.run(create_app(settings=settings), **run)


def uvicorn_options(host: str, port: int, settings: ServeSettings | None = None) -> dict[str, Any]:
    """The keyword arguments `serve()` gives `uvicorn.run`, for one worker or several."""
    from digitrec.web.connections import GuardedH11Protocol, protocol_for

    settings = settings or ServeSettings()
    # uvicorn's access log is off: ObservabilityMiddleware writes JSON lines with request ids instead.
    # Keep-alive longer than a load balancer's idle timeout (60 s on the common ones): otherwise the server
    # may close a connection just as the client reuses it, and that request fails with a reset.
    # http=: a deadline for each request's headers and TCP_NODELAY on every connection (connections.py).
    # limit_concurrency: past this many connections + requests uvicorn answers 503 at once, before the app;
    # h11_max_incomplete_event_size: a header block over 16 KiB is a 400 (h11; httptools caps it itself).
    # loop: uvloop goes with httptools (uvicorn[standard]); h11 runs on asyncio's own loop.
    http = protocol_for(settings.http)
    return {
        "host": host, "port": port, "access_log": False, "proxy_headers": True, "timeout_keep_alive": 75,
        "http": http, "loop": "asyncio" if http is GuardedH11Protocol else "auto",
        "limit_concurrency": 512, "h11_max_incomplete_event_size": 16 * 1024,
    }

"""`digitrec serve`: the drawing page and the REST API under uvicorn, with the production options."""

from __future__ import annotations

import typer

from digitrec.cli.typer_app import OptPath, app, fail
from digitrec.errors import DigitrecError


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, envvar="PORT", help="TCP port ($PORT, as Cloud Run and Heroku set it)."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    workers: int = typer.Option(1, min=1, envvar="WEB_CONCURRENCY",
                                help="Worker processes (each loads its own copy of the model)."),
    db: str | None = typer.Option(None, "--db", envvar="DIGITREC_DB",
                                  help="Feedback store: sqlite:///file.db, postgresql://..., or off "
                                       "(default: SQLite under $DIGITREC_DATA_DIR or ~/.local/share/digitrec)."),
    rate_limit: str | None = typer.Option(None, "--rate-limit", envvar="DIGITREC_RATE_LIMIT",
                                          help="Per-client limit, e.g. 20/second, or off (default: off)."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Allow this origin (repeatable; off; or "
                                                                    "DIGITREC_CORS_ORIGINS, comma-separated)."),
    candidate: OptPath = typer.Option(None, "--candidate", help="A/B: a second model for a share of clients."),
    candidate_share: float | None = typer.Option(None, "--candidate-share", min=0.0, max=1.0,
                                                 help="Share of clients (by a stable hash) the candidate answers "
                                                      "(default 0.1)."),
    access_log: bool | None = typer.Option(None, "--access-log/--no-access-log",
                                           help="JSON access log on stderr (default: on)."),
    rate_limit_storage: str | None = typer.Option(
        None, "--rate-limit-storage", envvar="DIGITREC_RATE_LIMIT_STORAGE",
        help="Where the rate limit counts: redis://HOST:PORT shares it across workers and replicas "
             "(default: memory, per worker)."),
    forwarded_allow_ips: str | None = typer.Option(
        None, "--forwarded-allow-ips", envvar="FORWARDED_ALLOW_IPS",
        help="Proxies whose X-Forwarded-For is believed, comma-separated IPs/networks (default 127.0.0.1)."),
    retain: str | None = typer.Option(None, "--retain", envvar="DIGITREC_RETAIN",
                                      help="Keep stored predictions this long (30d, 12h) or this many (100000); "
                                           "pruned in the background (default: forever)."),
    max_heavy: int = typer.Option(8, "--max-heavy", min=1, envvar="DIGITREC_MAX_HEAVY",
                                  help="Heavy requests (predict, batch, number, explain) in flight per worker; "
                                       "beyond, 503 + Retry-After."),
    heavy_wait: float = typer.Option(1.0, "--heavy-wait", min=0.0, envvar="DIGITREC_HEAVY_WAIT",
                                     help="Seconds a heavy request beyond --max-heavy waits for a slot."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, envvar="DIGITREC_HEADER_TIMEOUT",
                                         help="Seconds a client has to send a request's headers."),
    body_timeout: float = typer.Option(30.0, "--body-timeout", min=0.1, envvar="DIGITREC_BODY_TIMEOUT",
                                       help="Seconds a client has to send a request's body (then 408)."),
    http: str = typer.Option("auto", "--http", envvar="DIGITREC_HTTP",
                             help="HTTP parser: auto (httptools when installed), h11 or httptools."),
) -> None:
    """Serve the drawing page and the REST API (OpenAPI docs at /docs, metrics at /metrics)."""
    try:
        from digitrec.web.server import serve as run_server
        from digitrec.web.settings import ServeSettings
    except ImportError as exc:
        fail(f"serving needs the web extras ({exc.name} is missing): pip install 'digitrec[serve]'.")
    try:
        # The flags given (or read from their variable by typer) win; every other setting comes from its
        # DIGITREC_* variable, as in a worker process (ServeSettings), so flags and environment mean the same.
        given = dict(
            model=str(model) if model else None, db=db, rate_limit=rate_limit, cors_origins=tuple(cors_origin) or None,
            candidate=str(candidate) if candidate else None, candidate_share=candidate_share, access_log=access_log,
            rate_limit_storage=rate_limit_storage, forwarded_allow_ips=forwarded_allow_ips, retain=retain,
            max_heavy=max_heavy, heavy_wait=heavy_wait, header_timeout=header_timeout, body_timeout=body_timeout,
            http=http)
        settings = ServeSettings.from_env(**{k: v for k, v in given.items() if v is not None})
        run_server(host=host, port=port, workers=workers, settings=settings)
    except DigitrecError as exc:
        fail(str(exc))

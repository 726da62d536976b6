"""The `digitrec` command. Each handler parses, calls one library function, prints.

Heavy imports (torch, onnxruntime, fastapi) live inside the handlers so that `digitrec --help`
is instant and a serve-only install never touches the training half.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from digitrec.errors import DigitrecError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Handwritten-digit recognition: data, training, export, evaluation, prediction and serving.",
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero: what a user sees instead of a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except DigitrecError as exc:  # raised outside a handler's own try (e.g. in a callback)
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


OptPath = Optional[Path]


@app.command()
def predict(
    files: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, WebP, BMP, GIF), one digit each."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per file instead of text."),
) -> None:
    """Recognise the digit in each image: `file: 7 (99.8%)`, or `file: no digit` for a blank one."""
    import json

    from digitrec.predictor import load_model

    try:
        predictor = load_model(model)
    except DigitrecError as exc:
        fail(str(exc))
    failed = 0
    for path in files:
        try:
            p = predictor.predict_image(path)
        except DigitrecError as exc:  # unreadable, empty, truncated or too large: say so, go on
            err_console.print(f"{path}: error: {exc}", highlight=False, soft_wrap=True, markup=False)
            failed += 1
            continue
        if as_json:
            record = {"file": str(path), "digit": p.digit, "confidence": round(p.confidence, 6)}
            record["probabilities"] = [round(v, 6) for v in p.probabilities]
            typer.echo(json.dumps(record))
        elif p.digit is None:
            typer.echo(f"{path}: no digit")
        else:
            typer.echo(f"{path}: {p.digit} ({p.confidence:.1%})")
    if failed:
        fail(f"{failed} of {len(files)} file(s) could not be read.")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, help="TCP port."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads its own copy of the model)."),
) -> None:
    """Serve the drawing page and the REST API (OpenAPI docs at /docs)."""
    try:
        from digitrec.web.app import serve as run_server
    except ImportError as exc:
        fail(f"serving needs the web extras ({exc.name} is missing): pip install 'digitrec[serve]'.")
    try:
        run_server(host=host, port=port, model=model, workers=workers)
    except DigitrecError as exc:
        fail(str(exc))

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

"""The one Typer app of the `digitrec` command and its output conventions: results on stdout, and a user's
mistake as one line on stderr with a non-zero exit (`fail`), never a traceback. Every command module
of digitrec.cli registers on it; this module imports none of them, so none imports another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

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


OptPath = Optional[Path]  # noqa: UP045 - Typer reads Optional[...] on every Python we support

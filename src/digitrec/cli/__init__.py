"""The `digitrec` command: one module per command group (train, predict, serve, insight, feedback, doctor),
all registered on the one Typer app of `typer_app`. Each handler parses, calls one library function, prints.

Heavy imports (torch, onnxruntime, fastapi) live inside the handlers so that `digitrec --help`
is instant and a serve-only install never touches the training half. Nothing in the library imports `cli`.
"""

from __future__ import annotations

import sys

from digitrec.cli.typer_app import app, err_console
from digitrec.errors import DigitrecError


def main() -> None:
    try:
        app()
    except DigitrecError as exc:  # raised outside a handler's own try (e.g. in a callback)
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


# Each module registers its commands on `app`; importing them here is what makes them commands, in the order
# `digitrec --help` lists them.
# isort: off
from digitrec.cli import train, doctor, predict, serve, insight, feedback  # noqa: E402,F401
# isort: on

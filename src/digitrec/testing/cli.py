"""The `digitrec` command in a child process, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def digitrec(*args: object, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """`python -m digitrec ARGS` with its output captured as text; raises on a non-zero exit unless check=False.
    Other keywords go to subprocess.run (env, cwd, timeout)."""
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True,
                          check=check, **kw)

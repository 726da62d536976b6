"""`digitrec serve ...` (the real CLI, real uvicorn) on a free loopback port, with its stderr kept in a file.

The production tests start servers this way rather than through live_server.py because they pass CLI
options (--db, --rate-limit, --candidate...) and read the JSON access log the server writes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from live_server import free_port, stop, wait_ready

# A clear "1": a vertical bar, MNIST polarity (what the page's drawings become).
ONE = np.zeros((28, 28))
ONE[4:24, 13:15] = 1.0
ONE_PIXELS = ONE.tolist()


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def serve_cmd(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "digitrec", "serve", "--host", "127.0.0.1", "--port", str(port), *args]


@contextlib.contextmanager
def cli_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Yield a running `digitrec serve` with `args`; its stderr goes to tmp_path/server-<port>.log."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    with log.open("wb") as fh:
        proc = subprocess.Popen(serve_cmd(port, *args), env=child_env, stdout=fh, stderr=subprocess.STDOUT)
        server = Server(f"http://127.0.0.1:{port}", proc, log)
        try:
            wait_ready(server.url, proc)
            yield server
        finally:
            if proc.poll() is None:
                stop(proc)


def start_fails(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `digitrec serve args` expecting it to exit at start (bounded: a hang fails the test)."""
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(serve_cmd(free_port(), *args), env=child_env, capture_output=True, text=True, timeout=60)

"""Real servers in child processes on free loopback ports, for the end-to-end tests and the benchmarks.

- `live_server()`: `uvicorn --factory digitrec.web.app:create_app`. The child inherits the environment, so it
  serves the same model `load_model()` returns here.
- `cli_server()`: `digitrec serve ...` (the real CLI, real uvicorn) with its stderr kept in a file; the
  production tests start servers this way because they pass CLI options (--db, --rate-limit, --candidate...)
  and read the JSON access log the server writes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Poll /readyz until the model answers; fail early if the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} was not ready after {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def live_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL of `uvicorn --factory digitrec.web.app:create_app` on a free loopback port.

    (Not `uvicorn --fd`: uvicorn takes an inherited socket for a Unix one, so asyncio leaves Nagle's
    algorithm on and every answer waits ~40 ms for a delayed ACK.)
    """
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    for attempt in range(3):  # the port could be taken between free_port() and the bind: retry
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "digitrec.web.app:create_app"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
        proc = subprocess.Popen(cmd, env=child_env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc)
        except RuntimeError:
            if attempt == 2:
                raise
            continue
        except BaseException:
            stop(proc)
            raise
        try:
            yield url
        finally:
            stop(proc)
        return


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

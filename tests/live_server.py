"""A real uvicorn server in a child process on a free loopback port.

Used by the API and browser tests and by benchmarks/serve_latency.py. The child inherits the environment,
so it serves the same model `load_model()` returns here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


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

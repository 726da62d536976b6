"""A smaller run of benchmarks/serve_load.py (the README's 5,000-request figures come from the full one; both
use the client in digitrec.testing.load): 1,000 canvas PNGs at concurrency 32 against `digitrec serve` with its
production defaults, zero errors, and the server's memory flat once warm (a leak of even 10 KB per request would
show as +5 MiB here)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digitrec.testing.load import run_load
from digitrec.testing.servers import cli_server

pytestmark = pytest.mark.timeout(300)


def test_1000_predictions_at_concurrency_32_zero_errors_flat_memory(tmp_path: Path):
    with cli_server(tmp_path, "--db", f"sqlite:///{tmp_path / 'feedback.db'}") as s:
        run_load(s.url, 500, 32, s.proc.pid)  # warm-up: thread pool, allocator arenas, SQLite pages
        res = run_load(s.url, 1000, 32, s.proc.pid, samples=10)
        assert res.error_count == 0, res.errors
        assert len(res.latencies_ms) == 1000
        middle, end = res.rss_mb[len(res.rss_mb) // 2][1], res.rss_mb[-1][1]
        assert end - middle < 10, res.rss_mb  # MiB over the second 500 requests
        # Every request logged. A line is written just after its answer is sent, so the last one may land a
        # moment after the client has it: wait for it rather than race it.
        deadline = time.monotonic() + 5
        while len(lines := [x for x in s.log_lines() if '"route":"/api/predict"' in x]) < 1500:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(lines) >= 1500

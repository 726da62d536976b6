"""A load client for a running digitrec server: concurrent POST /api/predict of canvas PNGs drawn by
digitrec.training.synth, with latencies, errors and the server's resident memory as it goes.

benchmarks/serve_load.py sweeps clients x workers with it; tests/e2e/server/test_load.py runs it once, smaller.
"""

from __future__ import annotations

import asyncio
import base64
import io
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np


def tree_rss_mb(pid: int) -> float:
    """Resident memory of the server and its children (uvicorn workers), from /proc, in MiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def canvas_bodies(k: int = 50) -> list[bytes]:
    from digitrec.training.synth import render

    rng = np.random.default_rng(0)
    out = []
    for i in range(k):
        buf = io.BytesIO()
        render(i % 10, rng, "canvas").save(buf, "PNG")
        out.append(f'{{"image": "{base64.b64encode(buf.getvalue()).decode()}"}}'.encode())
    return out


@dataclass
class LoadResult:
    n: int
    concurrency: int
    seconds: float
    errors: dict[str, int]
    latencies_ms: list[float]
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (requests done, MiB)
    no_digit: int = 0  # answered 200 with digit null: the model's calibrated refusal, not a server error

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[int(q) - 1]


async def _load(url: str, n: int, concurrency: int, pid: int, samples: int) -> LoadResult:
    bodies = canvas_bodies()
    errors: dict[str, int] = {}
    no_digit = 0
    latencies: list[float] = []
    rss: list[tuple[int, float]] = [(0, tree_rss_mb(pid))]
    every = max(n // samples, 1)
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal next_index, no_digit
            while next_index < n:
                i = next_index
                next_index += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/api/predict", content=bodies[i % len(bodies)],
                                          headers={"content-type": "application/json"})
                    key = "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
                    no_digit += key == "ok" and r.json()["digit"] is None
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                latencies.append((time.perf_counter() - t) * 1000)
                if key != "ok":
                    errors[key] = errors.get(key, 0) + 1
                done = len(latencies)
                if done % every == 0:
                    rss.append((done, tree_rss_mb(pid)))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return LoadResult(n, concurrency, seconds, errors, latencies, rss, no_digit)


def run_load(url: str, n: int, concurrency: int, pid: int, samples: int = 10) -> LoadResult:
    return asyncio.run(_load(url, n, concurrency, pid, samples))

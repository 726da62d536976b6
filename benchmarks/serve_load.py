"""Load: N predictions at concurrency C against a real `digitrec serve` on loopback, production defaults
(feedback store on SQLite, JSON access log, metrics). Prints errors, throughput, latency percentiles and the
server's resident memory along the run ("flat memory": no growth after warm-up).

    python benchmarks/serve_load.py                     # 5,000 requests at concurrency 32
    python benchmarks/serve_load.py -n 1000 -c 32 --workers 2

Each request is a 280x280 canvas PNG drawn by digitrec.synth (the page's kind of input), so every request
runs the full path: decode, preprocess, inference, store insert.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


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
    from digitrec.synth import render

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

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[int(q) - 1]


async def _load(url: str, n: int, concurrency: int, pid: int, samples: int) -> LoadResult:
    bodies = canvas_bodies()
    errors: dict[str, int] = {}
    latencies: list[float] = []
    rss: list[tuple[int, float]] = [(0, tree_rss_mb(pid))]
    every = max(n // samples, 1)
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/api/predict", content=bodies[i % len(bodies)],
                                          headers={"content-type": "application/json"})
                    ok = r.status_code == 200 and r.json()["digit"] is not None
                    key = "ok" if ok else f"HTTP {r.status_code}"
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
    return LoadResult(n, concurrency, seconds, errors, latencies, rss)


def run_load(url: str, n: int, concurrency: int, pid: int, samples: int = 10) -> LoadResult:
    return asyncio.run(_load(url, n, concurrency, pid, samples))


def main() -> None:
    from live_server import free_port, stop, wait_ready

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="digitrec-load-"))
    port = free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--workers", str(args.workers),
           "--db", f"sqlite:///{tmp / 'feedback.db'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with (tmp / "server.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, proc)
            run_load(url, 300, args.concurrency, proc.pid)  # warm-up: thread pool, arenas, SQLite pages
            res = run_load(url, args.n, args.concurrency, proc.pid)
        finally:
            stop(proc)
    lines = sum(1 for _ in (tmp / "server.log").open())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{res.n} POST /api/predict (280x280 canvas PNG), concurrency {res.concurrency}, "
          f"{args.workers} worker(s), SQLite store + JSON access log on")
    print(f"errors: {res.error_count} {res.errors or ''}")
    print(f"throughput: {res.n / res.seconds:.0f} req/s ({res.seconds:.1f} s)")
    print(f"latency ms: p50 {res.pct(50):.1f}  p95 {res.pct(95):.1f}  p99 {res.pct(99):.1f}  "
          f"max {max(res.latencies_ms):.1f}")
    rss = res.rss_mb
    print("server RSS MiB after warm-up, by requests done: " + "  ".join(f"{d}:{m:.1f}" for d, m in rss))
    print(f"RSS growth over the run: {rss[-1][1] - rss[0][1]:+.1f} MiB; access-log lines: {lines}")


if __name__ == "__main__":
    main()

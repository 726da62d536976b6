"""Load: a real `digitrec serve` on loopback under concurrent clients, production defaults (feedback store on
SQLite, JSON access log, metrics). Sweeps clients x uvicorn workers and prints, per configuration, requests/s,
latency p50/p99, errors and the server's resident memory (whole process tree) before/after, then the req/s
ratio of N workers to 1 worker at each client count, measured in the same run.

    python benchmarks/serve_load.py                     # clients 1, 8, 32 x workers 1, cpu_count; 2,000 each
    python benchmarks/serve_load.py -n 300              # the same sweep, small
    python benchmarks/serve_load.py -n 5000 -c 32 --workers 1      # one configuration (the README's run)
    python benchmarks/serve_load.py -c 1 8 --workers 1 2 --json --plot load.png

One server per worker count, warmed up once, then reused for every client count. Each request is a 280x280
canvas PNG drawn by digitrec.training.synth (the page's kind of input), so every request runs the full path: decode,
preprocess, inference, store insert. The load client runs in this process and shares the CPUs with the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from digitrec.testing.load import LoadResult, run_load
from digitrec.testing.servers import free_port, stop, wait_ready


@contextlib.contextmanager
def serve(workers: int) -> Iterator[tuple[str, int]]:
    """`digitrec serve` as deployed, but on a throwaway SQLite store so the benchmark never fills a real one."""
    with tempfile.TemporaryDirectory(prefix="digitrec-load-") as tmp:
        port = free_port()
        cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--workers", str(workers),
               "--db", f"sqlite:///{Path(tmp) / 'feedback.db'}"]
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=log, stderr=log)
            try:
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(url, proc)
                except (RuntimeError, TimeoutError):
                    sys.stderr.write(log_path.read_text(errors="replace"))
                    raise
                yield url, proc.pid
            finally:
                stop(proc)


def sweep(workers: list[int], clients: list[int], n: int, warmup: int) -> list[tuple[int, LoadResult]]:
    """Every client count against one warm server per worker count: restarts would time start-up, not load."""
    results = []
    for w in workers:
        with serve(w) as (url, pid):
            if warmup:
                run_load(url, warmup, max(clients), pid)  # thread pools, allocator arenas, SQLite pages
            for c in clients:
                results.append((w, run_load(url, n, c, pid)))
                print(f"  done: {w} worker(s), {c} client(s)", file=sys.stderr)
    return results


def summary(workers: int, res: LoadResult) -> dict:
    return {"workers": workers, "clients": res.concurrency, "requests": res.n, "seconds": round(res.seconds, 2),
            "req_s": round(res.rps, 1), "p50_ms": round(res.pct(50), 1), "p99_ms": round(res.pct(99), 1),
            "errors": res.error_count, "error_kinds": res.errors, "no_digit": res.no_digit,
            "rss_before_mib": round(res.rss_mb[0][1], 1), "rss_after_mib": round(res.rss_mb[-1][1], 1)}


def speedups(rows: list[dict]) -> list[dict]:
    """req/s of each worker count over 1 worker at the same client count (empty without a 1-worker run)."""
    base = {r["clients"]: r["req_s"] for r in rows if r["workers"] == 1}
    return [{"workers": r["workers"], "clients": r["clients"], "ratio": round(r["req_s"] / base[r["clients"]], 2)}
            for r in rows if r["workers"] != 1 and r["clients"] in base]


def print_table(rows: list[dict], ratios: list[dict]) -> None:
    cols = [("workers", "workers"), ("clients", "clients"), ("requests", "requests"), ("req_s", "req/s"),
            ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors"), ("no_digit", "no digit"),
            ("rss_before_mib", "RSS before MiB"), ("rss_after_mib", "RSS after MiB")]
    print("| " + " | ".join(title for _, title in cols) + " |")
    print("|" + "|".join("-" * (len(title) + 1) + ":" for _, title in cols) + "|")
    for r in rows:
        print("| " + " | ".join(f"{r[key]:>{len(title)}}" for key, title in cols) + " |")
        if r["errors"]:
            print(f"|   errors: {r['error_kinds']}")
    for x in ratios:
        print(f"req/s {x['workers']} workers / 1 worker at {x['clients']} client(s): {x['ratio']:.2f}x")


def plot(path: str, results: list[tuple[int, LoadResult]]) -> None:
    """Latency CDF per configuration: p50/p99 hide whether the tail is a few stragglers or a second mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for w, res in results:
        lat = np.sort(res.latencies_ms)
        ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=f"{w} worker(s), {res.concurrency} client(s)")
    ax.set(xscale="log", xlabel="latency (ms, log)", ylabel="fraction of requests ≤ latency",
           title="POST /api/predict latency, digitrec serve on loopback")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="requests per configuration")
    ap.add_argument("-c", "--clients", "--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--workers", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    ap.add_argument("--warmup", type=int, default=300, help="requests per server before timing")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    ap.add_argument("--plot", metavar="PATH", help="write a latency CDF per configuration (PNG)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    command = shlex.join(["python", *sys.argv])
    results = sweep(args.workers, args.clients, args.n, args.warmup)
    rows = [summary(w, res) for w, res in results]
    ratios = speedups(rows)
    if args.plot:
        plot(args.plot, results)
    if args.json:
        print(json.dumps({"machine": machine, "command": command, "results": rows, "speedup": ratios}, indent=2))
        return
    print(f"machine: {machine}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"command: {command}")
    print("POST /api/predict (280x280 canvas PNG), SQLite store + JSON access log on; RSS = server process tree\n")
    print_table(rows, ratios)


if __name__ == "__main__":
    main()

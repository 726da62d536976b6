"""Latency of POST /api/predict with a 280x280 canvas PNG, against GET /healthz from the same client.

Starts real `digitrec serve` servers on loopback (one worker each, the default model, the feedback store and
the access log on, as in production), one per HTTP stack in --stacks (h11 on asyncio; httptools on uvloop, i.e.
uvicorn[standard]), sends interleaved requests from one keep-alive httpx client per server, so every stack
sees the same machine load, and prints medians and ratios. Goals: predict <= 3x healthz (issue 3) and
<= 2x its own preprocessing + inference measured in this process (issue 17).

    OMP_NUM_THREADS=1 python benchmarks/serve_latency.py [--n 400] [--model runs/x] [--stacks h11,httptools]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np

from digitrec.training.synth import render


def start_server(model: str | None, db: str, stack: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The feedback store stays on (each prediction is recorded, as in production) but in a throwaway
    # SQLite file: the default one is the user's own store, which a benchmark must not fill with its images.
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--db", db, "--http", stack]
    proc = subprocess.Popen(cmd + (["--model", model] if model else []), stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        if proc.poll() is not None:
            raise SystemExit(f"the {stack} server did not start")
        time.sleep(0.1)
    raise SystemExit("the server was not ready after 60 s")


def available(stack: str) -> bool:
    needs = {"h11": "h11", "httptools": "httptools"}[stack]
    return importlib.util.find_spec(needs) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="timed requests per endpoint")
    ap.add_argument("--model", default=None, help="run folder or .onnx (default: the bundled model)")
    ap.add_argument("--stacks", default="h11,httptools",
                    help="comma-separated HTTP stacks to compare: h11 (asyncio), httptools (uvloop if installed)")
    args = ap.parse_args()
    stacks = [s for s in args.stacks.split(",") if s]
    for stack in [s for s in stacks if not available(s)]:
        print(f"(skipping {stack}: not installed; pip install 'uvicorn[standard]')")
        stacks.remove(stack)

    buf = io.BytesIO()
    render(7, np.random.default_rng(0), "canvas", size=280).save(buf, "PNG")
    png = buf.getvalue()
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()

    tmp = tempfile.TemporaryDirectory(prefix="digitrec-latency-")
    servers = {stack: start_server(args.model, f"sqlite:///{tmp.name}/{stack}.db", stack) for stack in stacks}
    clients = {stack: httpx.Client(base_url=url, timeout=30) for stack, (_, url) in servers.items()}
    kinds = {
        "GET /healthz": lambda c: c.get("/healthz"),
        "POST /api/predict (multipart PNG)": lambda c: c.post("/api/predict",
                                                              files={"file": ("d.png", png, "image/png")}),
        "POST /api/predict (JSON data URL, as the page)": lambda c: c.post("/api/predict", json={"image": data_url}),
    }
    times: dict[tuple[str, str], list[float]] = {(s, k): [] for s in stacks for k in kinds}
    try:
        for i in range(args.n + 50):  # interleaved, so every stack and request sees the same machine load
            for stack, client in clients.items():
                for kind, send in kinds.items():
                    t = time.perf_counter()
                    r = send(client)
                    dt = time.perf_counter() - t
                    r.raise_for_status()
                    if i >= 50:  # warm-up discarded
                        times[(stack, kind)].append(dt * 1000)
        model = next(iter(clients.values())).get("/api/model").json()
    finally:
        for client in clients.values():
            client.close()
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
        tmp.cleanup()

    # Where a predict request's time goes, measured in this process (no HTTP): preprocessing + inference.
    from digitrec import load_model
    from digitrec.inference.preprocess import to_mnist

    predictor = load_model(args.model)
    work = []
    for _ in range(args.n):
        t = time.perf_counter()
        predictor.predict_mnist([to_mnist(png)])
        work.append((time.perf_counter() - t) * 1000)
    inproc = statistics.median(work)

    print(f"model {model['name']} {model['version']} · {len(png)} byte PNG (280x280) · n={args.n}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"in-process preprocess + inference: median {inproc:.2f} ms\n")
    print(f"| {'stack':<9} | {'request':<48} | median ms | p90 ms | × healthz | × in-process |")
    print(f"|{'-' * 11}|{'-' * 50}|----------:|-------:|----------:|-------------:|")
    for stack in stacks:
        base = statistics.median(times[(stack, "GET /healthz")])
        for kind in kinds:
            ts = times[(stack, kind)]
            med, p90 = statistics.median(ts), float(np.percentile(ts, 90))
            print(f"| {stack:<9} | {kind:<48} | {med:9.2f} | {p90:6.2f} | {med / base:9.2f} | {med / inproc:12.2f} |")
    print()
    canvas = "POST /api/predict (JSON data URL, as the page)"
    for stack in stacks:
        pred, base = statistics.median(times[(stack, canvas)]), statistics.median(times[(stack, "GET /healthz")])
        ok = pred <= 3 * base and pred <= 2 * inproc
        print(f"{stack}: canvas predict {pred / base:.2f}x healthz (goal <= 3), {pred / inproc:.2f}x in-process "
              f"(goal <= 2): {'met' if ok else 'NOT met'}")
    if len(stacks) == 2:
        a, b = stacks
        for kind in kinds:
            ratio = statistics.median(times[(b, kind)]) / statistics.median(times[(a, kind)])
            print(f"{b} / {a}, {kind}: {ratio:.2f}x the median")


if __name__ == "__main__":
    main()

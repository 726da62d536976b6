"""Latency of POST /api/predict with a 280x280 canvas PNG, against GET /healthz from the same client.

Starts a real uvicorn server on loopback (one process, the default model), sends interleaved requests from
one keep-alive httpx client, and prints medians. Goal (issue 3): predict <= 3x healthz and <= 10 ms.

    OMP_NUM_THREADS=1 python benchmarks/serve_latency.py [--n 400] [--model runs/x]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
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

from digitrec.synth import render


def start_server(model: str | None, db: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The feedback store stays on (each prediction is recorded, as in production) but in a throwaway
    # SQLite file: the default one is the user's own store, which a benchmark must not fill with its images.
    env = {**os.environ, "DIGITREC_DB": db, **({"DIGITREC_MODEL": model} if model else {})}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "digitrec.web.app:create_app", "--port", str(port)]
    proc = subprocess.Popen(cmd + ["--log-level", "warning", "--no-access-log"], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        if proc.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
    raise SystemExit("the server was not ready after 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="timed requests per endpoint")
    ap.add_argument("--model", default=None, help="run folder or .onnx (default: the bundled model)")
    args = ap.parse_args()

    buf = io.BytesIO()
    render(7, np.random.default_rng(0), "canvas", size=280).save(buf, "PNG")
    png = buf.getvalue()
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()

    tmp = tempfile.TemporaryDirectory(prefix="digitrec-latency-")
    proc, url = start_server(args.model, f"sqlite:///{tmp.name}/feedback.db")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            requests = {
                "GET /healthz": lambda: client.get("/healthz"),
                "POST /api/predict (multipart PNG)": lambda: client.post(
                    "/api/predict", files={"file": ("d.png", png, "image/png")}
                ),
                "POST /api/predict (JSON data URL, as the page)": lambda: client.post(
                    "/api/predict", json={"image": data_url}
                ),
            }
            times: dict[str, list[float]] = {k: [] for k in requests}
            for i in range(args.n + 50):  # interleaved, so both see the same machine load
                for name, send in requests.items():
                    t = time.perf_counter()
                    r = send()
                    dt = time.perf_counter() - t
                    r.raise_for_status()
                    if i >= 50:  # warm-up discarded
                        times[name].append(dt * 1000)
            model = client.get("/api/model").json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        tmp.cleanup()

    base = statistics.median(times["GET /healthz"])
    print(f"model {model['name']} {model['version']} · {len(png)} byte PNG (280x280) · n={args.n}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print()
    print(f"| {'request':<48} | median ms | p90 ms | × healthz |")
    print(f"|{'-' * 50}|----------:|-------:|----------:|")
    for name, ts in times.items():
        med, p90 = statistics.median(ts), float(np.percentile(ts, 90))
        print(f"| {name:<48} | {med:9.2f} | {p90:6.2f} | {med / base:9.2f} |")
    # Where a predict request's time goes, measured in this process (no HTTP).
    from digitrec import load_model
    from digitrec.preprocess import to_mnist

    predictor = load_model(args.model)
    x = to_mnist(png)
    for name, fn in (
        ("  of which preprocess.to_mnist (in-process)", lambda: to_mnist(png)),
        ("  of which ONNX Runtime inference (in-process)", lambda: predictor.predict_mnist([x])),
    ):
        ts = []
        for _ in range(args.n):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1000)
        med, p90 = statistics.median(ts), float(np.percentile(ts, 90))
        print(f"| {name:<48} | {med:9.2f} | {p90:6.2f} | {med / base:9.2f} |")
    pred = statistics.median(times["POST /api/predict (multipart PNG)"])
    ok = pred <= 3 * base and pred <= 10
    print(
        f"\ngoal (predict <= 3x healthz and <= 10 ms): {'met' if ok else 'NOT met'} "
        f"({pred:.2f} ms, {pred / base:.2f}x)"
    )


if __name__ == "__main__":
    main()

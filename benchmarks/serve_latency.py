"""Latency of POST /api/predict with a 280x280 canvas PNG, against GET /healthz from the same client.

Starts real `digitrec serve` servers on loopback (one worker each, the default model, the feedback store and
the access log on, as in production), one per HTTP stack in --stacks (h11 on asyncio; httptools on uvloop, i.e.
uvicorn[standard]), sends interleaved requests from two keep-alive clients per server, so every stack and
client sees the same machine load, and prints medians and ratios. Goals: predict <= 3x healthz (issue 3) and
<= 2x its own preprocessing + inference measured in this process (issue 17).

The two clients: httpx (what a Python caller uses), and `raw`, HTTP/1.1 written to and read from a plain socket
with the request bytes built once, which is what a lean client (a browser's network stack, wrk) adds: about
nothing. httpx's own work is about 1 ms a request on this machine (half of a /healthz round trip), so only
the raw client's figures say how long the server takes.

    OMP_NUM_THREADS=1 python benchmarks/serve_latency.py [--n 400] [--model runs/x] [--stacks h11,httptools]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import json
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

CLIENTS = ("httpx", "raw")


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


class RawClient:
    """HTTP/1.1 keep-alive over a plain socket: send prepared request bytes, read the head, then the body by its
    Content-Length (every answer measured here has one). No per-request work in Python beyond that."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def send(self, request: bytes) -> int:
        """One round trip; returns the status code."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._recv()
        head, _, body = self.pending.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                      if k.strip().lower() == b"content-length")
        while len(body) < length:
            body += self._recv()
        self.pending = body[length:]
        return int(lines[0].split(b" ", 2)[1])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def raw_request(method: str, path: str, body: bytes = b"", content_type: str | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


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
    boundary = "digitrec-latency-boundary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
                 "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    page_json = json.dumps({"image": data_url}).encode()
    kinds = {
        "GET /healthz": (lambda c: c.get("/healthz"), raw_request("GET", "/healthz")),
        "POST /api/predict (multipart PNG)": (
            lambda c: c.post("/api/predict", files={"file": ("d.png", png, "image/png")}),
            raw_request("POST", "/api/predict", multipart, f"multipart/form-data; boundary={boundary}")),
        "POST /api/predict (JSON data URL, as the page)": (
            lambda c: c.post("/api/predict", json={"image": data_url}),
            raw_request("POST", "/api/predict", page_json, "application/json")),
    }
    clients = {(stack, "httpx"): httpx.Client(base_url=url, timeout=30) for stack, (_, url) in servers.items()}
    clients.update({(stack, "raw"): RawClient(url) for stack, (_, url) in servers.items()})
    pairs = [(stack, client) for stack in stacks for client in CLIENTS]
    times: dict[tuple[str, str, str], list[float]] = {(*p, k): [] for p in pairs for k in kinds}
    try:
        for i in range(args.n + 50):  # interleaved, so every stack, client and request sees the same machine load
            for (stack, name), client in clients.items():
                for kind, (with_httpx, raw) in kinds.items():
                    t = time.perf_counter()
                    status = client.send(raw) if name == "raw" else with_httpx(client).status_code
                    dt = time.perf_counter() - t
                    if status != 200:
                        raise SystemExit(f"{kind} answered {status} ({stack}, {name})")
                    if i >= 50:  # warm-up discarded
                        times[(stack, name, kind)].append(dt * 1000)
        model = clients[(stacks[0], "httpx")].get("/api/model").json()
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
    print(f"| {'stack':<9} | client | {'request':<48} | median ms | p90 ms | × healthz | × in-process |")
    print(f"|{'-' * 11}|--------|{'-' * 50}|----------:|-------:|----------:|-------------:|")
    for stack, name in pairs:
        base = statistics.median(times[(stack, name, "GET /healthz")])
        for kind in kinds:
            ts = times[(stack, name, kind)]
            med, p90 = statistics.median(ts), float(np.percentile(ts, 90))
            print(f"| {stack:<9} | {name:<6} | {kind:<48} | {med:9.2f} | {p90:6.2f} | {med / base:9.2f} "
                  f"| {med / inproc:12.2f} |")
    print()
    canvas = "POST /api/predict (JSON data URL, as the page)"
    for stack, name in pairs:
        pred = statistics.median(times[(stack, name, canvas)])
        base = statistics.median(times[(stack, name, "GET /healthz")])
        ok = pred <= 3 * base and pred <= 2 * inproc
        print(f"{stack}, {name} client: canvas predict {pred / base:.2f}x healthz (goal <= 3), {pred / inproc:.2f}x "
              f"in-process (goal <= 2): {'met' if ok else 'NOT met'}")
    if len(stacks) == 2:
        a, b = stacks
        for kind in kinds:
            ratio = statistics.median(times[(b, "raw", kind)]) / statistics.median(times[(a, "raw", kind)])
            print(f"{b} / {a}, raw client, {kind}: {ratio:.2f}x the median")


if __name__ == "__main__":
    main()

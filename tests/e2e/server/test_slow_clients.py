"""Hostile connections against a real `digitrec serve` on loopback: half-sent headers and trickled bodies are cut
off, heavy requests beyond the per-worker limit get a fast 503 while /healthz answers, metric labels stay
bounded, and admin reload opens model files under the model folders only. Deadlines are short (1-2 s) but the
assertions only bound them loosely, so a loaded machine passes."""

from __future__ import annotations

import importlib.util
import os
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from digitrec.paths import BUNDLED_DIR
from digitrec.testing.servers import ONE_PIXELS, cli_server

HEADER_S, BODY_S = 1, 2
SLACK_S = 20  # a closed connection must come well before this; the deadlines themselves are 1-2 s
TOKEN = "s3cret"
STACKS = ["h11", pytest.param("httptools", marks=pytest.mark.skipif(
    importlib.util.find_spec("httptools") is None, reason="httptools not installed (uvicorn[standard])"))]


@pytest.fixture(scope="module", params=STACKS)
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow")
    args = ["--db", "off", "--header-timeout", str(HEADER_S), "--body-timeout", str(BODY_S),
            "--max-heavy", "1", "--heavy-wait", "0", "--http", request.param]
    env = {"DIGITREC_ADMIN_TOKEN": TOKEN,
           "DIGITREC_MODEL_DIRS": os.pathsep.join([str(tmp), "/dev"])}
    with cli_server(tmp, *args, env=env) as s:
        s.tmp, s.stack = tmp, request.param
        yield s


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=SLACK_S)


def closed_within(sock: socket.socket, limit: float, trickle: bytes = b"") -> tuple[float, bytes]:
    """Seconds until the server closes `sock` (sending `trickle` a byte every 0.2 s meanwhile), and what it
    sent before closing; fails past `limit`."""
    start, received = time.monotonic(), b""
    while time.monotonic() - start < limit:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, received
            received += chunk
        elif trickle:
            try:
                sock.sendall(trickle[:1])
            except (BrokenPipeError, ConnectionResetError):
                continue  # closed: the next recv says so
            trickle = trickle[1:] or trickle
    raise AssertionError(f"the connection was still open after {limit} s")


def test_silent_and_half_sent_headers_are_closed(server):
    silent = connect(server.url)
    assert closed_within(silent, SLACK_S)[0] >= HEADER_S * 0.9
    half = connect(server.url)
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends the headers
    assert closed_within(half, SLACK_S)[1] == b""
    trickled = connect(server.url)  # a byte every 0.2 s: each in time, the whole never
    closed_within(trickled, SLACK_S, trickle=b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 10_000)
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_an_idle_keep_alive_connection_outlives_the_header_deadline(server):
    sock = connect(server.url)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(2):
        sock.sendall(request)
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):  # headers and body may come in two segments
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_S * 2.5)  # idle between requests: uvicorn's keep-alive (75 s) applies, not ours
    sock.close()


def test_a_trickled_body_gets_408_and_holds_the_only_heavy_slot_meanwhile(server):
    slow = connect(server.url)
    slow.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n{\"pixels\": [")
    time.sleep(0.3)
    # Meanwhile: liveness answers, and a second heavy request is turned away at once (--max-heavy 1).
    assert httpx.get(f"{server.url}/healthz", timeout=SLACK_S).status_code == 200
    busy = httpx.post(f"{server.url}/api/predict", json={"pixels": ONE_PIXELS}, timeout=SLACK_S)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "busy" in busy.json()["detail"]
    assert httpx.get(f"{server.url}/api/model", timeout=SLACK_S).status_code == 200  # light: never limited
    _, answer = closed_within(slow, SLACK_S, trickle=b"0, " * 1000)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within" in answer, answer
    ok = httpx.post(f"{server.url}/api/predict", json={"pixels": ONE_PIXELS}, timeout=SLACK_S)
    assert ok.status_code == 200 and ok.json()["digit"] == 1  # the slot is free again
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "digitrec_admission_rejected_total 1.0" in metrics


def test_metric_labels_stay_bounded_whatever_the_method_and_path(server):
    for method in (b"FOOBARBAZ", b"X" * 200):
        sock = connect(server.url)
        sock.sendall(method + b" /api/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 4")
        sock.close()
    assert httpx.get(f"{server.url}/no/such/page/{'y' * 100}").status_code == 404
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "FOOBARBAZ" not in metrics and "XXXX" not in metrics and "yyyy" not in metrics
    assert 'route="other"' in metrics  # (httptools refuses unknown methods itself; h11 passes them on: "other")
    if server.stack == "h11":
        assert 'method="other"' in metrics


def test_admin_reload_opens_model_files_under_the_model_folders_only(server):
    url, auth = f"{server.url}/api/admin/reload", {"Authorization": f"Bearer {TOKEN}"}
    tmp: Path = server.tmp
    fifo = tmp / "model.onnx.fifo"
    os.mkfifo(fifo)  # opening it would block the worker for ever
    cases = {
        "/etc/passwd": (403, "outside the model folders"),
        str(tmp / ".." / "escape.onnx"): (403, "outside the model folders"),
        "/dev/zero": (400, "not a regular file"),
        str(fifo): (400, "not a regular file"),
        str(tmp / "missing.onnx"): (400, "does not exist"),
    }
    (tmp / "link.onnx").symlink_to("/etc/hostname")
    cases[str(tmp / "link.onnx")] = (403, "outside the model folders")  # a link out counts as outside
    for path, (status, words) in cases.items():
        r = httpx.post(url, json={"model": path}, headers=auth, timeout=SLACK_S)
        assert r.status_code == status and words in r.json()["detail"], (path, r.text)
    ok = httpx.post(url, json={"model": str(BUNDLED_DIR)}, headers=auth, timeout=SLACK_S)
    assert ok.status_code == 200, ok.text

"""Faults, with real processes and databases: a SIGKILLed server keeps every acknowledged feedback (SQLite
WAL), a corrupt or missing model or an unreachable database stops `serve` at start with one clear sentence,
and a database lost mid-run makes feedback answer 503 while predictions keep working."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from digitrec.feedback.store import open_store
from digitrec.testing.servers import ONE_PIXELS, cli_server, free_port, start_fails


def test_sigkill_during_feedback_writes_loses_no_acknowledged_feedback(tmp_path: Path):
    db = tmp_path / "feedback.db"
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()
    with cli_server(tmp_path, "--db", f"sqlite:///{db}", "--no-access-log") as s:
        batch = httpx.post(f"{s.url}/api/predict/batch", json={"images": [{"pixels": ONE_PIXELS}] * 200}, timeout=60)
        ids = [r["id"] for r in batch.json()["results"]]

        def send(i: int) -> None:
            label = i % 10
            try:
                r = httpx.post(f"{s.url}/api/feedback", json={"id": ids[i], "label": label}, timeout=10)
            except httpx.HTTPError:
                return  # cut off by the kill: not acknowledged
            if r.status_code == 200:
                with lock:
                    acknowledged.append((ids[i], label))
                if len(acknowledged) == 60:
                    os.kill(s.proc.pid, signal.SIGKILL)  # mid-stream: other writes are in flight

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(len(ids))))
        s.proc.wait(timeout=10)
        assert s.proc.returncode == -signal.SIGKILL
    assert 60 <= len(acknowledged) < len(ids), len(acknowledged)
    store = open_store(f"sqlite:///{db}")  # recovery reads the WAL
    rows = dict(store._execute("SELECT id, label FROM predictions WHERE label IS NOT NULL"))
    assert all(rows.get(pid) == label for pid, label in acknowledged)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "truncated"])
def test_bad_model_file_fails_at_start_with_a_clear_message(tmp_path: Path, damage: str):
    from digitrec.paths import BUNDLED_DIR

    model = tmp_path / "model.onnx"
    if damage == "corrupt":
        model.write_bytes(b"\x00garbage, not a protobuf" * 100)
    elif damage == "truncated":
        model.write_bytes((BUNDLED_DIR / "model.onnx").read_bytes()[:5000])
    r = start_fails(tmp_path, "--model", str(model), "--db", "off")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    expected = "does not exist" if damage == "missing" else "not a valid ONNX model"
    assert expected in r.stderr and str(model) in r.stderr.replace("\n", "")


def test_unreachable_database_at_start_is_a_clear_error(tmp_path: Path):
    r = start_fails(tmp_path, "--db", f"postgresql://postgres@127.0.0.1:{free_port()}/feedback")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot connect to the PostgreSQL feedback database" in r.stderr
    r = start_fails(tmp_path, "--db", "sqlite:////proc/nowhere/feedback.db")
    assert r.returncode == 1 and "cannot open the SQLite feedback database" in r.stderr


def test_database_lost_mid_run_gives_503_for_feedback_while_predictions_work(tmp_path: Path, postgres_url: str,
                                                                            postgres_db: str):
    import psycopg

    admin_url, url = postgres_url, postgres_db
    name = url.rsplit("/", 1)[1]
    with cli_server(tmp_path, "--db", url) as s:
        first = httpx.post(f"{s.url}/api/predict", json={"pixels": ONE_PIXELS}).json()
        assert httpx.post(f"{s.url}/api/feedback", json={"id": first["id"], "label": 1}).status_code == 200
        with psycopg.connect(admin_url, autocommit=True) as conn:  # the database goes away for us
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            answer = httpx.post(f"{s.url}/api/predict", json={"pixels": ONE_PIXELS}, timeout=30)
            assert answer.status_code == 200 and answer.json()["digit"] == 1  # predictions keep working
            down = httpx.post(f"{s.url}/api/feedback", json={"id": first["id"], "label": 2}, timeout=30)
            assert down.status_code == 503, down.text
            assert "feedback database" in down.json()["detail"] and down.headers["retry-after"]
            assert "127.0.0.1" not in down.text and "postgres" not in down.text  # logged, never answered
            assert httpx.get(f"{s.url}/api/stats", timeout=30).status_code == 503
            assert httpx.get(f"{s.url}/readyz").status_code == 200  # the model is fine: stay in rotation
            assert httpx.get(f"{s.url}/metrics").status_code == 200
        finally:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        # Back: the store reconnects by itself.
        again = httpx.post(f"{s.url}/api/predict", json={"pixels": ONE_PIXELS}).json()
        r = httpx.post(f"{s.url}/api/feedback", json={"id": again["id"], "label": 1})
        assert r.status_code == 200, r.text
        assert 'digitrec_feedback_store_errors_total{op="record"}' in httpx.get(f"{s.url}/metrics").text
    assert uuid.UUID(first["id"])

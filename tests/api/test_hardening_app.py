"""Hardening checks that need no network: metric labels, the scrape's SQL, store errors and retention in
/api/stats, option checks. The app runs in process (TestClient, with its lifespan)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digitrec.cli import app as cli
from digitrec.errors import DigitrecError
from digitrec.feedback.store import StoreUnavailable
from digitrec.testing.servers import ONE_PIXELS
from digitrec.web.app import create_app
from digitrec.web.settings import ServeSettings

SECRET = 'connection to server at "db.internal" (10.1.2.3), port 5432 failed: password failed for user "admin"'


def test_unknown_methods_are_one_label(tmp_path: Path):
    with TestClient(create_app(settings=ServeSettings(db="off"))) as client:
        for method in ("FOOBARBAZ", "QWERTY" * 20):
            assert client.request(method, "/api/predict").status_code == 405
        metrics = client.get("/metrics").text
    assert "FOOBARBAZ" not in metrics and "QWERTY" not in metrics
    assert 'method="other",route="/api/predict",status="405"' in metrics


def test_a_scrape_reads_the_running_counts_not_the_table(tmp_path: Path):
    app = create_app(settings=ServeSettings(db=f"sqlite:///{tmp_path / 'f.db'}"))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.post("/api/predict", json={"pixels": ONE_PIXELS}).status_code == 200
        statements: list[str] = []
        app.state.store._conn.set_trace_callback(statements.append)
        metrics = client.get("/metrics").text
        app.state.store._conn.set_trace_callback(None)
    assert "digitrec_stored_predictions" in metrics and " 3.0" in metrics
    assert statements and all("FROM predictions" not in s for s in statements), statements


class BrokenStore:
    kind = "postgresql"

    def stats(self):
        raise StoreUnavailable(f"the feedback database is unavailable ({SECRET}).")

    add_feedback = stats

    def close(self):
        pass


def test_a_database_error_is_logged_and_answered_without_its_details(caplog):
    app = create_app(settings=ServeSettings(db="off"))
    with TestClient(app) as client:
        app.state.store = BrokenStore()
        with caplog.at_level(logging.WARNING, logger="digitrec.web"):
            r = client.get("/api/stats")
        app.state.store = None
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "db.internal" not in r.text and "admin" not in r.text and "5432" not in r.text
    assert "feedback database is unavailable" in r.json()["detail"]
    assert any("db.internal" in rec.getMessage() for rec in caplog.records)  # the operator still sees it


def test_retention_prunes_in_the_background_and_says_so_in_stats(tmp_path: Path):
    app = create_app(settings=ServeSettings(db=f"sqlite:///{tmp_path / 'f.db'}", retain="5"))
    with TestClient(app) as client:
        for _ in range(8):
            assert client.post("/api/predict", json={"pixels": ONE_PIXELS}).status_code == 200
        assert client.get("/api/stats").json()["predictions"] == 8  # nothing pruned per request
        assert app.state.pruner._thread.is_alive()
        app.state.pruner.run_once()  # what the thread does every minute, now
        stats = client.get("/api/stats").json()
    assert stats["predictions"] == 5
    assert stats["retention"]["retain"] == "5" and stats["retention"]["max_rows"] == 5
    assert stats["retention"]["pruned"] == 3 and stats["retention"]["last_pruned_at"] > 0
    assert not app.state.pruner._thread.is_alive()  # stopped with the app


def test_without_retention_stats_say_forever(tmp_path: Path):
    with TestClient(create_app(settings=ServeSettings(db=f"sqlite:///{tmp_path / 'f.db'}"))) as client:
        assert client.get("/api/stats").json()["retention"]["retain"] == "forever"


@pytest.mark.parametrize("options, words", [
    (ServeSettings(retain="soon"), "--retain"),
    (ServeSettings(max_heavy=0), "--max-heavy"),
    (ServeSettings(http="fastest"), "--http"),
])
def test_bad_hardening_options_are_one_sentence(options, words):
    with pytest.raises(DigitrecError, match=words):
        options.check()


def test_serve_with_a_bad_retain_exits_with_one_line():
    r = CliRunner().invoke(cli, ["serve", "--retain", "a while"])
    assert r.exit_code == 1 and "--retain" in r.output and "Traceback" not in r.output


def test_options_travel_to_workers_through_the_environment(monkeypatch, tmp_path: Path):
    given = ServeSettings(retain="30d", max_heavy=3, heavy_wait=0.5, header_timeout=4.0, body_timeout=9.0, http="h11",
                          cors_origins=("https://a.example", "https://b.example"), access_log=False,
                          model_dirs=(tmp_path / "a", tmp_path / "b"), admin_token="s3cret", max_batch=7,
                          candidate="runs/b", candidate_share=0.25)
    for key, value in given.to_env().items():
        monkeypatch.setenv(key, value)
    assert ServeSettings.from_env() == given


def test_a_bad_variable_is_one_sentence_naming_it(monkeypatch):
    monkeypatch.setenv("DIGITREC_MAX_HEAVY", "lots")
    with pytest.raises(DigitrecError, match="DIGITREC_MAX_HEAVY"):
        ServeSettings.from_env()
    with pytest.raises(DigitrecError, match="--max-heavy"):
        ServeSettings.from_env(max_heavy="several")


def test_admission_queues_briefly_then_turns_away(tmp_path: Path):
    """limit 1: a second heavy request waits for the first (and gets through when it ends), a third one past
    its wait gets 503 + Retry-After; light paths never wait."""
    from digitrec.web.admission import AdmissionMiddleware

    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        if scope["path"] == "/api/predict":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(mw, path):
        sent = []

        async def send(message):
            sent.append(message)

        await mw({"type": "http", "path": path, "method": "POST", "headers": []}, None, send)
        return sent[0]["status"], dict(sent[0]["headers"])

    async def scenario():
        mw = AdmissionMiddleware(slow_app, limit=1, wait=30.0)
        first = asyncio.create_task(call(mw, "/api/predict"))
        await asyncio.sleep(0)
        second = asyncio.create_task(call(mw, "/api/predict"))  # waits for the slot
        await asyncio.sleep(0)
        light = await call(mw, "/healthz")
        mw.wait = 0.0  # the slot is taken and one request already waits: the next is turned away at once
        turned_away = await call(mw, "/api/explain")
        release.set()
        return light, turned_away, await first, await second

    light, turned_away, first, second = asyncio.run(scenario())
    assert light[0] == 200 and first[0] == 200 and second[0] == 200
    assert turned_away[0] == 503 and turned_away[1][b"retry-after"] == b"1"

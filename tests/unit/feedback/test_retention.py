"""The store's running counts, retention, client hashes and the migration of a version-1 database, on real
SQLite files (on a real PostgreSQL server: tests/e2e/server/test_store_postgres.py)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from digitrec.errors import DigitrecError
from digitrec.feedback.retention import Pruner, parse_retain
from digitrec.feedback.store import Record, feedback_samples, open_store

IMG = np.full((28, 28), 0.5, np.float32)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store; tests/e2e/server/test_store_postgres.py runs the tests that take it on PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'feedback.db'}"


def scanned(store) -> tuple[int, int, int]:
    """The figures the counts must equal, computed the slow way."""
    with store._lock:
        rows = store._execute("SELECT COUNT(*), COUNT(label), SUM(CASE WHEN label = digit THEN 1 ELSE 0 END) "
                              "FROM predictions")
    n, f, a = rows[0]
    return int(n), int(f), int(a or 0)


def test_counts_follow_inserts_relabels_and_deletes(url: str):
    store = open_store(url)
    ids = [uuid.uuid4().hex for _ in range(6)]
    store.record([Record(i, "A 1", 3, 0.9, IMG, created=100.0 + k) for k, i in enumerate(ids)])
    store.add_feedback(ids[0], 3)
    store.add_feedback(ids[1], 3)
    store.add_feedback(ids[1], 5)  # relabelled: still one feedback, no longer agreeing
    store.add_feedback(ids[5], 3)
    s = store.stats()
    assert (s["predictions"], s["feedback"], s["feedback_accuracy"]) == (6, 3, pytest.approx(2 / 3))
    assert scanned(store) == (6, 3, 2)
    assert store.prune(max_rows=4) == 2  # the two oldest go, with their feedback
    s = store.stats()
    assert (s["predictions"], s["feedback"], s["feedback_accuracy"]) == (4, 1, 1.0)
    assert scanned(store) == (4, 1, 1)
    store.close()


def test_prune_by_age_keeps_the_recent_rows(url: str):
    store = open_store(url)
    now = time.time()
    old = [Record(uuid.uuid4().hex, "m", 1, 0.9, IMG, created=now - 40 * 86400) for _ in range(1200)]
    new = [Record(uuid.uuid4().hex, "m", 1, 0.9, IMG, created=now - 3600) for _ in range(3)]
    store.record(old + new)
    pruner = Pruner(store, parse_retain("30d"))
    assert pruner.run_once() == 1200  # several batches of PRUNE_BATCH
    assert store.stats()["predictions"] == 3 and scanned(store)[0] == 3
    assert pruner.summary()["pruned"] == 1200 and pruner.summary()["max_age_s"] == 30 * 86400
    assert pruner.run_once() == 0
    store.close()


def test_a_version_1_sqlite_database_migrates_with_its_rows(tmp_path: Path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # the schema before this change, with rows in it
    conn.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, model TEXT "
                 "NOT NULL, digit INTEGER, confidence DOUBLE PRECISION NOT NULL, image BLOB, label INTEGER, "
                 "labelled DOUBLE PRECISION)")
    conn.executemany("INSERT INTO predictions VALUES (?, ?, 'old 1', 4, 0.9, ?, ?, NULL)",
                     [("a", 1.0, bytes(784), 4), ("b", 2.0, bytes(784), 9), ("c", 3.0, bytes(784), None)])
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    assert store.stats()["by_model"]["old 1"] == {"predictions": 3, "feedback": 2, "feedback_accuracy": 0.5}
    store.record([Record("d", "old 1", 4, 0.9, IMG, client=store.client_hash("10.0.0.1"))])
    store.close()
    again = open_store(f"sqlite:///{path}")  # a second open migrates nothing and keeps the counts
    assert again.stats()["predictions"] == 4
    assert again.get("d").model == "old 1"
    again.close()


def test_client_hash_is_stable_keyed_and_not_the_address(url: str):
    store = open_store(url)
    h = store.client_hash("203.0.113.7")
    assert h == store.client_hash("203.0.113.7") != store.client_hash("203.0.113.8")
    assert len(h) == 16 and "203" not in h
    store.close()
    assert open_store(url).client_hash("203.0.113.7") == h  # the salt lives in the database


def test_max_per_client_caps_one_clients_share(url: str):
    store = open_store(url)
    loud, quiet = store.client_hash("loud"), store.client_hash("quiet")
    recs = [Record(uuid.uuid4().hex, "m", 1, 0.9, IMG, client=loud) for _ in range(5)]
    recs += [Record(uuid.uuid4().hex, "m", 1, 0.9, IMG, client=quiet) for _ in range(2)]
    store.record(recs)
    for r in recs:
        store.add_feedback(r.id, 7)
    _, labels, clients = feedback_samples(store, max_per_client=2)
    assert len(labels) == 4 and clients.count(loud) == 2 and clients.count(quiet) == 2
    store.close()


@pytest.mark.parametrize("text, age, rows", [("30d", 30 * 86400, None), ("12h", 43200, None),
                                             ("100000", None, 100000), ("100_000", None, 100000),
                                             (None, None, None), ("forever", None, None)])
def test_parse_retain(text, age, rows):
    r = parse_retain(text)
    assert (r.max_age_s, r.max_rows) == (age, rows)


@pytest.mark.parametrize("text", ["30 days", "-5", "0", "1y", "abc"])
def test_parse_retain_rejects_nonsense(text):
    with pytest.raises(DigitrecError, match="--retain"):
        parse_retain(text)

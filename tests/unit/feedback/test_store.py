"""The feedback store on real SQLite files (on a real PostgreSQL server: tests/e2e/server/test_store_postgres.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from digitrec.errors import DigitrecError
from digitrec.feedback.store import (
    Record,
    StoreUnavailable,
    UnknownPrediction,
    feedback_samples,
    open_store,
    read_idx_pair,
    write_idx,
)
from digitrec.testing.servers import free_port


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store; tests/e2e/server/test_store_postgres.py runs the tests that take it on PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'feedback.db'}"


def image(value: float) -> np.ndarray:
    return np.full((28, 28), value, np.float32)


def test_predictions_feedback_and_stats_by_model(store_url: str):
    store = open_store(store_url)
    ids = [uuid.uuid4().hex for _ in range(4)]
    store.record([Record(ids[0], "A 1", 3, 0.9, image(0.5)), Record(ids[1], "A 1", 7, 0.8, image(1.0))])
    store.record([Record(ids[2], "B 2", 1, 0.99, image(0.2)), Record(ids[3], "B 2", None, 0.0, None)])
    assert store.add_feedback(ids[0], 3).digit == 3  # right
    assert store.add_feedback(ids[1], 1).digit == 7  # wrong
    store.add_feedback(ids[2], 1)
    store.add_feedback(ids[2], 1)  # sending it twice counts once
    stats = store.stats()
    assert (stats["predictions"], stats["feedback"], stats["feedback_accuracy"]) == (4, 3, pytest.approx(2 / 3))
    assert stats["by_model"]["A 1"] == {"predictions": 2, "feedback": 2, "feedback_accuracy": 0.5}
    assert stats["by_model"]["B 2"] == {"predictions": 2, "feedback": 1, "feedback_accuracy": 1.0}
    got = store.get(ids[0])
    assert got.model == "A 1" and got.image.dtype == np.uint8 and got.image[0, 0] == 128
    with pytest.raises(UnknownPrediction, match="no prediction with id"):
        store.add_feedback("not-an-id", 2)
    store.close()
    # Reopening sees everything: it was committed.
    assert open_store(store_url).stats()["feedback"] == 3


def test_export_writes_idx_that_training_reads(store_url: str, tmp_path: Path):
    store = open_store(store_url)
    ids = [uuid.uuid4().hex for _ in range(3)]
    store.record([Record(ids[0], "m", 3, 0.9, image(0.5)), Record(ids[1], "m", 7, 0.8, image(1.0)),
                  Record(ids[2], "m", 2, 0.8, image(0.0))])
    store.add_feedback(ids[0], 3)
    store.add_feedback(ids[1], 1)
    write_idx(tmp_path / "all", *feedback_samples(store)[:2])
    images, labels = read_idx_pair(tmp_path / "all")
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == [1, 3]
    write_idx(tmp_path / "wrong", *feedback_samples(store, only_wrong=True)[:2])
    images, labels = read_idx_pair(tmp_path / "wrong")
    assert labels.tolist() == [1] and (images == 255).all()


def test_sqlite_store_uses_wal(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unwritable_sqlite_location_is_a_clear_error():
    with pytest.raises(StoreUnavailable, match="cannot open the SQLite feedback database .*--db"):
        open_store("sqlite:////proc/digitrec/feedback.db")


def test_unreachable_postgres_is_a_clear_error():
    with pytest.raises(StoreUnavailable, match="cannot connect to the PostgreSQL feedback database"):
        open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")


def test_unknown_scheme_is_rejected():
    with pytest.raises(DigitrecError, match="not supported"):
        open_store("mysql://localhost/x")


def test_extra_data_folder_without_files_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DigitrecError, match="digitrec feedback export"):
        read_idx_pair(tmp_path)

"""The feedback store on a real PostgreSQL server (CI starts one: .ci/start-postgres; without
DIGITREC_TEST_POSTGRES_URL these skip). The tests of tests/unit/feedback that take a store URL are collected here
again, with this module's `store_url` / `url` fixtures: a fresh database on the server for each."""

from __future__ import annotations

import pytest

from digitrec.feedback.store import open_store
from tests.unit.feedback.test_retention import (  # noqa: F401  (collected here again, on PostgreSQL)
    test_client_hash_is_stable_keyed_and_not_the_address,
    test_counts_follow_inserts_relabels_and_deletes,
    test_max_per_client_caps_one_clients_share,
    test_prune_by_age_keeps_the_recent_rows,
)
from tests.unit.feedback.test_store import (  # noqa: F401  (collected here again, on PostgreSQL)
    test_export_writes_idx_that_training_reads,
    test_predictions_feedback_and_stats_by_model,
)


@pytest.fixture
def store_url(postgres_db: str) -> str:
    return postgres_db


@pytest.fixture
def url(postgres_db: str) -> str:
    return postgres_db


def test_a_version_1_postgres_database_migrates_with_its_rows(postgres_db: str):
    import psycopg

    url = postgres_db
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, model "
                     "TEXT NOT NULL, digit INTEGER, confidence DOUBLE PRECISION NOT NULL, image BYTEA, label "
                     "INTEGER, labelled DOUBLE PRECISION)")
        conn.execute("INSERT INTO predictions VALUES ('a', 1, 'old 1', 4, 0.9, NULL, 4, NULL), "
                     "('b', 2, 'old 1', 4, 0.9, NULL, NULL, NULL)")
    store = open_store(url)
    assert store.stats()["by_model"]["old 1"] == {"predictions": 2, "feedback": 1, "feedback_accuracy": 1.0}
    store.add_feedback("b", 7)
    assert store.stats()["feedback_accuracy"] == 0.5
    store.close()

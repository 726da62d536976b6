"""The feedback store's schema for SQLite and PostgreSQL, and the migration of an existing database.

Version 2 adds, on top of the first `predictions` table:
- `client`: a keyed hash of the client (X-Client-ID or IP), so feedback can be reviewed per client without
  keeping addresses; the key is a random salt kept in `digitrec_meta`, so a hash cannot be reversed by
  hashing every IPv4 address;
- `prediction_counts`: per-model running counts kept by triggers in the same transaction as each insert,
  label and delete, so /api/stats and /metrics read a few rows instead of scanning the table, and every worker
  (and every process sharing the database) sees the same figures;
- an index on `created`, which retention prunes by.

`migrate()` runs once per open, in one transaction under a lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
advisory lock), so workers starting together migrate the database once.
"""

from __future__ import annotations

import secrets
from typing import Any

VERSION = 2
_PG_LOCK_KEY = 7_121_943  # any constant: the advisory lock that serialises migrations

PREDICTIONS = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    created DOUBLE PRECISION NOT NULL,
    model TEXT NOT NULL,
    digit INTEGER,
    confidence DOUBLE PRECISION NOT NULL,
    image {blob},
    label INTEGER,
    labelled DOUBLE PRECISION,
    client TEXT
)"""
_META = "CREATE TABLE IF NOT EXISTS digitrec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_COUNTS = """
CREATE TABLE prediction_counts (
    model TEXT PRIMARY KEY,
    predictions BIGINT NOT NULL,
    feedback BIGINT NOT NULL,
    agreed BIGINT NOT NULL
)"""
_FILL = """INSERT INTO prediction_counts (model, predictions, feedback, agreed)
    SELECT model, COUNT(*), COUNT(label), SUM(CASE WHEN label = digit THEN 1 ELSE 0 END)
    FROM predictions GROUP BY model"""
_INDEX = "CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created)"


def _f(row: str) -> str:  # 1 when the row has feedback
    return f"(CASE WHEN {row}.label IS NULL THEN 0 ELSE 1 END)"


def _a(row: str) -> str:  # 1 when the feedback agrees with the model's digit
    return f"(CASE WHEN {row}.label = {row}.digit THEN 1 ELSE 0 END)"


_ON_UPDATE = (f"UPDATE prediction_counts SET feedback = feedback + {_f('NEW')} - {_f('OLD')}, "
              f"agreed = agreed + {_a('NEW')} - {_a('OLD')} WHERE model = NEW.model")
_ON_DELETE = (f"UPDATE prediction_counts SET predictions = predictions - 1, feedback = feedback - {_f('OLD')}, "
              f"agreed = agreed - {_a('OLD')} WHERE model = OLD.model")

SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS predictions_counted_insert",
    "DROP TRIGGER IF EXISTS predictions_counted_label",
    "DROP TRIGGER IF EXISTS predictions_counted_delete",
    f"""CREATE TRIGGER predictions_counted_insert AFTER INSERT ON predictions BEGIN
        INSERT OR IGNORE INTO prediction_counts VALUES (NEW.model, 0, 0, 0);
        UPDATE prediction_counts SET predictions = predictions + 1, feedback = feedback + {_f('NEW')},
            agreed = agreed + {_a('NEW')} WHERE model = NEW.model;
    END""",
    f"CREATE TRIGGER predictions_counted_label AFTER UPDATE OF label ON predictions BEGIN {_ON_UPDATE}; END",
    f"CREATE TRIGGER predictions_counted_delete AFTER DELETE ON predictions BEGIN {_ON_DELETE}; END",
]
POSTGRES_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION digitrec_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO prediction_counts VALUES (NEW.model, 1, {_f('NEW')}, {_a('NEW')})
            ON CONFLICT (model) DO UPDATE SET predictions = prediction_counts.predictions + 1,
                feedback = prediction_counts.feedback + EXCLUDED.feedback,
                agreed = prediction_counts.agreed + EXCLUDED.agreed;
        ELSIF TG_OP = 'UPDATE' THEN
            {_ON_UPDATE};
        ELSE
            {_ON_DELETE};
        END IF;
        RETURN NULL;
    END $$""",
    "DROP TRIGGER IF EXISTS predictions_counted ON predictions",
    """CREATE TRIGGER predictions_counted AFTER INSERT OR DELETE OR UPDATE OF label ON predictions
        FOR EACH ROW EXECUTE FUNCTION digitrec_count()""",
]


def migrate(conn: Any, kind: str) -> str:
    """Create or bring the schema to VERSION in one transaction; returns the client-hash salt."""
    cur = conn.cursor()
    try:
        if kind == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        else:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        cur.execute(PREDICTIONS.format(blob="BYTEA" if kind == "postgresql" else "BLOB"))
        cur.execute(_META)
        cur.execute("SELECT value FROM digitrec_meta WHERE key = 'schema'")
        row = cur.fetchone()
        if row is None or int(row[0]) < VERSION:
            _to_version_2(cur, kind)
        cur.execute("SELECT value FROM digitrec_meta WHERE key = 'client_salt'")
        salt = cur.fetchone()[0]
        conn.commit()
        return salt
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()


def _to_version_2(cur: Any, kind: str) -> None:
    if kind == "sqlite":
        cur.execute("PRAGMA table_info(predictions)")
        if "client" not in {r[1] for r in cur.fetchall()}:
            cur.execute("ALTER TABLE predictions ADD COLUMN client TEXT")
    else:
        cur.execute("ALTER TABLE predictions ADD COLUMN IF NOT EXISTS client TEXT")
    cur.execute(_INDEX)
    cur.execute("DROP TABLE IF EXISTS prediction_counts")
    cur.execute(_COUNTS)
    cur.execute(_FILL)  # the one full scan, at migration: from here on the triggers keep the counts
    for sql in SQLITE_TRIGGERS if kind == "sqlite" else POSTGRES_TRIGGERS:
        cur.execute(sql)
    meta = "INSERT INTO digitrec_meta (key, value) VALUES ({0}, {0}) ON CONFLICT (key) DO UPDATE SET value = "\
           "EXCLUDED.value".format("?" if kind == "sqlite" else "%s")
    cur.execute(meta, ("schema", str(VERSION)))
    ignore = "INSERT INTO digitrec_meta (key, value) VALUES ({0}, {0}) ON CONFLICT (key) DO NOTHING".format(
        "?" if kind == "sqlite" else "%s")
    cur.execute(ignore, ("client_salt", secrets.token_hex(16)))

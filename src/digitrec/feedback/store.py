"""The feedback store: every prediction the server makes, and the true labels users send back.

One table, `predictions` (id, time, model, 28x28 uint8 input, digit, confidence, label, client hash), with
per-model counts kept by triggers (feedback_schema.py: stats never scan the table). SQLite by default
(WAL mode: a killed server keeps every committed row, and several uvicorn workers can write at once), or
PostgreSQL through psycopg 3 (`pip install digitrec[postgres]`). The serving half imports this, so no torch.

Methods are thread-safe (the routes run on a thread pool): one connection, one lock. Any database failure
surfaces as `StoreUnavailable`, which the web layer logs and turns into a generic 503 (its text names the
database: host, port, user); a dropped PostgreSQL connection is re-opened on the next call.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitrec import paths
from digitrec.errors import DigitrecError
from digitrec.feedback.schema import migrate
from digitrec.fileio import IdxError, decode_idx, encode_idx, write_atomic

DB_ENV = "DIGITREC_DB"


class StoreUnavailable(DigitrecError):
    """The database cannot be reached or written right now (the web layer answers 503)."""


class UnknownPrediction(DigitrecError):
    """Feedback for an id the store never saw (the web layer answers 404)."""


@dataclass(frozen=True)
class Record:
    """One prediction as stored. `image` is the (28, 28) uint8 image the model saw, None when blank."""

    id: str
    model: str
    digit: int | None
    confidence: float
    image: np.ndarray | None
    created: float = 0.0
    client: str | None = None  # FeedbackStore.client_hash(key), never the raw key


def default_url() -> str:
    """$DIGITREC_DB, else a SQLite file under the data dir."""
    return os.environ.get(DB_ENV) or f"sqlite:///{paths.data_dir() / 'feedback.db'}"


def to_uint8(image: np.ndarray | None) -> bytes | None:
    """A float (28, 28) image in [0, 1] -> 784 bytes (what we store: 784 bytes, not 3 KB of floats)."""
    if image is None:
        return None
    return np.clip(np.rint(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8).tobytes()


_STATS = "SELECT model, predictions, feedback, agreed FROM prediction_counts WHERE predictions > 0 ORDER BY model"
PRUNE_BATCH = 500  # rows per delete: the lock (and SQLite's write lock) is held a few ms at a time


class FeedbackStore:
    """Predictions and feedback in SQLite or PostgreSQL; open one with `open_store(url)`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"
        self._lock = threading.Lock()
        self._conn: Any = None
        self._last_rowcount = 0
        with self._lock:
            self._connect()
            try:
                self._salt = migrate(self._conn, self.kind).encode()
            except _errors(self.kind) as exc:
                self._drop()
                raise StoreUnavailable(f"cannot prepare the feedback database ({_first_line(exc)}).") from exc

    def client_hash(self, key: str) -> str:
        """A client's key (web/feedback.py gives its IP) as 16 hex digits, keyed by this database's random
        salt: the same client always maps to the same hash, and the hash does not give its address back."""
        digest = hashlib.blake2b(key.encode("utf-8", "replace"), key=self._salt[:64], digest_size=8)
        return digest.hexdigest()

    # -- connection ------------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.kind == "sqlite":
            self._conn = _sqlite_connect(self.url)
        else:
            self._conn = _postgres_connect(self.url)

    def _execute(self, sql: str, params: Sequence[Any] = (), many: bool = False) -> list[tuple]:
        """Run one statement in its own transaction (caller holds the lock); rows for a SELECT."""
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
        errors = _errors(self.kind)
        try:
            if self._conn is None:
                self._connect()
            cur = self._conn.cursor()
            try:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
                self._last_rowcount = cur.rowcount
            finally:
                cur.close()
            self._conn.commit()
            return rows
        except errors as exc:
            self._drop()
            raise StoreUnavailable(f"the feedback database is unavailable ({_first_line(exc)}).") from exc

    def _drop(self) -> None:
        """Forget a connection after an error, so the next call opens a fresh one."""
        if self.kind == "sqlite" or self._conn is None:
            if self._conn is not None:
                self._conn.rollback()
            return
        try:
            self._conn.close()
        finally:
            self._conn = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writes ----------------------------------------------------------------------------------------
    def record(self, records: Sequence[Record]) -> None:
        """Store predictions (one transaction for a batch)."""
        now = time.time()
        rows = [(r.id, r.created or now, r.model, r.digit, r.confidence, to_uint8(r.image), r.client)
                for r in records]
        with self._lock:
            self._execute(
                "INSERT INTO predictions (id, created, model, digit, confidence, image, client) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
                many=True,
            )

    def add_feedback(self, prediction_id: str, label: int) -> Record:
        """Record the true label of a stored prediction (sending it again overwrites it); committed on return."""
        with self._lock:
            rows = self._execute(
                "UPDATE predictions SET label = ?, labelled = ? WHERE id = ? RETURNING model, digit, confidence",
                (int(label), time.time(), prediction_id),
            )
        if not rows:
            raise UnknownPrediction(
                f"no prediction with id {prediction_id!r}; send the id that /api/predict returned."
            )
        model, digit, confidence = rows[0]
        return Record(prediction_id, model, digit, float(confidence), None)

    # -- reads -----------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """{"predictions", "feedback", "feedback_accuracy", "by_model": {model: same three}}."""
        with self._lock:
            rows = self._execute(_STATS)
        by_model = {m: _summary(int(n), int(f), int(right)) for m, n, f, right in rows}
        total = _summary(*(sum(int(r[i] or 0) for r in rows) for i in (1, 2, 3)))
        return {**total, "by_model": by_model}

    def labelled(self, only_wrong: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Images (N, 28, 28) uint8, true labels (N,) and client hashes ('' when unknown) of every prediction
        with feedback and an image, oldest feedback first."""
        sql = "SELECT image, label, client FROM predictions WHERE label IS NOT NULL AND image IS NOT NULL"
        if only_wrong:
            sql += " AND (digit IS NULL OR digit <> label)"
        with self._lock:
            rows = self._execute(sql + " ORDER BY labelled, id")
        images = np.zeros((len(rows), 28, 28), np.uint8)
        for i, (blob, _, _) in enumerate(rows):
            images[i] = np.frombuffer(bytes(blob), np.uint8).reshape(28, 28)
        return images, np.array([int(r[1]) for r in rows], np.uint8), [r[2] or "" for r in rows]

    # -- retention -------------------------------------------------------------------------------------
    def prune(self, max_age_s: float | None = None, max_rows: int | None = None) -> int:
        """Delete the predictions older than `max_age_s` and those beyond the newest `max_rows`, oldest first,
        in small batches (the lock is released between them); returns how many rows went."""
        cutoffs = []
        if max_age_s is not None:
            cutoffs.append(time.time() - max_age_s)
        if max_rows is not None:
            with self._lock:  # the newest row past the limit: it and everything older goes
                rows = self._execute("SELECT created FROM predictions ORDER BY created DESC LIMIT 1 OFFSET ?",
                                     (int(max_rows),))
            if rows:
                cutoffs.append(float(rows[0][0]))
        if not cutoffs:
            return 0
        cutoff, deleted = max(cutoffs), 0
        sql = ("DELETE FROM predictions WHERE id IN "
               "(SELECT id FROM predictions WHERE created <= ? ORDER BY created LIMIT ?)")
        while True:
            with self._lock:
                self._execute(sql, (cutoff, PRUNE_BATCH))
                n = self._changes()
            deleted += n
            if n < PRUNE_BATCH:
                return deleted

    def _changes(self) -> int:
        """Rows the last statement changed (caller holds the lock)."""
        return max(0, int(self._last_rowcount))

    def get(self, prediction_id: str) -> Record | None:
        with self._lock:
            rows = self._execute(
                "SELECT id, model, digit, confidence, image, created FROM predictions WHERE id = ?", (prediction_id,)
            )
        if not rows:
            return None
        pid, model, digit, conf, blob, created = rows[0]
        image = None if blob is None else np.frombuffer(bytes(blob), np.uint8).reshape(28, 28)
        return Record(pid, model, digit, float(conf), image, float(created))


def _summary(n: int, f: int, right: int) -> dict[str, Any]:
    return {"predictions": n, "feedback": f, "feedback_accuracy": round(right / f, 6) if f else None}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _errors(kind: str) -> tuple[type[BaseException], ...]:
    if kind == "sqlite":
        return (sqlite3.Error,)
    import psycopg

    return (psycopg.Error, OSError)


def _sqlite_connect(url: str) -> sqlite3.Connection:
    # As SQLAlchemy spells it: sqlite:///relative/file.db, sqlite:////absolute/file.db.
    path = Path(url.removeprefix("sqlite:///"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level="DEFERRED")
        # WAL: readers never block the writer, several processes can share the file, and a commit is one
        # append to the log: a SIGKILL after commit loses nothing. NORMAL sync is durable against process
        # crashes (the OS holds the data); only a power cut can lose the last commits.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(
            f"cannot open the SQLite feedback database {path} ({_first_line(exc)}); "
            "pass a writable location with --db sqlite:///path/feedback.db."
        ) from exc
    return conn


def _postgres_connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise DigitrecError("a postgresql:// --db needs psycopg: pip install 'digitrec[postgres]'.") from exc
    try:
        return psycopg.connect(url, connect_timeout=5)
    except (psycopg.Error, OSError) as exc:
        raise StoreUnavailable(
            f"cannot connect to the PostgreSQL feedback database ({_first_line(exc)}); "
            "check that the server runs and the --db URL (host, port, user, database) is right."
        ) from exc


def open_store(url: str | None = None) -> FeedbackStore:
    """Open (and create the table in) the store at `url`: sqlite:///path, postgresql://..., or the default."""
    url = url or default_url()
    if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise DigitrecError(f"--db {url!r} is not supported; use sqlite:///path/file.db or postgresql://...")
    return FeedbackStore(url)


# -- corrected samples as training data --------------------------------------------------------------------

IMAGES_FILE = "feedback-images-idx3-ubyte"
LABELS_FILE = "feedback-labels-idx1-ubyte"


def feedback_samples(
    store: FeedbackStore, only_wrong: bool = False, max_per_client: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The labelled samples an export would write: images, labels and client hashes, keeping at most
    `max_per_client` (the oldest) from any one client, so that one client cannot outweigh the others."""
    images, labels, clients = store.labelled(only_wrong=only_wrong)
    if max_per_client is not None:
        seen: dict[str, int] = {}
        keep = []
        for i, client in enumerate(clients):
            seen[client] = seen.get(client, 0) + 1
            if seen[client] <= max_per_client:
                keep.append(i)
        images, labels, clients = images[keep], labels[keep], [clients[i] for i in keep]
    return images, labels, clients


def write_idx(out: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Two MNIST-style IDX files in `out`: the 28x28 inputs the model saw (already MNIST form), so
    `digitrec train --extra-data out` can append them to the training tensor as they are."""

    write_atomic(Path(out) / IMAGES_FILE, encode_idx(images))
    write_atomic(Path(out) / LABELS_FILE, encode_idx(labels))


def read_idx_pair(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 28, 28) uint8 images and (N,) labels `write_idx` wrote, checked for shape and range."""

    folder = Path(folder)
    try:
        images = decode_idx((folder / IMAGES_FILE).read_bytes())
        labels = decode_idx((folder / LABELS_FILE).read_bytes())
    except (OSError, IdxError) as exc:
        raise DigitrecError(
            f"--extra-data {folder}: cannot read {IMAGES_FILE} and {LABELS_FILE} ({exc}); "
            "write them with `digitrec feedback export --out DIR`."
        ) from exc
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),) or (labels > 9).any():
        raise DigitrecError(f"--extra-data {folder}: expected N 28x28 images and N labels 0-9, got "
                            f"{images.shape} and {labels.shape}.")
    return images, labels

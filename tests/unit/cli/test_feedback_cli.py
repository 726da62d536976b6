"""`digitrec feedback export` writes the labelled samples as IDX files; `train --extra-data` takes the folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from digitrec.cli import app
from digitrec.feedback.store import Record, open_store, read_idx_pair


def test_feedback_export_writes_idx_files(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = open_store(url)
    ids = [uuid.uuid4().hex for _ in range(3)]
    store.record([Record(i, "m", 3, 0.9, np.full((28, 28), 0.5, np.float32)) for i in ids])
    store.add_feedback(ids[0], 8)
    store.add_feedback(ids[1], 3)
    store.close()
    out = tmp_path / "extra"
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out), "--db", url, "--yes"])
    assert r.exit_code == 0, r.output
    assert "wrote 2 labelled samples" in r.output and "--extra-data" in r.output
    images, labels = read_idx_pair(out)
    assert images.shape == (2, 28, 28) and sorted(labels.tolist()) == [3, 8]
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(tmp_path / "w"), "--db", url, "--only-wrong",
                                 "--yes"])
    assert "wrote 1 labelled" in r.output


def test_feedback_export_shows_counts_per_label_and_client_and_writes_nothing_without_yes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = open_store(url)
    loud, quiet = store.client_hash("198.51.100.1"), store.client_hash("198.51.100.2")
    recs = [Record(uuid.uuid4().hex, "m", 3, 0.9, np.full((28, 28), 0.5, np.float32), client=c)
            for c in [loud] * 4 + [quiet]]
    store.record(recs)
    for r, label in zip(recs, [7, 7, 7, 7, 2], strict=True):
        store.add_feedback(r.id, label)
    store.close()
    out = tmp_path / "review"
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out), "--db", url])
    assert r.exit_code == 1 and "nothing written" in r.output and "--yes" in r.output
    assert not out.exists()
    assert "5 labelled samples" in r.output and loud in r.output and "80%" in r.output
    assert "198.51.100" not in r.output  # clients appear as hashes only
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out), "--db", url, "--max-per-client", "2",
                                 "--yes"])
    assert r.exit_code == 0 and "wrote 3 labelled samples" in r.output, r.output
    assert sorted(read_idx_pair(out)[1].tolist()) == [2, 7, 7]


def test_feedback_export_with_an_unreachable_db_is_one_clear_line(tmp_path: Path):
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(tmp_path), "--db", "sqlite:////proc/x/f.db"])
    assert r.exit_code == 1 and "cannot open the SQLite feedback database" in r.output


def test_train_takes_extra_data_into_its_config(tmp_path: Path):
    from digitrec.training.recipes import resolve_config

    cfg = resolve_config("fast", extra_data=str(tmp_path))
    assert cfg.extra_data == str(tmp_path) and cfg.to_dict()["extra_data"] == str(tmp_path)

"""`digitrec feedback export` writes the labelled samples as IDX files; `train --extra-data` takes the folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from digitrec.cli import app
from digitrec.feedback_store import Record, open_store, read_idx_pair


def test_feedback_export_writes_idx_files(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = open_store(url)
    ids = [uuid.uuid4().hex for _ in range(3)]
    store.record([Record(i, "m", 3, 0.9, np.full((28, 28), 0.5, np.float32)) for i in ids])
    store.add_feedback(ids[0], 8)
    store.add_feedback(ids[1], 3)
    store.close()
    out = tmp_path / "extra"
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out), "--db", url])
    assert r.exit_code == 0, r.output
    assert "wrote 2 labelled samples" in r.output and "--extra-data" in r.output
    images, labels = read_idx_pair(out)
    assert images.shape == (2, 28, 28) and sorted(labels.tolist()) == [3, 8]
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(tmp_path / "w"), "--db", url, "--only-wrong"])
    assert "wrote 1 labelled" in r.output


def test_feedback_export_with_an_unreachable_db_is_one_clear_line(tmp_path: Path):
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(tmp_path), "--db", "sqlite:////proc/x/f.db"])
    assert r.exit_code == 1 and "cannot open the SQLite feedback database" in r.output


def test_train_takes_extra_data_into_its_config(tmp_path: Path):
    from digitrec.train import resolve_config

    cfg = resolve_config("fast", extra_data=str(tmp_path))
    assert cfg.extra_data == str(tmp_path) and cfg.to_dict()["extra_data"] == str(tmp_path)

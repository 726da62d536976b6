"""A tiny run of benchmarks/sweep.py: every (candidate, seed) becomes a finished member with its probabilities,
the choice is the candidate with the best validation accuracy, a second run reuses the finished members, and a
deadline that has passed starts nothing and says so. (The paired bootstrap it reports, paired_delta, is checked in
tests/unit/training/test_evaluate.py.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import ROOT

BENCH = ROOT / "benchmarks" / "sweep.py"


def sweep(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, str(BENCH), "--candidates", "student", "fast", "--seeds", "1", "--jobs", "2",
           "--epochs", "1", "--limit", "300", "--device", "cpu", "--out", str(out), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_sweep_trains_every_member_and_chooses_on_validation(mnist_cache, tmp_path):
    first = sweep(tmp_path, "--json", str(tmp_path / "summary.json"))
    assert first.returncode == 0, first.stdout + first.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["candidate"]: r for r in summary["rows"]}
    assert set(rows) == {"student", "fast"} and all(r["seeds"] == [0] for r in rows.values())
    assert summary["chosen"] == max(rows, key=lambda n: (rows[n]["val_accuracy"][0], -rows[n]["parameters"]))
    assert [u["members"] for u in summary["unions"]] == [["student", "fast"]]
    other = next(n for n in rows if n != summary["chosen"])
    assert rows[summary["chosen"]]["val_delta_vs_chosen"] is None
    mean, lo, hi = rows[other]["val_delta_vs_chosen"]
    assert mean == pytest.approx(rows[other]["val_accuracy"][0] - rows[summary["chosen"]]["val_accuracy"][0])
    assert lo <= mean <= hi and mean <= 0
    for name in rows:
        member = tmp_path / name / "members" / "seed-0"
        card = json.loads((member / "model_card.json").read_text())
        assert card["recipe"]["epochs"] == 1 and card["recipe"]["limit"] == 300
        probs = np.load(tmp_path / name / "probs" / "seed-0.npz")
        assert probs["val"].shape == (6000, 10) and probs["test"].shape == (10000, 10)
        np.testing.assert_allclose(probs["test"].sum(1), 1, atol=1e-4)
        assert rows[name]["test_accuracy"][0] == pytest.approx(card["test_accuracy"], abs=1e-4)
    assert "← chosen on validation" in first.stdout

    stamp = (tmp_path / "fast" / "members" / "seed-0" / "model_card.json").stat().st_mtime_ns
    second = sweep(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "fast" / "members" / "seed-0" / "model_card.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_passed_deadline_starts_nothing_and_fails(mnist_cache, tmp_path):
    out = sweep(tmp_path, "--deadline", "0")
    assert out.returncode == 1
    assert "not finished: student seed 0: not started (deadline)" in out.stdout
    assert not (tmp_path / "student" / "members").exists()

"""benchmarks/train_speed.py on finished run folders written here (a training log and a card each): means over
seeds, a level only some seeds reached, the ratio to the baseline, the plot, and a clear error for a folder that
holds no finished run. (Training itself is covered by tests/e2e/mnist.)"""

import json
import subprocess
import sys
from pathlib import Path

from tests import ROOT

BENCH = ROOT / "benchmarks" / "train_speed.py"


def write_run(folder: Path, val_accs: list[float], seconds: float, test_acc: float) -> None:
    folder.mkdir(parents=True)
    rows = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"]
    rows += [f"{i},0.5,0.99,0.1,{acc},0.1,{seconds}" for i, acc in enumerate(val_accs, 1)]
    (folder / "training_log.csv").write_text("\n".join(rows) + "\n")
    card = {"test_accuracy": test_acc, "parameters": {"trainable": 1234}}
    (folder / "model_card.json").write_text(json.dumps(card))


def bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_means_over_seeds_and_the_ratio_to_the_baseline(tmp_path):
    write_run(tmp_path / "new/members/seed-0", [0.991, 0.996], 10.0, 0.9960)
    write_run(tmp_path / "new/members/seed-1", [0.990, 0.994], 20.0, 0.9970)
    write_run(tmp_path / "old", [0.980, 0.990, 0.995, 0.996], 30.0, 0.9970)
    plot = tmp_path / "curves.png"
    done = bench("--runs", f"new={tmp_path / 'new'}", f"old={tmp_path / 'old'}", "--baseline", "old", "--plot", plot)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith(("new ", "old "))}
    # new: two seeds, 2 epochs of 10 s and of 20 s (30 s mean); 99.0 % after one epoch in both (15 s mean), 99.5 %
    # and 99.6 % by one seed only; test 99.65 % mean.
    assert rows["new"].split()[1:5] == ["2", "1,234", "2", "30.0"]
    assert "99.65 ±" in rows["new"] and "1.0 ep, 15 s" in rows["new"] and "2.0 ep, 20 s (1/2)" in rows["new"]
    assert "2.0 ep, 60 s" in rows["old"] and "not reached" in rows["old"]  # 99.0 % in its 2nd epoch; never 99.7 %
    ratios = done.stdout.split("seconds relative to old")[1]
    assert "whole run: 0.25" in ratios and "to 99.0%: 0.25" in ratios and "to 99.7%: n/a" in ratios
    assert plot.stat().st_size > 10_000


def test_a_folder_without_a_finished_run_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    done = bench("--runs", f"x={tmp_path / 'empty'}")
    assert done.returncode != 0 and "no finished run" in done.stderr and "Traceback" not in done.stderr
    bad = bench("--runs", "no-equals-sign")
    assert bad.returncode != 0 and "NAME=" in bad.stderr and "Traceback" not in bad.stderr

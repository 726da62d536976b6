"""Fast preset vs the seed recipe, side by side in one run on this machine.

Runs `digitrec train --preset seed --epochs 5` (the time budget: five epochs of the reference recipe) and
`digitrec train --preset fast` (complete), then prints training time, test accuracy and their ratio.
Training time is the sum of the per-epoch times in training_log.csv (each includes the validation pass);
the wall time of each command (data loading, export and the test evaluation included) is printed too.

    python benchmarks/train_speed.py [--out runs/bench] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def train(preset: str, out: Path, seed: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "digitrec", "train", "--preset", preset, "--seed", str(seed), "--out", str(out),
           "--quiet", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    with open(out / "training_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    card = json.loads((out / "model_card.json").read_text())
    return {"preset": preset, "epochs": len(rows), "train_s": sum(float(r["seconds"]) for r in rows),
            "wall_s": wall, "val_acc": float(rows[-1]["val_acc"]), "test_acc": card["test_accuracy"],
            "params": card["parameters"]["trainable"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seed5 = train("seed", args.out / "seed-5epochs", args.seed, ["--epochs", "5"])
    fast = train("fast", args.out / "fast", args.seed, [])
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(f"{'recipe':<16}{'epochs':>7}{'params':>9}{'train s':>9}{'wall s':>8}{'val acc':>9}{'test acc':>10}")
    for r in (seed5, fast):
        print(f"{r['preset']:<16}{r['epochs']:>7}{r['params']:>9,}{r['train_s']:>9.1f}{r['wall_s']:>8.1f}"
              f"{r['val_acc'] * 100:>8.2f}%{r['test_acc'] * 100:>9.2f}%")
    ratio = fast["train_s"] / seed5["train_s"]
    print(f"\nfast training time / 5 seed epochs = {ratio:.2f}  (goal <= 1.00)")
    print(f"fast test accuracy = {fast['test_acc'] * 100:.2f}%  (goal >= 99.65%)")


if __name__ == "__main__":
    main()

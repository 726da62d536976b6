"""Training speed: time-to-accuracy of each preset against the reference recipe, from one table.

    python benchmarks/train_speed.py                        # trains reference (5 epochs) and fast, as CI-sized proof
    python benchmarks/train_speed.py --presets reference fast best --full
    python benchmarks/train_speed.py --runs reference=runs/reference-seed0 fast=runs/bench/fast \
        best=runs/best-ensemble5/members/seed-0 --plot docs/img/accuracy_vs_epochs.png

For each run: epochs and seconds until the validation accuracy first reaches 99.0 / 99.5 / 99.6 % (the test
set is never looked at per epoch), total training time and test accuracy, and the ratio of each preset's
seconds to the reference recipe's. Seconds are the per-epoch times in training_log.csv (validation pass included),
so they are only comparable between runs made on a quiet machine; `--runs` reads folders already trained.
Without --full the reference recipe gets five epochs (its time budget in the foundation issue).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

TARGETS = (0.990, 0.995, 0.996)


def train(preset: str, out: Path, seed: int, epochs: int | None) -> Path:
    cmd = [sys.executable, "-m", "digitrec", "train", "--preset", preset, "--seed", str(seed), "--out", str(out),
           "--quiet", *(["--epochs", str(epochs)] if epochs else [])]
    print("running:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return out


def summarise(name: str, run: Path) -> dict:
    with open(run / "training_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    card = json.loads((run / "model_card.json").read_text())
    elapsed, reached = 0.0, {}
    for r in rows:
        elapsed += float(r["seconds"])
        for t in TARGETS:
            if t not in reached and float(r["val_acc"]) >= t:
                reached[t] = (int(r["epoch"]), elapsed)
    return {"name": name, "run": str(run), "epochs": len(rows), "train_s": elapsed, "reached": reached,
            "test_acc": card["test_accuracy"], "params": card["parameters"]["trainable"],
            "val_curve": [float(r["val_acc"]) for r in rows]}


def reached(result: dict, target: float) -> str:
    if target not in result["reached"]:
        return "not reached"
    epoch, seconds = result["reached"][target]
    return f"{epoch} ep, {seconds:.0f} s"


def report(results: list[dict]) -> None:
    base = next((r for r in results if r["name"].startswith("reference")), results[0])
    head = "".join(f"{'to ' + format(t * 100, '.1f') + '%':>16}" for t in TARGETS)
    print(f"\n{'recipe':<12}{'params':>9}{'epochs':>7}{'train s':>9}{'test acc':>10}{head}")
    for r in results:
        cells = "".join(f"{reached(r, t):>16}" for t in TARGETS)
        print(f"{r['name']:<12}{r['params']:>9,}{r['epochs']:>7}{r['train_s']:>9.1f}{r['test_acc'] * 100:>9.2f}%"
              f"{cells}")
    print(f"\nseconds to accuracy, relative to {base['name']} (lower is faster):")
    for r in results:
        if r is base:
            continue
        ratios = [f"{t * 100:.1f}%: " + (f"{r['reached'][t][1] / base['reached'][t][1]:.2f}"
                                         if t in r["reached"] and t in base["reached"] else "n/a")
                  for t in TARGETS]
        print(f"  {r['name']:<10}" + "   ".join(ratios))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(range(1, len(r["val_curve"]) + 1), [a * 100 for a in r["val_curve"]], marker=".",
                label=f"{r['name']} (test {r['test_acc'] * 100:.2f}%)")
    ax.set_ylim(98.5, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy, %")
    ax.set_title("Accuracy vs epochs (6k validation split)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presets", nargs="+", default=["reference", "fast"])
    parser.add_argument("--full", action="store_true", help="the reference recipe runs all its epochs, not five")
    parser.add_argument("--runs", nargs="+", metavar="NAME=RUN", help="tabulate these finished runs instead")
    parser.add_argument("--plot", type=Path, help="write validation accuracy vs epochs here (PNG)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("command: python " + " ".join(sys.argv))
    if args.runs:
        pairs = [item.split("=", 1) for item in args.runs]
        if any(len(p) != 2 or not Path(p[1], "training_log.csv").is_file() for p in pairs):
            sys.exit("error: --runs takes NAME=RUN pairs, each RUN a finished run folder with training_log.csv")
        results = [summarise(name, Path(run)) for name, run in pairs]
    else:
        results = []
        for preset in args.presets:
            short = preset == "reference" and not args.full
            name = "reference-5ep" if short else preset
            run = train(preset, args.out / ("reference-5epochs" if short else preset), args.seed, 5 if short else None)
            results.append(summarise(name, run))
    report(results)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

"""Training speed: time to accuracy of each recipe, means over seeds, side by side in one run.

    python benchmarks/train_speed.py                   # reference (5 epochs) and fast, seed 0: a CI-sized proof
    python benchmarks/train_speed.py --seeds 5 --recipes "fast-before=--preset fast --crop 28 --epochs 10" \
        "fast=--preset fast" --baseline fast-before --plot docs/img/time_to_accuracy.png
    python benchmarks/train_speed.py --runs reference=runs/reference-seed0 fast=runs/sweep/fast   # finished runs

A recipe is NAME=ARGS: ARGS are `digitrec train` flags, so an old recipe is named by the flags that rebuild it
from today's presets. Each recipe is trained for seeds 0..N-1, one run at a time (never two timed things at
once), into OUT/NAME/members/seed-<s>, the layout of `train --ensemble` and `benchmarks/sweep.py`, whose
candidate folders `--runs` also reads (NAME=FOLDER, a run folder or a folder of members/seed-*).

Per recipe: seeds, epochs, training seconds (the sum of the epochs in training_log.csv, validation passes
included), final validation accuracy and test accuracy (mean ± sample std over seeds), and the epochs and
seconds until validation accuracy first reaches 99.0 / 99.5 / 99.6 / 99.7 % (means over the seeds that reached
it; "k/n" says how many did). Decisions are made on the validation curves; the test column is only reported.
Seconds compare only between runs of one invocation on a quiet machine, hence the ratios to --baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

TARGETS = (0.990, 0.995, 0.996, 0.997)
DEFAULT_RECIPES = ("reference-5ep=--preset reference --epochs 5", "fast=--preset fast")


def train(args: list[str], out: Path, seed: int) -> Path:
    """Always trains, even where a run is already finished: every time in one table comes from one invocation."""
    cmd = [sys.executable, "-m", "digitrec", "train", *args, "--seed", str(seed), "--out", str(out), "--quiet"]
    print("running: digitrec " + shlex.join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True)
    return out


def member_runs(folder: Path) -> list[Path]:
    """A run folder itself, or the members/seed-* of a sweep candidate or an ensemble."""
    if (folder / "training_log.csv").is_file():
        return [folder]
    members = sorted(folder.glob("members/seed-*"), key=lambda p: int(p.name.split("-")[1]))
    return [m for m in members if (m / "training_log.csv").is_file() and (m / "model_card.json").is_file()]


def one_run(run: Path) -> dict:
    with open(run / "training_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    card = json.loads((run / "model_card.json").read_text())
    elapsed, reached, seconds = 0.0, {}, []
    for r in rows:
        elapsed += float(r["seconds"])
        seconds.append(elapsed)
        for t in TARGETS:
            if t not in reached and float(r["val_acc"]) >= t:
                reached[t] = (int(r["epoch"]), elapsed)
    return {"epochs": len(rows), "train_s": elapsed, "reached": reached, "test_acc": card["test_accuracy"],
            "params": card["parameters"]["trainable"], "val": [float(r["val_acc"]) for r in rows],
            "seconds": seconds}


def summarise(name: str, runs: list[Path]) -> dict:
    each = [one_run(r) for r in runs]

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    def std(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    reached = {}
    for t in TARGETS:
        hits = [e["reached"][t] for e in each if t in e["reached"]]
        if hits:
            reached[t] = (mean([h[0] for h in hits]), mean([h[1] for h in hits]), len(hits))
    longest = max(e["epochs"] for e in each)
    curve = [mean([e["val"][i] for e in each if len(e["val"]) > i]) for i in range(longest)]
    clock = [mean([e["seconds"][i] for e in each if len(e["seconds"]) > i]) for i in range(longest)]
    return {"name": name, "n": len(each), "params": each[0]["params"], "epochs": mean([e["epochs"] for e in each]),
            "train_s": mean([e["train_s"] for e in each]), "val": mean([e["val"][-1] for e in each]),
            "val_std": std([e["val"][-1] for e in each]), "test": mean([e["test_acc"] for e in each]),
            "test_std": std([e["test_acc"] for e in each]), "reached": reached, "curve": curve, "clock": clock}


def cell(result: dict, target: float) -> str:
    if target not in result["reached"]:
        return "not reached"
    epochs, seconds, k = result["reached"][target]
    return f"{epochs:.1f} ep, {seconds:.0f} s" + ("" if k == result["n"] else f" ({k}/{result['n']})")


def report(results: list[dict], baseline: str | None) -> None:
    base = next((r for r in results if r["name"] == baseline), results[0])
    head = "".join(f"{'to ' + format(t * 100, '.1f') + '% val':>20}" for t in TARGETS)
    print(f"\n{'recipe':<16}{'seeds':>6}{'params':>9}{'epochs':>7}{'train s':>9}{'val acc':>16}{'test acc':>16}{head}")
    for r in results:
        cells = "".join(f"{cell(r, t):>20}" for t in TARGETS)
        print(f"{r['name']:<16}{r['n']:>6}{r['params']:>9,}{r['epochs']:>7.0f}{r['train_s']:>9.1f}"
              f"{r['val'] * 100:>9.2f} ± {r['val_std'] * 100:.2f}{r['test'] * 100:>9.2f} ± {r['test_std'] * 100:.2f}"
              f"{cells}")
    print(f"\nseconds relative to {base['name']} (lower is faster; means over seeds):")
    for r in results:
        if r is base:
            continue
        ratios = [f"whole run: {r['train_s'] / base['train_s']:.2f}"]
        for t in TARGETS:
            both = t in r["reached"] and t in base["reached"]
            ratios.append(f"to {t * 100:.1f}%: " + (f"{r['reached'][t][1] / base['reached'][t][1]:.2f}" if both
                                                    else "n/a"))
        print(f"  {r['name']:<14}" + "   ".join(ratios))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for r in results:
        label = f"{r['name']} ({r['n']} seeds, test {r['test'] * 100:.2f}%)"
        accuracy = [a * 100 for a in r["curve"]]
        by_epoch.plot(range(1, len(accuracy) + 1), accuracy, marker=".", label=label)
        by_time.plot(r["clock"], accuracy, marker=".", label=label)
    by_epoch.set_ylim(97.5, 100)
    by_epoch.set_xlabel("epoch")
    by_time.set_xlabel("training seconds (this machine)")
    by_epoch.set_ylabel("validation accuracy, % (mean over seeds)")
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    fig.suptitle("Time to accuracy (6k validation split)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def split_pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    pairs = [tuple(item.split("=", 1)) for item in items]
    if any(len(p) != 2 or not p[0] for p in pairs):
        sys.exit(f"error: {what} takes NAME=... items, got {items}")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--seeds", type=int, default=1, help="train seeds 0..N-1 of each recipe")
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES), metavar="NAME=ARGS")
    parser.add_argument("--runs", nargs="+", metavar="NAME=FOLDER", help="tabulate these finished runs instead")
    parser.add_argument("--baseline", help="the recipe the others' seconds are divided by (default: the first)")
    parser.add_argument("--plot", type=Path, help="write validation accuracy vs epochs and seconds here (PNG)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("command: python " + shlex.join(sys.argv))
    if args.runs:
        groups = [(name, member_runs(Path(folder))) for name, folder in split_pairs(args.runs, "--runs")]
        missing = [name for name, runs in groups if not runs]
        if missing:
            sys.exit(f"error: no finished run (training_log.csv and model_card.json) for {', '.join(missing)}")
    else:
        from digitrec.training.ensemble import member_dir  # torch: only when this process trains

        groups = []
        for name, flags in split_pairs(args.recipes, "--recipes"):
            runs = [train(shlex.split(flags), member_dir(args.out / name, s), s) for s in range(args.seeds)]
            groups.append((name, runs))
    results = [summarise(name, runs) for name, runs in groups]
    report(results, args.baseline)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

"""Seed sweeps of candidate recipes, run as parallel processes (on one GPU, or the CPU), chosen on validation.

    python benchmarks/sweep.py --candidates best w64e30 --seeds 5 --jobs 8 --device cuda --out runs/sweep

Each (candidate, seed) is one `digitrec.training.loop.run` into OUT/<candidate>/members/seed-<s>: the folder layout of
`digitrec train --ensemble`, so once a candidate becomes a preset, `digitrec train --preset P --ensemble 5
--out OUT/<candidate>` reuses those members instead of training them again. A member already finished with the
same recipe is skipped here too. Beside each member the sweep keeps its softmax outputs on validation and test
(OUT/<candidate>/probs/seed-<s>.npz) so that ensembles are scored without running the models again.

The table gives, per candidate: seeds finished, validation and test accuracy (mean ± sample std over seeds),
training seconds, the ensemble of its finished seeds, and its accuracy minus the chosen one's with a bootstrap
interval over images (`paired_delta`). The choice is the highest mean validation accuracy among candidates with
every seed finished (ties: fewer parameters); test is printed beside it, never used.
`--deadline S` stops launching and ends unfinished runs after S seconds, so a sweep fits a fixed lease; the same
command run again goes on from each stopped run's last checkpoint.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from digitrec.training.augment import AugmentConfig
from digitrec.training.evaluate import paired_delta
from digitrec.training.recipes import PRESETS, TrainConfig

BEST = PRESETS["best"]
STRONGER = AugmentConfig(rotation_deg=15, shift=0.12, zoom=0.15, shear_deg=15)
# The presets, and the variants of best that the README's GPU sweep tried (as differences from best).
CANDIDATES: dict[str, TrainConfig] = {
    "fast": PRESETS["fast"],
    "best": BEST,
    "student": PRESETS["student"],
    "reference": PRESETS["reference"],
    "w64e30": replace(BEST, width=64, epochs=30),
    "w64e40-aug": replace(BEST, width=64, epochs=40, augment=STRONGER),
    "w48e40-aug": replace(BEST, width=48, epochs=40, augment=STRONGER),
}


def member_path(out: Path, name: str, seed: int) -> Path:
    return out / name / "members" / f"seed-{seed}"


def probs_path(out: Path, name: str, seed: int) -> Path:
    return out / name / "probs" / f"seed-{seed}.npz"


def job_config(name: str, seed: int, args: argparse.Namespace) -> TrainConfig:
    cfg = replace(CANDIDATES[name], seed=seed)
    if args.epochs:
        cfg = replace(cfg, epochs=args.epochs)
    if args.limit:
        cfg = replace(cfg, limit=args.limit)
    return cfg


def run_one(name: str, seed: int, args: argparse.Namespace) -> None:
    """One member, in this process: train, write the run folder, keep its probabilities."""
    import torch

    from digitrec.training import data as mnist
    from digitrec.training.ensemble import train_member
    from digitrec.training.export import load_run_model
    from digitrec.training.loop import evaluate_logits, resolve_device, to_tensor

    path = member_path(args.out, name, seed)
    # resume: a run the deadline stopped goes on from its last checkpoint
    train_member(job_config(name, seed, args), path, device=args.device, resume=True, data_dir=args.data_dir)
    dev = resolve_device(args.device)
    model = load_run_model(path).to(dev, memory_format=torch.channels_last)
    ds = mnist.load_mnist(args.data_dir)
    val = mnist.stratified_split(ds.train_labels).val
    probs = {k: evaluate_logits(model, to_tensor(x), dev).softmax(1).numpy()
             for k, x in (("val", ds.train_images[val]), ("test", ds.test_images))}
    target = probs_path(args.out, name, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **probs)


def launch(name: str, seed: int, args: argparse.Namespace, log_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--one", name, str(seed), "--device", args.device, "--out", str(args.out)]
    for flag, value in (("--data-dir", args.data_dir), ("--epochs", args.epochs), ("--limit", args.limit)):
        if value:
            cmd += [flag, str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with open(log_dir / f"{name}-seed-{seed}.log", "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def run_pool(jobs: list[tuple[str, int]], args: argparse.Namespace) -> dict[tuple[str, int], str]:
    """Run the jobs args.jobs at a time, in order; past the deadline launch nothing and end what still runs."""
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    start, queue, running, status = time.monotonic(), list(jobs), {}, {}
    while queue or running:
        late = args.deadline is not None and time.monotonic() - start > args.deadline
        while queue and len(running) < args.jobs and not late:
            job = queue.pop(0)
            running[job] = (launch(*job, args, log_dir), time.monotonic())
        for job, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                status[job] = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
                print(f"[{time.monotonic() - start:7.1f} s] {job[0]} seed {job[1]}: {status[job]} "
                      f"in {time.monotonic() - t0:.1f} s", flush=True)
                del running[job]
            elif late:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                status[job] = "stopped at the deadline"
                del running[job]
        if late:
            status.update({job: "not started (deadline)" for job in queue})
            queue.clear()
        time.sleep(0.2)
    return status


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values) * 100:.2f} % ± {std * 100:.2f}"


def signed_points(delta: tuple[float, float, float] | None) -> str:
    if delta is None:
        return "–"
    mean, lo, hi = (f"{v * 100:+.2f}".replace("-", "−") for v in delta)
    return f"{mean} [{lo}, {hi}]"


def summarise(names: list[str], seeds: list[int], args: argparse.Namespace) -> dict:
    from digitrec.training import data as mnist

    ds = mnist.load_mnist(args.data_dir)
    labels = {"val": ds.train_labels[mnist.stratified_split(ds.train_labels).val], "test": ds.test_labels}

    def errors(probs: list, split: str) -> int:  # of the mean of the members' probabilities
        return int((np.mean([p[split] for p in probs], axis=0).argmax(1) != labels[split]).sum())

    rows, probs, right = [], {}, {}
    for name in names:
        done = [s for s in seeds if probs_path(args.out, name, s).is_file()]
        cards = [json.loads((member_path(args.out, name, s) / "model_card.json").read_text()) for s in done]
        probs[name] = [np.load(probs_path(args.out, name, s)) for s in done]
        row = {"candidate": name, "seeds": done, "recipe": job_config(name, 0, args).to_dict(),
               "parameters": cards[0]["parameters"]["trainable"] if cards else None,
               "seconds": [c["training_seconds"] for c in cards]}
        for split, y in labels.items():
            hits = [p[split].argmax(1) == y for p in probs[name]]  # per member, per image
            row[f"{split}_accuracy"] = [float(h.mean()) for h in hits]
            if done:
                row[f"{split}_ensemble_errors"] = errors(probs[name], split)
                right.setdefault(name, {})[split] = np.mean(hits, axis=0)  # per image, over the seeds
        rows.append(row)
    complete = [r for r in rows if len(r["seeds"]) == len(seeds)]
    pick = max(complete, key=lambda r: (statistics.fmean(r["val_accuracy"]), -r["parameters"]), default=None)
    # How far each candidate is from the choice, per image, and whether the split is large enough to tell.
    for r in rows:
        for split in labels:
            apart = pick is not None and r is not pick and r["candidate"] in right
            r[f"{split}_delta_vs_chosen"] = (paired_delta(right[r["candidate"]][split], right[pick["candidate"]][split])
                                             if apart else None)

    how = "finished runs only" if args.summary_only else f"device {args.device}, {args.jobs} runs at a time"
    print(f"\nmachine: {platform.machine()} · {how} · command: {shlex.join(sys.argv)}")
    print("| candidate | params | seeds | training s (each) | val acc | test acc | ensemble val / test errors "
          "| val Δ vs chosen (95 % CI) | test Δ vs chosen (95 % CI) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mark = " ← chosen on validation" if r is pick else ""
        secs = f"{min(r['seconds']):.0f}–{max(r['seconds']):.0f}" if r["seconds"] else "–"
        ens = (f"{r['val_ensemble_errors']} / {r['test_ensemble_errors']}" if r["seeds"] else "–")
        params = f"{r['parameters']:,}" if r["parameters"] else "–"
        print(f"| {r['candidate']}{mark} | {params} | {len(r['seeds'])} | {secs} | {mean_std(r['val_accuracy'])} | "
              f"{mean_std(r['test_accuracy'])} | {ens} | {signed_points(r['val_delta_vs_chosen'])} | "
              f"{signed_points(r['test_delta_vs_chosen'])} |")

    # Ensembles across candidates: every union of the finished seeds of two or more, chosen like one candidate's.
    finished = [n for n in names if probs[n]]
    unions = [{"members": list(c), "size": sum(len(probs[n]) for n in c),
               **{f"{split}_errors": errors([p for n in c for p in probs[n]], split) for split in labels}}
              for k in range(2, len(finished) + 1) for c in itertools.combinations(finished, k)]
    if unions:
        print("\n| union of candidates | members | val errors | test errors |\n|---|---:|---:|---:|")
        for u in unions:
            print(f"| {' + '.join(u['members'])} | {u['size']} | {u['val_errors']} | {u['test_errors']} |")
    return {"rows": rows, "unions": unions, "chosen": pick["candidate"] if pick else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=["best"])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of each candidate")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--deadline", type=float, help="seconds: launch nothing after, end what still runs")
    parser.add_argument("--epochs", type=int, help="override every candidate's epochs (smoke tests)")
    parser.add_argument("--limit", type=int, help="train on the first N images only (smoke tests)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--summary-only", action="store_true", help="train nothing: the table of what is finished")
    parser.add_argument("--one", nargs=2, metavar=("CANDIDATE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]), args)
        return

    seeds = list(range(args.seeds))
    jobs = [(name, s) for s in seeds for name in args.candidates]  # every candidate's seed 0 first
    status = {} if args.summary_only else run_pool(jobs, args)
    failed = {f"{n} seed {s}": v for (n, s), v in status.items() if v != "ok"}
    summary = {**summarise(args.candidates, seeds, args), "not_finished": failed}
    for job, why in failed.items():
        print(f"not finished: {job}: {why}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

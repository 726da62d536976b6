"""Which ensemble to build, chosen on the validation split: every union of the given groups of finished runs,
with its errors on validation (what chooses) and on the test set (reported, never used to choose).

    python benchmarks/ensembles.py best=runs/best best-ls0=runs/best-ls0 students=runs/students [--json]

Each NAME=RUN is a group: a run folder, or an ensemble folder (its members). A candidate is one group or a union
of several; its prediction is the mean of its members' probabilities, as `digitrec ensemble` exports it. The
choice: fewest validation errors; on a tie, fewer parameters (a cheaper ensemble to serve). Each member's
probabilities are computed once. Build the chosen one with `digitrec ensemble RUN... --out DIR`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.inference.predictor import load_model
from digitrec.training import data as mnist
from digitrec.training.ensemble import expand_members


def parse_group(text: str) -> tuple[str, list[Path]]:
    name, sep, run = text.partition("=")
    if not sep or not name or not run:
        raise DigitrecError(f"expected NAME=RUN, got {text!r}")
    return name, expand_members(Path(run))


def candidates(groups: dict[str, list[Path]]) -> list[tuple[str, ...]]:
    names = list(groups)
    return [c for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", help="NAME=RUN: a run or ensemble folder")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    try:
        groups = dict(parse_group(g) for g in args.groups)
    except DigitrecError as exc:
        sys.exit(f"error: {exc}")

    ds = mnist.load_mnist()
    val = mnist.stratified_split(ds.train_labels).val
    sets = {"val": (ds.train_images[val], ds.train_labels[val]), "test": (ds.test_images, ds.test_labels)}
    members = {m for paths in groups.values() for m in paths}
    probs = {m: {k: load_model(m, verify=False).predict_proba(x) for k, (x, _) in sets.items()} for m in members}
    params = {m: json.loads((m / "model_card.json").read_text())["parameters"]["trainable"] for m in members}

    rows = []
    for combo in candidates(groups):
        chosen = [m for name in combo for m in groups[name]]
        row = {"candidate": " + ".join(combo), "members": len(chosen), "parameters": sum(params[m] for m in chosen)}
        for k, (_, y) in sets.items():
            mean = np.mean([probs[m][k] for m in chosen], axis=0)
            row[f"{k}_errors"] = int((mean.argmax(1) != y).sum())
            row[f"{k}_accuracy"] = round(1 - row[f"{k}_errors"] / len(y), 6)
        rows.append(row)
    pick = min(rows, key=lambda r: (r["val_errors"], r["parameters"]))

    print("| candidate | members | parameters | val errors (acc) | test errors (acc) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        mark = " ← chosen on validation" if r is pick else ""
        print(f"| {r['candidate']}{mark} | {r['members']} | {r['parameters']:,} | {r['val_errors']} "
              f"({r['val_accuracy'] * 100:.2f} %) | {r['test_errors']} ({r['test_accuracy'] * 100:.2f} %) |")
    if args.json:
        print(json.dumps({"rows": rows, "chosen": pick["candidate"]}, indent=2))


if __name__ == "__main__":
    main()

"""Test-time augmentation, judged on validation: does averaging a model's probabilities over the image and its
four one-pixel shifts make fewer errors than the image alone?

    python benchmarks/tta.py runs/sweep/w64e30/members/seed-{0,1,2,3,4}

Per run, and summed over the runs: errors on the validation split (what decides) and on the test set (reported).
The last line weighs the validation change against its cost: five views are five times the inference.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from digitrec.inference.predictor import load_model
from digitrec.training import data as mnist

VIEWS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (down, right) in pixels


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, 28, 28) moved by (dy, dx) pixels; what leaves the frame is dropped, what enters is black."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or .onnx files)")
    args = parser.parse_args()

    ds = mnist.load_mnist()
    val = mnist.stratified_split(ds.train_labels).val
    sets = {"val": (ds.train_images[val], ds.train_labels[val]), "test": (ds.test_images, ds.test_labels)}
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print("| run | val errors: plain → 5 views | test errors: plain → 5 views |\n|---|---:|---:|")
    totals = {k: [0, 0] for k in sets}
    for run in args.runs:
        model = load_model(run, verify=False)
        cells = []
        for split, (x, y) in sets.items():
            views = [model.predict_proba(shifted(x, dy, dx)) for dy, dx in VIEWS]
            plain, tta = int((views[0].argmax(1) != y).sum()), int((np.mean(views, 0).argmax(1) != y).sum())
            totals[split][0] += plain
            totals[split][1] += tta
            cells.append(f"{plain} → {tta}")
        print(f"| {run} | {cells[0]} | {cells[1]} |", flush=True)
    (vp, vt), (tp, tt) = totals["val"], totals["test"]
    print(f"| all {len(args.runs)} | {vp} → {vt} | {tp} → {tt} |")
    print(f"validation: {vt - vp:+d} errors over {len(args.runs) * len(sets['val'][1]):,} images, for 5× the inference")


if __name__ == "__main__":
    main()

"""Accuracy on the MNIST test set under shifts, rotations, scale changes, stroke thickening and thinning and
inverted polarity, through the public preprocessing: a model against the reference-recipe model, in one run.

    python benchmarks/robustness.py [--model RUN_OR_ONNX] [--baseline runs/reference-seed0] [--n 10000] [--seed 0]
                                    [--json]

Each test digit is rendered at 4x (bicubic, 112 px for MNIST's 28) in the middle of a 224 px black canvas
(56 MNIST pixels: room to move), perturbed there with Pillow, and read the way a user's picture is read:
`to_mnist` (a `None` answer, no digit found, counts as wrong), then the model. Sizes below are MNIST pixels.
Shift direction and rotation sign are drawn per image from --seed; both models see the very same images.
"raw" skips the preprocessing: the perturbed canvas's middle 28x28 (MNIST's own frame, 4x box-filtered
back down) goes straight to the model, which shows what `to_mnist` buys. NumPy + Pillow + ONNX Runtime only:
runs with the serve extra (no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from digitrec.errors import DigitrecError
from digitrec.inference.predictor import Predictor, load_model
from digitrec.inference.preprocess import to_mnist
from digitrec.training.data import load_mnist

UP = 4  # working resolution: canvas pixels per MNIST pixel
SIDE = 56 * UP  # the canvas
FRAME = slice((SIDE - 28 * UP) // 2, (SIDE + 28 * UP) // 2)  # MNIST's 28x28 frame inside it
REFERENCE_RUN = Path("runs/reference-seed0")  # what `digitrec train --preset reference` writes


def _affine(im: Image.Image, scale: float = 1.0, angle: float = 0.0, dx: float = 0.0, dy: float = 0.0):
    """Scale and rotate about the canvas centre, then move by (dx, dy) MNIST pixels (Pillow maps output
    pixels back to input pixels, hence the inverse matrix)."""
    c, a = SIDE / 2, np.deg2rad(angle)
    cos, sin = np.cos(a) / scale, np.sin(a) / scale
    ox, oy = c + dx * UP, c + dy * UP  # where the centre goes
    matrix = (cos, sin, c - cos * ox - sin * oy, -sin, cos, c + sin * ox - cos * oy)
    return im.transform(im.size, Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC)


def _shift(im: Image.Image, rng: np.random.Generator, d: float) -> Image.Image:
    a = rng.uniform(0, 2 * np.pi)  # any direction, d pixels away
    return _affine(im, dx=d * np.cos(a), dy=d * np.sin(a))


Perturb = Callable[[Image.Image, np.random.Generator], Image.Image]
CONDITIONS: list[tuple[str, Perturb]] = [
    ("clean", lambda im, rng: im),
    ("shift 6 px", lambda im, rng: _shift(im, rng, 6)),
    ("rotate ±15°", lambda im, rng: _affine(im, angle=15 * rng.choice((-1, 1)))),
    ("rotate ±30°", lambda im, rng: _affine(im, angle=30 * rng.choice((-1, 1)))),
    ("scale x0.5", lambda im, rng: _affine(im, scale=0.5)),
    ("scale x1.5", lambda im, rng: _affine(im, scale=1.5)),
    # MaxFilter(k) grows each side of a stroke by (k - 1) / 2 canvas pixels: (k - 1) / UP MNIST pixels in all
    ("thicker +2 px", lambda im, rng: im.filter(ImageFilter.MaxFilter(2 * UP + 1))),
    ("thinner -1 px", lambda im, rng: im.filter(ImageFilter.MinFilter(UP + 1))),
    ("inverted (ink on paper)", lambda im, rng: ImageOps.invert(im)),
]


def render(digit: np.ndarray) -> Image.Image:
    """A 28x28 MNIST digit at real resolution, with room around it: what a drawing or a scan would give."""
    canvas = Image.new("L", (SIDE, SIDE), 0)
    canvas.paste(Image.fromarray(digit).resize((28 * UP, 28 * UP), Image.Resampling.BICUBIC), (FRAME.start,) * 2)
    return canvas


def inputs(images: np.ndarray, perturb: Perturb, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """The perturbed images through `to_mnist` (blank -> zeros) and raw (MNIST's frame, box-filtered to 28);
    and how many `to_mnist` found no digit in."""
    prep, raw, blank = [], [], 0
    for digit in images:
        im = perturb(render(digit), rng)
        x = to_mnist(im)
        blank += x is None
        prep.append(np.zeros((28, 28), np.float32) if x is None else x)
        raw.append(np.asarray(im.crop((FRAME.start, FRAME.start, FRAME.stop, FRAME.stop)).reduce(UP)))
    return np.stack(prep), np.stack(raw), blank


def load(path: Path | None, what: str) -> Predictor:
    """Load a model or exit with one line that says how to get it (no traceback for a missing file)."""
    if path is not None and not path.exists():
        hint = " (`digitrec train --preset reference` writes runs/reference-seed0)" if what == "baseline" else ""
        sys.exit(f"error: --{what} {path} does not exist{hint}; pass a run folder or a .onnx file.")
    try:
        return load_model(path)
    except DigitrecError as exc:
        sys.exit(f"error: --{what}: {exc}")


def run(args: argparse.Namespace) -> dict:
    model, baseline = load(args.model, "model"), load(args.baseline, "baseline")
    mnist = load_mnist()
    idx = np.linspace(0, len(mnist.test_labels) - 1, args.n).round().astype(int)  # evenly over the test set
    images, labels = mnist.test_images[idx], mnist.test_labels[idx]
    t0 = time.perf_counter()
    rows = {}
    for i, (name, perturb) in enumerate(CONDITIONS):
        prep, raw, blank = inputs(images, perturb, np.random.default_rng([args.seed, i]))
        acc = {f"{kind}{who}": float((m.predict(x) == labels).mean())
               for kind, x in (("", prep), ("raw_", raw)) for who, m in (("model", model), ("baseline", baseline))}
        rows[name] = {**acc, "no_digit": blank}
    return {
        "command": shlex.join(sys.orig_argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
                   f"Python {platform.python_version()}",
        "n": int(args.n), "seed": args.seed,
        "model": str(model.path), "baseline": str(baseline.path),
        "conditions": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def table(result: dict) -> None:
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    print(f"command: {result['command']}")
    print(f"machine: {result['machine']}")
    print(f"model    {result['model']}\nbaseline {result['baseline']}")
    print(f"{result['n']} MNIST test images, seed {result['seed']}, {result['seconds']:.1f} s")
    header = (f"{'condition':<24}{'model':>9}{'baseline':>10}{'diff':>8}{'err ratio':>11}{'no digit':>10}"
              f"{'raw model':>11}{'raw base':>10}")
    print(header + "\n" + "-" * len(header))
    for name, r in result["conditions"].items():
        m, b = r["model"], r["baseline"]
        ratio = f"{(1 - m) / (1 - b):.2f}" if b < 1 else "-"
        print(f"{name:<24}{pct(m):>9}{pct(b):>10}{100 * (m - b):>+8.2f}{ratio:>11}{r['no_digit']:>10}"
              f"{pct(r['raw_model']):>11}{pct(r['raw_baseline']):>10}")
    se = 100 * (0.01 * 0.99 / result["n"]) ** 0.5
    print(f"diff: points, model - baseline; err ratio: model's errors / baseline's (< 1: model better). "
          f"At 99% one standard error is {se:.2f} points. raw: no preprocessing, MNIST's 28x28 frame as is.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="run folder or .onnx (default: the bundled model)")
    ap.add_argument("--baseline", type=Path, default=REFERENCE_RUN, help="the reference-recipe run folder or .onnx")
    ap.add_argument("--n", type=int, default=10000, help="test images, taken evenly over the test set")
    ap.add_argument("--seed", type=int, default=0, help="for the shift directions and rotation signs")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    args = ap.parse_args()
    if not 1 <= args.n <= 10000:
        ap.error("--n must be 1..10000")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        table(result)


if __name__ == "__main__":
    main()

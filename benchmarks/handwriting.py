"""Accuracy on synthetic, real-looking handwriting for several preprocessing choices.

    python benchmarks/handwriting.py [--model src/digitrec/bundled/model.onnx] [--n 2000] [--seed 2024]

Generates a fixed seeded set (digitrec.training.synth: canvas drawings, scans, photos of paper, chalkboard; never
MNIST), runs it through `to_mnist` with each choice of box size, stroke-width normalisation and centring,
classifies with ONNX Runtime and prints accuracy per style. "naive" is what most demos do: invert if the
picture is light, squash the whole image to 28x28. A `None` answer (no digit found) counts as wrong.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from digitrec.inference.preprocess import to_gray, to_mnist
from digitrec.training import synth

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "src" / "digitrec" / "bundled" / "model.onnx"
CONFIGS = [  # (name, to_mnist keyword arguments, all spelled out: the defaults move); None = naive baseline
    ("naive 28x28 squash", None),
    ("box 20", {"box": 20, "stroke": None}),  # MNIST's recipe: the reference for the paired column
    *[(f"box {b}", {"box": b, "stroke": None}) for b in (14, 16, 18, 22)],
    *[(f"box {b} + stroke 2.5", {"box": b, "stroke": 2.5}) for b in (16, 18, 20)],
    *[(f"box 18 + stroke {w}", {"box": 18, "stroke": w}) for w in (2.0, 3.0)],
    *[(f"box {b}, centred by box", {"box": b, "stroke": None, "center": "box"}) for b in (18, 20)],
    ("box 18 + stroke 2.5, by box", {"box": 18, "stroke": 2.5, "center": "box"}),
]


def naive(image: Image.Image) -> np.ndarray:
    g = to_gray(image)
    g = 255 - g if g.mean() > 127 else g
    return np.asarray(Image.fromarray(g, "F").resize((28, 28), Image.Resampling.BILINEAR)) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--n", type=int, default=2000, help="images, spread evenly over the styles")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--only", nargs="*", help="run only configs whose name contains one of these")
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    t0 = time.perf_counter()
    images, labels = synth.dataset(args.n, seed=args.seed)
    styles = np.array([synth.STYLES[i % len(synth.STYLES)] for i in range(args.n)])
    print(f"{args.n} synthetic images (seed {args.seed}, {time.perf_counter() - t0:.1f} s); model {args.model}")

    header = (
        f"{'preprocessing':<30}"
        + "".join(f"{s:>8}" for s in (*synth.STYLES, "all"))
        + f"{'none':>7}{'vs box 20':>12}{'ms/img':>8}"
    )
    print(header + "\n" + "-" * len(header))
    reference = None  # per-image correctness of "box 20" (MNIST's own recipe), for paired comparisons
    for name, kwargs in CONFIGS:
        if args.only and not any(o in name for o in args.only):
            continue
        t0 = time.perf_counter()
        xs = [naive(im) if kwargs is None else to_mnist(im, **{"center": "mass", **kwargs}) for im in images]
        ms = (time.perf_counter() - t0) / len(images) * 1000
        found = np.array([x is not None for x in xs])
        batch = np.stack([x if x is not None else np.zeros((28, 28), np.float32) for x in xs])
        logits = session.run(None, {input_name: batch[:, None].astype(np.float32)})[0]
        correct = (logits.argmax(1) == labels) & found
        if name == "box 20":
            reference = correct
        cells = [correct[styles == s].mean() for s in synth.STYLES] + [correct.mean()]
        row = f"{name:<30}" + "".join(f"{100 * c:>7.1f}%" for c in cells)
        # images this choice gets right that box 20 gets wrong, and the other way round
        paired = "" if reference is None else f"+{(correct & ~reference).sum()}/-{(reference & ~correct).sum()}"
        print(row + f"{100 * (1 - found.mean()):>6.1f}%{paired:>12}{ms:>8.2f}", flush=True)
    per_style = args.n // len(synth.STYLES)
    se_style, se_all = (100 * (0.02 * 0.98 / k) ** 0.5 for k in (per_style, args.n))
    print(
        f"{per_style} images per style. At 98% one standard error is {se_style:.2f} points per style,"
        f" {se_all:.2f} overall; +a/-b: images won and lost against box 20 on the same images."
    )


if __name__ == "__main__":
    main()

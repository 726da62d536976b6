"""Calibration and "no digit": ECE before/after temperature scaling, false rejections on digits, and the
rejection rate on inputs that are not digits (noise, scribbles, letters).

    python benchmarks/calibration.py [--model RUN_OR_ONNX] [--n 300] [--refit] [--no-gate] [--json]

Uses the calibration in the model's card (what is served); without one, or with --refit, fits the rules
exactly as `digitrec calibrate` does (MNIST validation split + synthetic handwriting). Then measures on data
that played no part in the fit: the MNIST test set (as 28x28 arrays, and as PNG files through the image
path), synthetic handwriting from another seed, and generated non-digits, all through the same path as a
user's image (`to_mnist` -> model -> rules -> the card's "is this a digit?" gate, when it lists one;
--no-gate leaves it out). The letters are in DejaVu Sans, a font family that `digitrec train --negatives`
and the gate's training (digitrec.training.negatives) hold out.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.card import CARD_FILE, ModelCard
from digitrec.inference.gate import Gate
from digitrec.inference.predictor import resolve_model_path, verdicts
from digitrec.inference.preprocess import to_mnist
from digitrec.training.calibrate import Rules, calibrate_model, ece, onnx_logits, softmax, synthetic_digits
from digitrec.training.data import load_mnist

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Letters that people (and MNIST) also write as digits: O/0, I/l/1, S/5, Z/2, B/8, b/6, g/q/9, G/6, T/7...
LOOKALIKES = set("OoIlSsZzBbgqGTDJ")


def _font(size: int) -> ImageFont.ImageFont:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable built-in font


def letters(rng: np.random.Generator, repeats: int = 3) -> list[tuple[str, Image.Image]]:
    out = []
    for _ in range(repeats):
        for ch in LETTERS:
            im = Image.new("L", (280, 280), 255)
            size = int(rng.integers(90, 220))
            font = _font(size)
            x, y = rng.integers(10, 90, 2)
            ImageDraw.Draw(im).text((int(x), int(y)), ch, fill=0, font=font)
            im = im.rotate(float(rng.normal(0, 8)), fillcolor=255)
            out.append((ch, im))
    return out


def noise(rng: np.random.Generator, n: int) -> list[tuple[str, Image.Image]]:
    out = []
    for i in range(n):
        kind = ("uniform", "gaussian", "blobs", "scribble")[i % 4]
        if kind == "uniform":
            a = rng.integers(0, 256, (280, 280), dtype=np.uint8)
        elif kind == "gaussian":
            a = np.uint8(np.clip(rng.normal(200, 40, (280, 280)), 0, 255))
        else:
            im = Image.new("L", (280, 280), 255)
            d = ImageDraw.Draw(im)
            if kind == "blobs":
                for _ in range(int(rng.integers(3, 9))):
                    x, y = rng.integers(0, 280, 2)
                    r = rng.integers(5, 40)
                    d.ellipse((int(x - r), int(y - r), int(x + r), int(y + r)), fill=0)
            else:  # a tangle of random strokes
                n_pts = int(rng.integers(6, 14))
                pts = [tuple(int(v) for v in rng.integers(20, 260, 2)) for _ in range(n_pts)]
                d.line(pts, fill=0, width=int(rng.integers(6, 18)), joint="curve")
            a = np.asarray(im)
        out.append((kind, Image.fromarray(a)))
    return out


def judged(onnx: Path, rules: Rules, gate: Gate | None, x: np.ndarray) -> list[str | None]:
    """The predictor's verdict on (N, 28, 28) MNIST-form images (`predictor.verdicts`): the rules, the
    straight-outline check, and the gate (if the card has one)."""
    return verdicts(x, onnx_logits(onnx, x), rules, gate)


def through_model(onnx: Path, rules: Rules, images: list[Image.Image], gate: Gate | None = None) -> list[str | None]:
    """The user's path: to_mnist (None = blank), then the model, then the rules and the gate."""
    arrays = [to_mnist(im) for im in images]
    kept = [i for i, a in enumerate(arrays) if a is not None]
    out: list[str | None] = ["blank"] * len(images)
    if kept:
        x = np.stack([arrays[i] for i in kept])
        for i, r in zip(kept, judged(onnx, rules, gate, x), strict=True):
            out[i] = r
    return out


def as_png_files(images: np.ndarray) -> list[Image.Image]:
    """Each 28x28 image written to a PNG file and opened again, as a user would send it."""
    out = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG")
        out.append(Image.open(io.BytesIO(buf.getvalue())))
    return out


def rate(reasons: list[str | None]) -> dict:
    n = len(reasons)
    by = {r: sum(x == r for x in reasons) / n for r in ("blank", "not_digit_like", "low_confidence")}
    return {"n": n, "rejected": sum(x is not None for x in reasons) / n, **by}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="run folder or .onnx (default: the bundled model)")
    ap.add_argument("--n", type=int, default=300, help="synthetic digits and noise images")
    ap.add_argument("--refit", action="store_true", help="fit the rules again instead of reading the card's")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-gate", action="store_true", help="leave out the card's gate (rules alone)")
    args = ap.parse_args()
    onnx = resolve_model_path(args.model)
    t0 = time.time()
    card_path = onnx.parent / CARD_FILE
    card = ModelCard.read(card_path) if card_path.is_file() else ModelCard()
    cal = card.calibration
    gate = None if args.no_gate else Gate.from_card(card, onnx.parent)
    source = f"the card's calibration ({card_path})"
    if cal is None or args.refit:
        cal = calibrate_model(onnx, synthetic=args.n)
        source = f"refitted here with {args.n} synthetic digits"
    rules = Rules.from_calibration(cal)
    rng = np.random.default_rng(7)

    mnist = load_mnist()
    x_test = mnist.test_images.astype(np.float32) / 255
    logits = onnx_logits(onnx, x_test)
    test_reasons = judged(onnx, rules, gate, x_test)
    kept = np.array([r is None for r in test_reasons])
    pred = logits.argmax(1)
    png_reasons = through_model(onnx, rules, as_png_files(mnist.test_images), gate)
    syn_x, syn_y = synthetic_digits(args.n, seed=99)  # another seed than the fit's
    syn_reasons = judged(onnx, rules, gate, syn_x)
    lets = letters(rng)
    let_reasons = through_model(onnx, rules, [im for _, im in lets], gate)
    other = [r for (ch, _), r in zip(lets, let_reasons, strict=True) if ch not in LOOKALIKES]
    noi = noise(rng, args.n)
    noise_reasons = through_model(onnx, rules, [im for _, im in noi], gate)
    result = {
        "model": str(onnx),
        "calibration": source,
        "gate": None if gate is None else {"file": str(gate.path), "threshold": gate.threshold},
        "temperature": round(cal["temperature"], 4),
        "reject_below": round(cal["reject_below"], 4),
        "ece_val_before": cal["ece_before"], "ece_val_after": cal["ece_after"],
        "ece_test_before": ece(softmax(logits), mnist.test_labels),
        "ece_test_after": ece(softmax(logits, rules.temperature), mnist.test_labels),
        "mnist_test": {**rate(test_reasons), "accuracy_all": float((pred == mnist.test_labels).mean()),
                       "accuracy_answered": float((pred[kept] == mnist.test_labels[kept]).mean())},
        "mnist_test_png": rate(png_reasons),
        "synthetic_digits": rate(syn_reasons),
        "letters": rate(let_reasons),
        "letters_without_lookalikes": rate(other),
        "noise": {kind: rate([r for (k, _), r in zip(noi, noise_reasons, strict=True) if k == kind])
                  for kind in ("uniform", "gaussian", "blobs", "scribble")},
        "seconds": round(time.time() - t0, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    print(f"model {result['model']}: T = {result['temperature']}, reject below {result['reject_below']}")
    print(f"calibration: {source}")
    print("gate: " + ("none" if gate is None else f"{gate.path.name}, refuses below {gate.threshold:.3f}"
                      + ("" if gate.vouch is None else f", vouches from {gate.vouch:.3f}")))
    print(f"ECE (15 bins) validation {pct(cal['ece_before'])} -> {pct(cal['ece_after'])}, "
          f"test {pct(result['ece_test_before'])} -> {pct(result['ece_test_after'])}")
    print(f"{'input':<28}{'n':>6}{'rejected':>10}{'blank':>9}{'not digit':>11}{'low conf':>10}")
    rows = [("MNIST test (digits)", result["mnist_test"]), ("MNIST test as PNG files", result["mnist_test_png"]),
            ("synthetic digits", result["synthetic_digits"]),
            ("letters (all)", result["letters"]),
            ("letters (no look-alikes)", result["letters_without_lookalikes"])]
    rows += [(f"noise: {k}", v) for k, v in result["noise"].items()]
    for name, r in rows:
        print(f"{name:<28}{r['n']:>6}{pct(r['rejected']):>10}{pct(r['blank']):>9}{pct(r['not_digit_like']):>11}"
              f"{pct(r['low_confidence']):>10}")
    m = result["mnist_test"]
    print(f"MNIST test accuracy {pct(m['accuracy_all'])} on all, "
          f"{pct(m['accuracy_answered'])} on the answered")


if __name__ == "__main__":
    main()

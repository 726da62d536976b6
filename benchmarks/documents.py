"""Reading digits from real documents: per-condition accuracy of three preprocessings, side by side.

    python benchmarks/documents.py [--n 200] [--seed 7] [--model path/to/model.onnx] [--only canvas ...]

Generates digits, numbers and non-digits as they come from paper (digitrec.testing.documents: tight
crops, boxed form fields, ruled paper, low-resolution scans, faint pencil, photos; numbers on plain and ruled
paper, in comb fields, with a decimal point; handwritten letters, symbols, scribbles, other pictures; never
MNIST, and nothing here is trained on), and the page's canvas drawings beside them, and reads them through the
model with

- "old": `to_mnist` / `read_number` as they were before issue 13 (benchmarks/_legacy.py loads them from git),
- "new": today's `to_mnist` / `read_number`,
- "naive": what most demos do, invert a light picture and squash it to 28x28 (single digits only).

Single digits: % read right (a refusal counts as wrong), and % refused, per condition and all pooled. Numbers:
% read exactly. Non-digits: % refused ("no digit"), which is the goal there. Also times a 12-megapixel phone
photo through `to_mnist`.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time

import numpy as np
from _legacy import LEGACY_REV, legacy  # benchmarks/_legacy.py, next to this script
from PIL import Image

from digitrec.inference.predictor import load_model
from digitrec.inference.preprocess import to_gray, to_mnist
from digitrec.inference.segment import read_number
from digitrec.testing import documents as docs


def naive(image: Image.Image) -> np.ndarray:
    g = to_gray(image)
    g = 255 - g if g.mean() > 127 else g
    return np.asarray(Image.fromarray(g, "F").resize((28, 28), Image.Resampling.BILINEAR)) / 255


def _pct(v: float) -> str:
    return f"{100 * v:6.1f}%"


def photo_ms(repeat: int = 3) -> float:
    """Median ms of `to_mnist` on a 4000x3000 JPEG of one digit on paper (what a phone sends)."""
    rng = np.random.default_rng(0)
    small = docs.photo(7, rng).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        to_mnist(data)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _head(title: str, table: dict, columns: str) -> None:
    """A table's heading, unless --only left it no rows."""
    if table:
        head = f"{title:<30}{columns}"
        print("\n" + head + "\n" + "-" * len(head))


def single_digits(title: str, table: dict, n: int, rng: np.random.Generator, model, paths: dict) -> None:
    """One row per condition: % read right and % refused, for each preprocessing; with several conditions, a
    last row pools them (the false-refusal goal is over all of a kind's digits)."""
    _head(title, table, "".join(f"{k + ' right':>12}{'refused':>9}" for k in paths))
    pooled = {k: np.zeros(2) for k in paths}  # images read right, images refused
    for name, make in table.items():
        labels = rng.permutation(np.arange(n) % 10)
        images = [make(int(d), rng) for d in labels]
        row = f"{name:<30}"
        for key, prep in paths.items():
            p = model.predict_mnist([prep(im) for im in images])
            digit = np.array([-1 if q.digit is None else q.digit for q in p])
            pooled[key] += (digit == labels).sum(), (digit < 0).sum()
            row += f"{_pct((digit == labels).mean()):>12}{_pct((digit < 0).mean()):>9}"
        print(row, flush=True)
    if len(table) > 1:
        total = n * len(table)
        print(f"{f'all {total} of them':<30}" + "".join(f"{_pct(r / total):>12}{_pct(f / total):>9}"
                                                        for r, f in pooled.values()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="images per condition")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    ap.add_argument("--no-photo-timing", action="store_true")
    ap.add_argument("--only", nargs="+", default=None, metavar="WORD",
                    help="only the conditions whose names start with one of these (other draws follow then)")
    args = ap.parse_args()
    model = load_model(args.model)
    old_pre, old_seg = legacy()
    print("command: python benchmarks/documents.py " + " ".join(sys.argv[1:]))
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()};"
          f" model {model.name} {model.version}; old = commit {LEGACY_REV}")
    rng = np.random.default_rng(args.seed)
    paths = {"old": old_pre.to_mnist, "new": to_mnist, "naive": naive}
    chosen = lambda table: {k: v for k, v in table.items()  # noqa: E731
                            if args.only is None or k.startswith(tuple(args.only))}

    single_digits("single digits", chosen(docs.SINGLE), args.n, rng, model, paths)

    numbers = chosen(docs.NUMBERS)
    _head("numbers (read exactly)", numbers, f"{'old':>12}{'new':>12}")
    for name, make in numbers.items():
        cases = [make(rng) for _ in range(args.n)]
        row = f"{name:<30}"
        for reader in (old_seg.read_number, read_number):
            hits = [_number_text(reader(model, im)) == text for im, text in cases]
            row += f"{_pct(float(np.mean(hits))):>12}"
        print(row, flush=True)

    refusals = chosen(docs.REFUSALS)
    _head("not digits (refused)", refusals, "".join(f"{k:>12}" for k in paths))
    for name, make in refusals.items():
        images = [make(rng) for _ in range(args.n)]
        row = f"{name:<30}"
        for prep in paths.values():
            p = model.predict_mnist([prep(im) for im in images])
            row += f"{_pct(float(np.mean([q.digit is None for q in p]))):>12}"
        print(row, flush=True)
    # After the rest, so that adding it left every other condition's pictures as they were.
    single_digits("the page's drawings", chosen(docs.PAGE), args.n, rng, model, paths)
    print(f"\n{args.n} images per condition; at 98 % one standard error is"
          f" {100 * (0.02 * 0.98 / args.n) ** 0.5:.1f} points.")
    if not args.no_photo_timing:
        print(f"12-megapixel JPEG photo through to_mnist: {photo_ms():.0f} ms (median of 3, in process)")


def _number_text(result) -> str:
    """The number a result reads: its `number`, which carries a decimal point where one was found."""
    return result.number


if __name__ == "__main__":
    main()

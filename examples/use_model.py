"""Use a digitrec model from Python: single images, a batch, probabilities, image files.

    python examples/use_model.py                      # makes a few handwritten-looking digits to read
    python examples/use_model.py a.png b.jpg          # your own images (one digit each)
    python examples/use_model.py --model runs/fast-seed0 a.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from digitrec import load_model
from digitrec.errors import DigitrecError
from digitrec.inference.preprocess import to_mnist


def sample_images(folder: Path) -> list[Path]:
    """Write a few synthetic handwritten digits (canvas drawings, scans, photos) as PNG/JPEG files."""
    from digitrec.training.synth import render

    rng = np.random.default_rng(0)
    paths = []
    for digit, style in [(3, "canvas"), (7, "scan"), (0, "photo"), (4, "canvas"), (9, "scan")]:
        path = folder / f"{digit}_{style}.{'jpg' if style == 'photo' else 'png'}"
        render(digit, rng, style).convert("RGB").save(path)
        paths.append(path)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*", type=Path, help="image files, one digit each")
    ap.add_argument("--model", default=None, help="run folder or .onnx (default: the bundled model)")
    args = ap.parse_args()

    model = load_model(args.model)  # loads once; reuse it for every call
    print(f"model: {model.name} {model.version} (test accuracy {model.test_accuracy})")
    images = args.images or sample_images(Path(tempfile.mkdtemp(prefix="digitrec-example-")))

    # 1. One image at a time: a path, bytes, a PIL image or a photo array all work.
    print("\n# single images")
    readable = []
    for path in images:
        try:
            p = model.predict_image(path)
        except DigitrecError as exc:  # unreadable, empty, truncated: one clear sentence
            print(f"{path.name}: error: {exc}")
            continue
        print(f"{path.name}: " + ("no digit" if p.digit is None else f"{p.digit} ({p.confidence:.1%})"))
        if p.input is not None:
            readable.append(to_mnist(path))  # the same 28x28 image the model saw (p.input)

    # 2. A batch: MNIST-form arrays (N, 28, 28) go to the model in one call.
    if not readable:
        return 1
    batch = np.stack(readable)
    print("\n# batch of", len(batch), "->", model.predict(batch).tolist())

    # 3. Probabilities: (N, 10), each row sums to 1.
    probs = model.predict_proba(batch)
    print("\n# top-3 probabilities")
    for row in probs:
        top = np.argsort(row)[::-1][:3]
        print("  " + ", ".join(f"{d}: {row[d]:.3f}" for d in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

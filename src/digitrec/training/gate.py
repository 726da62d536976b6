"""Training the "is this a digit?" gate (digitrec.gate serves it): a tiny CNN, digits against non-digits.

    python -m digitrec.training.gate [--model src/digitrec/bundled] [--out runs/gate] [--seed 0] [--install]

The digit model stays as it is (outlier exposure inside it cost 0.1-0.3 % MNIST accuracy, docs/no-digit.md);
the gate is a second, separate network of ~14k parameters with one output, "digit" (> threshold) or not.

- **Digits**: the MNIST training split (never validation or test), each shown raw or in its image-path view
  (`to_mnist` of it, so "looks preprocessed" is no cue), plus digits rendered in the training fonts and in
  OpenCV's Hershey stroke fonts (so "drawn with a font" and "drawn with an even pen" are no cue either).
- **Not digits**: the outlier-exposure pool of digitrec.negatives (font letters and symbols, scribbles,
  shapes), letters and symbols written in the Hershey stroke fonts (single-line glyphs, as a pen writes
  them), and textures and filled shapes (gratings, checks, smooth blotches, grain, filled ellipses and
  polygons); `--outlines` adds pen-drawn four-sided outlines (not bundled). Every picture goes through
  `to_mnist`, like a user's image. Look-alike glyphs (O, l, S, Z...) are never negatives. Nothing comes
  from benchmarks/: its letters are its own stroke templates, drawn by another generator, and that benchmark
  measures what the gate never saw.
- **Threshold**: the gate refuses when its logit is below a threshold that refuses at most GATE_FRR of
  the MNIST *validation* digits, raw and in their image-path view, and of synthetic handwritten digits
  (the same sets the card's calibration is fitted on); the test set is never looked at.

`--install` writes gate.onnx beside the model and records it (file, sha256, threshold) in its card.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from digitrec.inference.gate import GATE_FILE, GATE_FRR
from digitrec.training.models import Normalize

HERSHEY = (0, 1, 2, 3, 4, 6, 7)  # cv2.FONT_HERSHEY_* (SIMPLEX ... SCRIPT_COMPLEX); 16 adds italics


class GateNet(nn.Module):
    """(N, 1, 28, 28) in [0, 1] -> (N, 1) logit of "this is a digit". 28 -> 14 -> 7 -> 3, then linear."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            Normalize(),
            nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * w * 9, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# -- pictures ---------------------------------------------------------------------------------------------


def hershey_glyph(ch: str, rng: np.random.Generator) -> Image.Image:
    """One character in an OpenCV Hershey font (single pen strokes), any pen width, posed like a hand's."""
    import cv2

    from digitrec.training.negatives import CANVAS, _jitter

    font = int(HERSHEY[int(rng.integers(len(HERSHEY)))]) | (16 if rng.random() < 0.3 else 0)
    pen = int(rng.integers(2, 13))
    (_, h), _ = cv2.getTextSize(ch, font, 1.0, pen)
    scale = rng.uniform(55, 105) / max(h, 1)
    (tw, th), base = cv2.getTextSize(ch, font, scale, pen)
    a = np.full((CANVAS, CANVAS), 255, np.uint8)
    x = int((CANVAS - tw) / 2 + rng.uniform(-10, 10))
    y = int((CANVAS + th) / 2 + rng.uniform(-10, 10))
    cv2.putText(a, ch, (x, y), font, scale, 0, pen, cv2.LINE_AA)
    return _jitter(Image.fromarray(a), rng)


def texture(rng: np.random.Generator) -> Image.Image:
    """A picture that holds no writing: a grating, checks, blotches, grain, or a filled ellipse/polygon."""
    from PIL import ImageDraw

    side = int(rng.integers(40, 200))
    kind = int(rng.integers(6))
    yy, xx = np.mgrid[0:side, 0:side] / side
    if kind == 0:  # grating, any angle and period, sharp or soft
        th, f = rng.uniform(0, math.pi), rng.uniform(2, 14)
        v = np.sin(2 * math.pi * f * (xx * math.cos(th) + yy * math.sin(th)) + rng.uniform(0, 6.3))
        a = v > rng.uniform(-0.5, 0.5) if rng.random() < 0.6 else (v + 1) / 2
    elif kind == 1:  # checks, possibly rectangular
        fx, fy = rng.integers(2, 9, 2)
        a = (np.floor(xx * fx) + np.floor(yy * fy)) % 2
    elif kind == 2:  # smooth blotches
        k = int(rng.integers(2, 10))
        small = Image.fromarray(np.uint8(255 * rng.random((k, k))))
        a = np.asarray(small.resize((side, side), Image.Resampling.BILINEAR)) / 255.0
    elif kind == 3:  # grain
        a = rng.random((side, side)) < rng.uniform(0.05, 0.5)
    else:  # one or a few filled ellipses or polygons
        im = Image.new("L", (side, side), 0)
        d = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4)) if kind == 5 else 1):
            c = rng.uniform(0.2, 0.8, 2) * side
            r = rng.uniform(0.12, 0.4) * side * np.array([1.0, rng.uniform(0.5, 1.0)])[rng.permutation(2)]
            if rng.random() < 0.5:
                d.ellipse((c[0] - r[0], c[1] - r[1], c[0] + r[0], c[1] + r[1]), fill=255)
            else:
                n = int(rng.integers(3, 7))
                t = rng.uniform(0, 2 * math.pi) + np.sort(rng.uniform(0, 2 * math.pi, n))
                d.polygon([(float(c[0] + r[0] * math.cos(u)), float(c[1] + r[1] * math.sin(u))) for u in t],
                          fill=255)
        a = np.asarray(im) / 255.0
    a = np.asarray(a, np.float64)
    paper, ink = rng.uniform(170, 255), rng.uniform(0, 120)
    grey = paper - a * (paper - ink) + rng.normal(0, rng.uniform(0, 10), a.shape)
    if rng.random() < 0.5:
        grey = 255 - grey
    return Image.fromarray(np.uint8(np.clip(grey, 0, 255)), "L")


def _mnist_form(images, n: int) -> np.ndarray:
    """Up to n pictures through `to_mnist` (blank ones skipped): (k, 28, 28) uint8."""
    from digitrec.inference.preprocess import to_mnist

    out = []
    for im in images:
        a = to_mnist(im)
        if a is not None:
            out.append(np.uint8(np.clip(a * 255 + 0.5, 0, 255)))
        if len(out) == n:
            break
    return np.stack(out)


def drawn_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits in the training fonts and the Hershey fonts, posed and bent as the negatives are."""
    from digitrec.training.negatives import render_glyph, train_fonts, warp

    fonts = train_fonts()

    def gen():
        while True:
            ch = str(int(rng.integers(10)))
            im = hershey_glyph(ch, rng) if rng.random() < 0.5 else \
                render_glyph(ch, fonts[int(rng.integers(len(fonts)))], rng)
            if im is not None:
                yield warp(im, rng) if rng.random() < 0.75 else im

    return _mnist_form(gen(), n)


def drawn_negatives(n: int, rng: np.random.Generator, outlines: float = 0.0) -> np.ndarray:
    """n Hershey letters and symbols (look-alikes left out) and textures, in MNIST form; `outlines` of them
    four-sided outlines instead (two thirds of those taken from the letters' share)."""
    from digitrec.training.negatives import LOOKALIKES, outline, warp

    chars = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+*=#@&%$?<>^~"
             if c not in LOOKALIKES]

    def gen():
        while True:
            u = rng.random()
            if u < 0.7 - 2 * outlines / 3:
                im = hershey_glyph(chars[int(rng.integers(len(chars)))], rng)
                yield warp(im, rng) if rng.random() < 0.75 else im
            elif u < 1 - outlines:
                yield texture(rng)
            else:
                yield outline(rng)

    return _mnist_form(gen(), n)


def low_res(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n of these MNIST-form pictures (uint8, white on black) as a coarse scan sends them: shrunk to 7-16 px on
    light paper, sometimes upscaled again by the sender, then through `to_mnist`. Digits and non-digits both
    get it, so that "blurry" is no cue for either side."""

    resample = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.NEAREST)

    def gen():
        while True:
            a = images[int(rng.integers(len(images)))].astype(np.float32)
            paper, ink = rng.uniform(150, 245), rng.uniform(20, 110)
            im = Image.fromarray(np.uint8(paper - a / 255 * (paper - ink)), "L")
            side = int(rng.integers(7, 17))
            im = im.resize((side, side), Image.Resampling.BOX)
            if rng.random() < 0.5:
                f = int(rng.integers(4, 13))
                im = im.resize((side * f, side * f), resample[int(rng.integers(3))])
            yield im

    return _mnist_form(gen(), n)


def build_data(seed: int, n_views: int, n_pool: int, n_drawn: int, outlines: float = 0.0,
               log=print) -> dict[str, np.ndarray]:
    """Every training picture, made once: uint8 arrays of (k, 28, 28)."""
    from digitrec.inference.preprocess import to_mnist
    from digitrec.training.data import load_mnist, stratified_split
    from digitrec.training.negatives import negatives

    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    train = stratified_split(mnist.train_labels).train
    digits = mnist.train_images[train]
    t0 = time.time()
    pick = rng.choice(len(digits), min(n_views, len(digits)), replace=False)
    views = [to_mnist(digits[i]) for i in pick]
    views = np.stack([np.uint8(np.clip(v * 255 + 0.5, 0, 255)) for v in views if v is not None])
    log(f"{len(views)} image-path views of training digits ({time.time() - t0:.0f} s)")
    t0 = time.time()
    drawn = drawn_digits(n_drawn, rng)
    log(f"{len(drawn)} font and Hershey digits ({time.time() - t0:.0f} s)")
    t0 = time.time()
    pool = negatives(n_pool, seed=seed + 1)
    log(f"{len(pool)} outlier-exposure negatives ({time.time() - t0:.0f} s)")
    t0 = time.time()
    other = drawn_negatives(n_drawn, rng, outlines)
    log(f"{len(other)} Hershey letters/symbols and textures ({time.time() - t0:.0f} s)")
    return {"digits": digits, "views": views, "drawn": drawn, "pool": pool, "other": other}


# -- training ---------------------------------------------------------------------------------------------


def train_gate(data: dict[str, np.ndarray], *, seed: int = 0, epochs: int = 6, batch: int = 256,
               lr: float = 3e-3, width: int = 16, log=print) -> GateNet:
    """BCE on digits (1) against non-digits (0), balanced per batch, both with the digits' augmentation."""
    from digitrec.training.augment import AugmentConfig, random_affine

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    f = lambda a: torch.from_numpy(a).float().div_(255).unsqueeze(1)  # noqa: E731
    pos = torch.cat([f(data[k]) for k in ("digits", "views", "drawn", "digits_low") if k in data])
    neg = torch.cat([f(data[k]) for k in ("pool", "other", "negatives_low") if k in data])
    half = batch // 2
    steps = math.ceil(len(pos) / half) * epochs
    model = GateNet(width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    aug = AugmentConfig()
    target = torch.cat([torch.ones(half, 1), torch.zeros(half, 1)])
    model.train()
    t0, step = time.time(), 0
    for epoch in range(epochs):
        order = torch.randperm(len(pos), generator=gen)
        total = 0.0
        for i in range(0, len(order) - half + 1, half):
            x = torch.cat([pos[order[i : i + half]], neg[torch.randint(len(neg), (half,), generator=gen)]])
            x = random_affine(x, aug, generator=gen)
            loss = F.binary_cross_entropy_with_logits(model(x), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            step += 1
        log(f"epoch {epoch + 1}/{epochs}: loss {total / max(1, len(order) // half):.4f} ({time.time() - t0:.0f} s)")
    return model.eval()


def gate_logits(model: nn.Module, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images, np.float32).reshape(-1, 1, 28, 28))
    if x.numel() and x.max() > 1:
        x = x / 255
    with torch.no_grad():
        return torch.cat([model(x[i : i + 2048]) for i in range(0, len(x), 2048)])[:, 0].numpy()


def validation_sets(synthetic: int = 500) -> dict[str, np.ndarray]:
    """The digits the threshold is fitted on: MNIST validation (raw and image-path views) + synthetic."""
    from digitrec.inference.preprocess import to_mnist
    from digitrec.training.calibrate import synthetic_digits
    from digitrec.training.data import load_mnist, stratified_split

    mnist = load_mnist()
    val = mnist.train_images[stratified_split(mnist.train_labels).val].astype(np.float32) / 255
    views = np.stack([v for v in (to_mnist(np.uint8(a * 255 + 0.5)) for a in val) if v is not None])
    return {"val": val, "val_views": views, "synthetic": synthetic_digits(synthetic)[0]}


def fit_threshold(scores: dict[str, np.ndarray], frr: float = GATE_FRR) -> float:
    """The largest threshold that refuses (logit < t) at most `frr` of each set of real digits."""
    return float(min(np.sort(s)[int(math.floor(frr * len(s)))] for s in scores.values()))


def main(argv: list[str] | None = None) -> None:
    from digitrec.training.export import export_onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="src/digitrec/bundled", help="model folder whose card gets the gate")
    ap.add_argument("--out", default="runs/gate", help="run folder (data cache, gate.onnx, gate.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16, help="channels of the first stage (then 2x, 2x)")
    ap.add_argument("--views", type=int, default=27_000, help="training digits also shown through to_mnist")
    ap.add_argument("--pool", type=int, default=20_000, help="digitrec.negatives pictures")
    ap.add_argument("--drawn", type=int, default=8_000, help="font/Hershey digits, and Hershey negatives")
    ap.add_argument("--low-res", type=int, default=10_000, help="digits (and as many non-digits) as coarse scans")
    ap.add_argument("--outlines", type=float, default=0.0,
                    help="share of the drawn negatives that are four-sided outlines (not bundled: docs/no-digit.md)")
    ap.add_argument("--frr", type=float, default=GATE_FRR)
    ap.add_argument("--install", action="store_true", help="copy gate.onnx beside --model, record it in the card")
    args = ap.parse_args(argv)
    if not 0 <= args.outlines <= 0.9:  # beyond 0.9 the letters' share would be gone
        ap.error(f"--outlines must be between 0 and 0.9, got {args.outlines}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-outlines{args.outlines:g}" if args.outlines else ""
    cache = out / f"data-seed{args.seed}-{args.views}-{args.pool}-{args.drawn}{tag}.npz"
    if cache.is_file():
        data = dict(np.load(cache))
    else:
        data = build_data(args.seed, args.views, args.pool, args.drawn, args.outlines)
        np.savez_compressed(cache, **data)
    if args.low_res and "digits_low" not in data:  # made from the pictures above, so cached apart
        low = out / f"low-seed{args.seed}-{args.low_res}{tag}.npz"
        if low.is_file():
            data.update(np.load(low))
        else:
            rng = np.random.default_rng(args.seed + 2)
            extra = {"digits_low": low_res(data["digits"], args.low_res, rng),
                     "negatives_low": low_res(np.concatenate([data["pool"], data["other"]]), args.low_res, rng)}
            np.savez_compressed(low, **extra)
            data.update(extra)
        print(f"{len(data['digits_low'])} digits and {len(data['negatives_low'])} non-digits at low resolution")
    model = train_gate(data, seed=args.seed, epochs=args.epochs, width=args.width)
    onnx = out / GATE_FILE
    val = validation_sets()
    diff = export_onnx(model, onnx, check_images=val["val"][:256])
    info = describe(onnx, val, data, args.frr)
    info.update({
        "parameters": sum(p.numel() for p in model.parameters()), "onnx_torch_max_abs_diff": diff,
        "command": f"python -m digitrec.training.gate --seed {args.seed} --epochs {args.epochs} --frr {args.frr}"
                   f" --low-res {args.low_res}" + (f" --width {args.width}" if args.width != 16 else "")
                   + (f" --outlines {args.outlines:g}" if args.outlines else "") + " --install",
    })
    (out / "gate.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if args.install:
        install(onnx, info, Path(args.model))


def describe(onnx: Path, val: dict[str, np.ndarray], data: dict[str, np.ndarray], frr: float) -> dict:
    """The card's "gate" entry for an exported gate: its sha256, the threshold fitted on `val`, and what it
    refuses of the validation digits and of its own training negatives at that threshold."""
    from digitrec.fileio import sha256_file as file_sha256
    from digitrec.inference.gate import Gate

    gate = Gate(onnx, 0.0)

    def score(a: np.ndarray) -> np.ndarray:
        x = np.asarray(a, np.float32).reshape(-1, 1, 28, 28)
        return gate.scores(x / 255 if a.dtype == np.uint8 else x)

    scores = {k: score(v) for k, v in val.items()}
    threshold = fit_threshold(scores, frr)
    return {
        "file": GATE_FILE, "sha256": file_sha256(onnx), "threshold": threshold, "frr": frr,
        "val_refused": {k: float(np.mean(s < threshold)) for k, s in scores.items()},
        "train_negatives_refused": {k: float(np.mean(score(data[k]) < threshold)) for k in ("pool", "other")},
        "fitted_on": "MNIST validation split (raw and through to_mnist) + 500 synthetic handwritten digits",
    }


def install(onnx: Path, info: dict, folder: Path) -> None:
    """Copy gate.onnx beside the model in `folder` and record `info` under "gate" in its card."""
    from digitrec.card import CARD_FILE, ModelCard

    (folder / GATE_FILE).write_bytes(onnx.read_bytes())
    card_path = folder / CARD_FILE
    replace(ModelCard.read(card_path), gate=info).write(card_path)
    print(f"installed {folder / GATE_FILE} and its entry in {card_path}")


if __name__ == "__main__":
    main()

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
- **Vouch**: the logit that at most VOUCH_FRACTION of non-digits the gate never saw reach (5,000 of the same
  kinds as its negatives, made from other seeds). At or above it the predictor answers a digit that the card's
  rules would refuse for low confidence alone: the picture is surely a digit, the model only hesitates
  between two (a 1 with a long flag, a 6 whose loop closes high).

`--install` writes gate.onnx beside the model and records it (file, sha256, threshold, vouch) in its card;
`--gate FILE` fits the threshold and vouch of an existing gate.onnx instead of training one.
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
from torch import nn

from digitrec.inference.gate import GATE_FILE, GATE_FRR
from digitrec.training.gate_pictures import training_data, unseen_negatives
from digitrec.training.models import Normalize

VOUCH_FRACTION = 0.005  # at most this fraction of unseen non-digits may score "vouch" or more
TRAINING_RECORD = ("train_negatives_refused", "parameters", "onnx_torch_max_abs_diff")  # kept by --gate


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


def fit_vouch(scores: np.ndarray, fraction: float = VOUCH_FRACTION) -> float:
    """The lowest logit that at most `fraction` of these non-digits' logits reach (logit >= vouch)."""
    s = np.sort(np.asarray(scores, np.float32))
    allowed = int(math.floor(fraction * len(s)))
    return float(np.nextafter(s[len(s) - allowed - 1], np.float32(np.inf)))


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
    ap.add_argument("--gate", type=Path, default=None, metavar="FILE",
                    help="fit the threshold and vouch of this gate.onnx (made with these options) instead of training")
    args = ap.parse_args(argv)
    if not 0 <= args.outlines <= 0.9:  # beyond 0.9 the letters' share would be gone
        ap.error(f"--outlines must be between 0 and 0.9, got {args.outlines}")
    if args.gate is not None and not args.gate.is_file():
        ap.error(f"--gate {args.gate}: no such file")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    val = validation_sets()
    unseen = unseen_negatives(args.seed, args.outlines)
    if args.gate is None:
        data = training_data(out, seed=args.seed, views=args.views, pool=args.pool, drawn=args.drawn,
                             low_res_n=args.low_res, outlines=args.outlines)
        model = train_gate(data, seed=args.seed, epochs=args.epochs, width=args.width)
        onnx = out / GATE_FILE
        info = {"parameters": sum(p.numel() for p in model.parameters()),
                "onnx_torch_max_abs_diff": export_onnx(model, onnx, check_images=val["val"][:256])}
        info = {**describe(onnx, val, args.frr, unseen, data), **info}
    else:  # an existing file: what its training measured stays, when the card lists this very file
        from digitrec.card import CARD_FILE, ModelCard

        onnx, before = args.gate, ModelCard.read(Path(args.model) / CARD_FILE).gate or {}
        info = describe(onnx, val, args.frr, unseen)
        if before.get("sha256") == info["sha256"]:
            info = {**info, **{k: before[k] for k in TRAINING_RECORD if k in before}}
    info.update({
        "command": f"python -m digitrec.training.gate --seed {args.seed} --epochs {args.epochs} --frr {args.frr}"
                   f" --low-res {args.low_res}" + (f" --width {args.width}" if args.width != 16 else "")
                   + (f" --outlines {args.outlines:g}" if args.outlines else "") + " --install",
    })
    (out / "gate.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if args.install:
        install(onnx, info, Path(args.model))


def describe(onnx: Path, val: dict[str, np.ndarray], frr: float, unseen: np.ndarray,
             data: dict[str, np.ndarray] | None = None) -> dict:
    """The card's "gate" entry for an exported gate: its sha256, the threshold fitted on `val`, the vouch fitted
    on `unseen` non-digits, and what it refuses of the validation digits (and of its training negatives)."""
    from digitrec.fileio import sha256_file as file_sha256
    from digitrec.inference.gate import Gate

    gate = Gate(onnx, 0.0)

    def score(a: np.ndarray) -> np.ndarray:
        x = np.asarray(a, np.float32).reshape(-1, 1, 28, 28)
        return gate.scores(x / 255 if a.dtype == np.uint8 else x)

    scores = {k: score(v) for k, v in val.items()}
    threshold = fit_threshold(scores, frr)
    vouch = fit_vouch(score(unseen))
    return {
        "file": GATE_FILE, "sha256": file_sha256(onnx), "threshold": threshold, "frr": frr,
        "val_refused": {k: float(np.mean(s < threshold)) for k, s in scores.items()},
        **({} if data is None else {"train_negatives_refused": {
            k: float(np.mean(score(data[k]) < threshold)) for k in ("pool", "other")}}),
        "fitted_on": "MNIST validation split (raw and through to_mnist) + 500 synthetic handwritten digits",
        "vouch": vouch, "vouch_fraction": VOUCH_FRACTION,
        "val_vouched": {k: float(np.mean(s >= vouch)) for k, s in scores.items()},
        "vouch_fitted_on": f"{len(unseen)} non-digits of the training kinds the gate never saw "
                           "(training.gate_pictures.unseen_negatives)",
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

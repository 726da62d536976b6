"""Non-digits to train against (outlier exposure, Hendrycks et al. 2019): letters, symbols, scribbles, shapes.

A network trained on digits alone answers "7 (93%)" for a letter: nothing ever told it what is not a digit.
Outlier exposure adds such images to training with a loss that pushes their softmax towards uniform, so the
calibrated confidence threshold of `digitrec.training.calibrate` refuses them, while the 10-output ONNX contract stays.

The negatives are letters and symbols rendered from the machine's fonts (random size, slant, rotation, stretch
and pen width), random scribbles and shapes, each put through `to_mnist` exactly as a user's image is. Glyphs
that people also write as digits (O/0, l/1, S/5, Z/2, B/8, q/9...) are left out: pushing them to uniform
would teach the model to doubt real digits. The DejaVu Sans family is held out of training (it is the font
of benchmarks/calibration.py's letters), so that benchmark measures fonts and hands the model never saw.
Training only: the pool is made once per run (deterministic in its seed); each batch then gets the same random
affine augmentation as the digits, and nothing more. The elastic warp is applied to the large rendering, before
`to_mnist`: a negative resampled at 28x28 more often than a digit is would be blurrier, and a network finds that
cue faster than any shape (a first attempt that warped the pool per batch learned "blurry = not a digit", and
answered the untouched pool with 79 % confidence).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
HELD_OUT_FAMILY = "DejaVuSans"  # DejaVuSans*.ttf (Sans, Condensed, Mono): never trained on
# Letters and symbols that are, or are often written like, digits: never negatives. T is not among them (since
# the gate of 2026-12-01): its stem leaves the bar in the middle, a 7's at its end, and a gate that had never seen
# a T let nearly every drawn T through as a 7.
LOOKALIKES = set("OoQDIlijJSsZzBbgqG|/\\()[]{}!-_~.,:;'`\"ØøßÞþ")
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in LOOKALIKES)
SYMBOLS = "+*=#@&%$?<>^×÷±§¶€£¥©®µ¿æÆœŒ"
KINDS = ("letter", "symbol", "scribble", "shape")
KIND_WEIGHTS = (0.55, 0.15, 0.18, 0.12)
CANVAS = 160


def train_fonts() -> list[Path]:
    """The TrueType fonts negatives are drawn in: DejaVu and Liberation, minus the held-out family."""
    fonts = sorted(p for d in FONT_DIRS if d.is_dir() for p in d.glob("*.ttf")
                   if not p.name.startswith((HELD_OUT_FAMILY, "DejaVuMath")))
    return fonts


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _has_glyph(font: ImageFont.FreeTypeFont, ch: str) -> bool:
    """False for a character the font lacks (it would draw an empty box, a 0 in all but name)."""
    mask = font.getmask(ch)
    ref = font.getmask("\uffff")
    return mask.size != ref.size or bytes(mask) != bytes(ref)


def _jitter(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random rotation, shear and stretch about the centre (white fill: paper)."""
    angle = math.radians(rng.uniform(-25, 25))
    shear = rng.uniform(-0.35, 0.35)
    sx, sy = rng.uniform(0.7, 1.3, 2)
    cos, sin = math.cos(angle), math.sin(angle)
    # Output -> input map: (rotation . shear . scale)^-1, about the centre.
    m = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
    inv = np.linalg.inv(m)
    c = CANVAS / 2
    off = np.array([c, c]) - inv @ np.array([c, c])
    coeffs = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
    return im.transform(im.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=255)


def render_glyph(ch: str, font_path: Path, rng: np.random.Generator) -> Image.Image | None:
    """One character in black on white at a random size, pen width and pose; None if the font lacks it."""
    font = _font(str(font_path), int(rng.integers(50, 110)))
    if not _has_glyph(font, ch):
        return None
    im = Image.new("L", (CANVAS, CANVAS), 255)
    d = ImageDraw.Draw(im)
    left, top, right, bottom = d.textbbox((0, 0), ch, font=font)
    x = (CANVAS - (right - left)) / 2 - left + rng.uniform(-10, 10)
    y = (CANVAS - (bottom - top)) / 2 - top + rng.uniform(-10, 10)
    pen = int(rng.integers(0, 4))
    d.text((x, y), ch, fill=0, font=font, stroke_width=pen, stroke_fill=0)
    return _jitter(im, rng)


def scribble(rng: np.random.Generator) -> Image.Image:
    """A tangle of strokes: a random walk of 5-14 points, straight or curved, any pen width."""
    im = Image.new("L", (CANVAS, CANVAS), 255)
    d = ImageDraw.Draw(im)
    n = int(rng.integers(5, 15))
    pts = [tuple(float(v) for v in rng.uniform(15, CANVAS - 15, 2)) for _ in range(n)]
    d.line(pts, fill=0, width=int(rng.integers(3, 12)), joint="curve")
    return im


def shape(rng: np.random.Generator) -> Image.Image:
    """A drawn shape that is no digit: box, triangle, star, cross-hatching, zigzag, spiral, blobs or dots.
    Plain circles and single lines are left out: they are 0s and 1s."""
    im = Image.new("L", (CANVAS, CANVAS), 255)
    d = ImageDraw.Draw(im)
    w = int(rng.integers(3, 10))
    c, r = CANVAS / 2, rng.uniform(35, 65)
    kind = int(rng.integers(0, 8))
    if kind == 0:  # box
        d.rectangle((c - r, c - r * rng.uniform(0.5, 1), c + r, c + r * rng.uniform(0.5, 1)), outline=0, width=w)
    elif kind in (1, 2):  # triangle (3 points) or star (5 points, every second joined)
        k = 3 if kind == 1 else 5
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [(c + r * math.cos(a0 + 2 * math.pi * i / k), c + r * math.sin(a0 + 2 * math.pi * i / k))
               for i in range(k)]
        if kind == 2:
            pts = [pts[(2 * i) % k] for i in range(k)]
        d.line([*pts, pts[0]], fill=0, width=w, joint="curve")
    elif kind == 3:  # cross-hatching: a grid of 2-4 lines each way
        for i in np.linspace(-r, r, int(rng.integers(2, 5))):
            d.line((c - r, c + i, c + r, c + i), fill=0, width=w)
            d.line((c + i, c - r, c + i, c + r), fill=0, width=w)
    elif kind == 4:  # zigzag
        k = int(rng.integers(4, 9))
        d.line([(c - r + 2 * r * i / k, c + (r / 2 if i % 2 else -r / 2)) for i in range(k + 1)], fill=0, width=w)
    elif kind == 5:  # spiral of 1.5-3 turns
        t = np.linspace(0, 2 * math.pi * rng.uniform(1.5, 3), 80)
        rr = r * t / t[-1]
        d.line(list(zip(c + rr * np.cos(t), c + rr * np.sin(t), strict=True)), fill=0, width=w, joint="curve")
    elif kind == 6:  # a few filled blobs
        for _ in range(int(rng.integers(2, 6))):
            x, y = rng.uniform(20, CANVAS - 20, 2)
            s = rng.uniform(6, 22)
            d.ellipse((x - s, y - s, x + s, y + s), fill=0)
    else:  # scattered dots and dashes
        for _ in range(int(rng.integers(4, 12))):
            x, y = rng.uniform(15, CANVAS - 15, 2)
            dx, dy = rng.uniform(-10, 10, 2)
            d.line((x, y, x + dx, y + dy), fill=0, width=w)
    return _jitter(im, rng)


def outline(rng: np.random.Generator) -> Image.Image:
    """A pen-drawn four-sided outline with sharp corners (a box, diamond, rhombus or kite, any rotation): at
    28x28 a bold one is close to a 0, and the bundled gate lets most of them through. `gate --outlines` adds them to
    its negatives; not bundled, because closed 4s are then refused more often (docs/no-digit.md). Five and six
    sides are left out: the synthetic handwritten 0s the threshold is fitted on include such polygons."""
    import cv2

    t = rng.uniform(0, 2 * math.pi) + 2 * math.pi * (np.arange(4) + rng.uniform(-0.08, 0.08, 4)) / 4
    r = rng.uniform(35, 65) * np.array([1.0, rng.uniform(0.5, 1.0)])[[0, 1, 0, 1]]
    pts = np.stack([CANVAS / 2 + r * np.cos(t), CANVAS / 2 + r * np.sin(t)], 1)
    a = np.full((CANVAS, CANVAS), 255, np.uint8)
    cv2.polylines(a, [np.int32(np.round(pts * 16))], True, 0, int(rng.integers(2, 13)), cv2.LINE_AA, 4)
    return _jitter(Image.fromarray(a), rng)


def sample(rng: np.random.Generator, fonts: list[Path]) -> tuple[str, Image.Image | None]:
    """One negative picture and its kind; most are bent a little, as a hand would (`warp`)."""
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    if kind in ("letter", "symbol"):
        chars = LETTERS if kind == "letter" else SYMBOLS
        im = render_glyph(chars[int(rng.integers(len(chars)))], fonts[int(rng.integers(len(fonts)))], rng)
    else:
        im = scribble(rng) if kind == "scribble" else shape(rng)
    return kind, warp(im, rng) if im is not None and rng.random() < 0.75 else im


def warp(im: Image.Image, rng: np.random.Generator, alpha: float = 0.08) -> Image.Image:
    """`elastic` on a black-on-white picture (warped as ink on black, so the border fills with paper)."""
    ink = torch.from_numpy(255 - np.asarray(im, np.float32))[None, None]
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    out = elastic(ink, alpha, generator=gen)[0, 0].numpy()
    return Image.fromarray(np.uint8(np.clip(255 - out, 0, 255) + 0.5), "L")


def negatives(n: int, seed: int = 0) -> np.ndarray:
    """n non-digits in MNIST form: (n, 28, 28) uint8, white ink on black, each through `to_mnist`."""
    from digitrec.inference.preprocess import to_mnist

    fonts = train_fonts()
    if not fonts:
        raise FileNotFoundError(f"no TrueType fonts in {', '.join(map(str, FONT_DIRS))} to render negatives from")
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    k = 0
    while k < n:
        _, im = sample(rng, fonts)
        a = None if im is None else to_mnist(im)
        if a is not None:
            out[k] = np.uint8(np.clip(a * 255 + 0.5, 0, 255))
            k += 1
    return out


def elastic(images: torch.Tensor, alpha: float = 0.12, generator: torch.Generator | None = None) -> torch.Tensor:
    """A smooth random warp per image of (N, 1, H, W): a 4x4 field of displacements (in units of half the
    side) upsampled bicubically, so strokes bend and wobble as a hand's do, not jump pixel by pixel."""
    n, _, h, w = images.shape
    coarse = (torch.rand(n, 2, 4, 4, generator=generator) * 2 - 1) * alpha
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False) + field
    return F.grid_sample(images, grid.to(images), mode="bilinear", padding_mode="zeros", align_corners=False)


def uniform_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy from the uniform distribution to the softmax, minus its minimum log(K): 0 when every
    class gets 1/K, as outlier exposure asks of a non-digit."""
    return -(F.log_softmax(logits.float(), 1).mean(1)).mean() - math.log(logits.shape[1])


def pool(n: int, seed: int) -> torch.Tensor:
    """`negatives(n, seed)` as a training tensor: float32 (n, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(negatives(n, seed)).float().div_(255).unsqueeze(1)


def image_path_views(x: torch.Tensor) -> torch.Tensor:
    """Each training digit (N, 1, 28, 28) as the serving path sees it: put through `to_mnist` like a user's
    image (a blank result keeps the original). Every negative has that look, so the digits must have it too,
    or the network learns "looks preprocessed = not a digit" and refuses real digits sent as files (a first
    run without these views refused 2.3 % of MNIST test digits sent as PNG files, 0.9 % as arrays)."""
    from digitrec.inference.preprocess import to_mnist

    arrays = np.uint8(np.clip(x[:, 0].numpy() * 255 + 0.5, 0, 255))
    out = x.clone()
    for i, a in enumerate(arrays):
        v = to_mnist(a)
        if v is not None:
            out[i, 0] = torch.from_numpy(v)
    return out


class Exposure:
    """A run's outlier exposure: the negatives pool, and the digits' image-path views."""

    SWAP = 0.5  # the share of each batch's digits shown in their image-path view

    def __init__(self, negatives_pool: torch.Tensor, views: torch.Tensor) -> None:
        self.pool, self.views = negatives_pool, views

    def to(self, device: torch.device) -> Exposure:
        return Exposure(self.pool.to(device), self.views.to(device))

    def digits(self, x: torch.Tensor, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch x[idx], about half of it replaced by its image-path view."""
        swap = (torch.rand(len(idx), generator=generator) < self.SWAP).to(x.device)[:, None, None, None]
        i = idx.to(x.device)
        return torch.where(swap, self.views[i], x[i])

    def draw(self, k: int, augment, generator: torch.Generator) -> torch.Tensor:
        """k negatives picked at random from the pool, augmented exactly as the digits are (one resampling)."""
        from digitrec.training.augment import random_affine

        idx = torch.randint(len(self.pool), (k,), generator=generator)
        return random_affine(self.pool[idx.to(self.pool.device)], augment, generator=generator)

"""Multi-digit numbers drawn with one pen, as a person writes them on the page or on paper.

Each digit's strokes come from `digitrec.training.synth.stroke_path` (random shape, slant and pen path), scaled to a
common height and placed left to right with a gap (negative: touching/overlapping digits).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitrec.training.synth import stroke_path


def number_strokes(
    digits: str, seed: int = 0, *, height: float = 160, gap: float = 0.3, margin: float = 40,
    jitter: float = 0.1,
) -> tuple[list[list[list[tuple[float, float]]]], int, int]:
    """Strokes per digit in canvas pixels, and the canvas (width, height). `gap` is in digit heights."""
    rng = np.random.default_rng(seed)
    placed, x = [], margin
    for ch in digits:
        strokes = [np.asarray(s) for s in stroke_path(int(ch), rng, 280)]
        pts = np.vstack(strokes)
        lo, hi = pts.min(0), pts.max(0)
        h = height * rng.uniform(1 - jitter, 1 + jitter)
        k = h / max(hi[1] - lo[1], 1e-6)
        y0 = margin + (height * (1 + jitter) - h) * rng.uniform(0, 1)
        moved = [(s - lo) * k + np.array([x, y0]) for s in strokes]
        placed.append([[(float(a), float(b)) for a, b in s] for s in moved])
        x += (hi[0] - lo[0]) * k + gap * height
    width = int(x - gap * height + margin)
    return placed, width, int(height * (1 + jitter) + 2 * margin)


def draw_number(digits: str, seed: int = 0, *, pen: float = 10, **kw) -> Image.Image:
    """Black round strokes on white, like the page's canvas (PNG-ready, mode L)."""
    placed, w, h = number_strokes(digits, seed, **kw)
    ss = 2
    im = Image.new("L", (w * ss, h * ss), 255)
    d = ImageDraw.Draw(im)
    r = pen * ss / 2
    for strokes in placed:
        for s in strokes:
            pts = [(x * ss, y * ss) for x, y in s]
            d.line(pts, fill=0, width=round(2 * r))
            for x, y in pts:
                d.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return im.resize((w, h), Image.Resampling.BOX)


def on_paper(im: Image.Image, seed: int = 0, size: tuple[int, int] | None = None) -> Image.Image:
    """The drawing as a photo of paper: off-white sheet, uneven light, grain, blue-black ink, slight blur."""
    rng = np.random.default_rng(seed)
    w, h = size or im.size
    ink = 1 - np.asarray(im.convert("L"), np.float32) / 255
    sheet = np.zeros((h, w), np.float32)
    oy, ox = (h - ink.shape[0]) // 2, (w - ink.shape[1]) // 2
    sheet[oy : oy + ink.shape[0], ox : ox + ink.shape[1]] = ink
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 0.85 + 0.15 * (xx - yy)
    paper = np.array([235, 230, 215], np.float32) * light[..., None]
    rgb = paper * (1 - sheet[..., None]) + np.array([30, 35, 90], np.float32) * sheet[..., None]
    rgb += rng.normal(0, 4, (h, w, 1))
    return Image.fromarray(np.uint8(np.clip(rgb, 0, 255)), "RGB").filter(ImageFilter.GaussianBlur(0.6))

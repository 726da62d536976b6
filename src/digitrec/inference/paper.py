"""Ink versus paper: which side of the picture is ink, and the paper's shading taken away.

Split from preprocess.py; `preprocess` and `segment` call it on the working image. NumPy + Pillow, and
`document.border_dark_paper` (OpenCV) for pictures whose ink fills much of them (serving half, no torch).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitrec.inference import document


def ink_up(g: np.ndarray) -> np.ndarray:
    """Return the image with ink bright (see `dark_ink`)."""
    return 255.0 - g if dark_ink(thumb(Image.fromarray(np.ascontiguousarray(g, np.float32)))) else g


def dark_ink(thumb: Image.Image) -> bool:
    """Is the ink darker than the paper? Paper is most of the picture, so the median is paper; ink is the
    far tail on one side of it. Compare the extreme 2% on each side: symmetric noise adds to both, and
    a lighting gradient stretches both but never as far as ink on paper does. `thumb`: see `thumb`."""
    size = thumb.width * thumb.height
    n, k = max(1, size // 50), size // 2
    if thumb.mode == "L":  # whole levels: the same three statistics from the histogram, exactly
        count = np.array(thumb.histogram())
        before = np.cumsum(count) - count  # pixels below each level
        levels = np.arange(256)
        median = float(np.searchsorted(before + count, k, "right"))
        low = (np.clip(n - before, 0, count) * levels).sum() / n  # the n darkest pixels' mean
        above = size - before - count
        high = (np.clip(n - above, 0, count) * levels).sum() / n  # the n brightest pixels' mean
        return median - low > high - median
    v = np.partition(np.asarray(thumb).ravel(), (n - 1, k, size - n))  # the three order statistics we
    median = float(v[k])  # need, not a sort
    return median - v[:n].mean() > v[-n:].mean() - median


def thumb(im: Image.Image) -> Image.Image:
    """Box-filtered to at most 128 px on the long side, by an integer factor (3x faster than resizing)."""
    factor = -(-max(im.size) // 128)
    return im.reduce(factor) if factor > 1 else im


def flatten(x: np.ndarray, n: int = 8, low: np.ndarray | None = None) -> np.ndarray:
    """Subtract the paper's shading (light gradient, vignette, shadow): a quadratic surface fitted to
    the 20th percentile of each of n x n blocks. Blocks that a thick stroke fills stand out above the
    surface and are dropped from the fit, so ink never passes for background."""
    h, w = x.shape
    bh, bw, side = -(-h // n), -(-w // n), max(h, w)
    low = paper_level(x, n) if low is None else low
    if not low.any():  # the fit below would be exactly 0: x is already flat (x >= 0 from every caller;
        return x if x.min() >= 0 else np.maximum(x, 0)  # checked to be sure)

    def basis(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:  # coordinates in -1..1 of the long side
        return [np.ones_like(x * y), x, y, x * x, x * y, y * y]

    c = np.arange(n) + 0.5
    v, u = np.meshgrid(c * bh * 2 / side - 1, c * bw * 2 / side - 1, indexing="ij")
    a = np.stack([b.ravel() for b in basis(v, u)], axis=1)
    keep = np.ones(n * n, bool)
    for _ in range(3):
        coef = np.linalg.lstsq(a[keep], low[keep], rcond=None)[0]
        r = low - a @ coef
        keep = r < 3 * (1.4826 * np.median(np.abs(r[keep])) + 2)
    if np.abs(coef).sum() < 0.01:  # |x|, |y| <= 1, so the surface is nowhere 0.01 grey levels: flat paper
        return x if x.min() >= 0 else np.maximum(x, 0)  # (a canvas with blocks full of ink)
    # The surface c0 + c1 x + c2 y + c3 x^2 + c4 xy + c5 y^2 as a few row/column terms, in float32.
    c0, c1, c2, c3, c4, c5 = coef.astype(np.float32)
    yy = ((np.arange(h, dtype=np.float32) + 0.5) * np.float32(2 / side) - 1)[:, None]
    xx = ((np.arange(w, dtype=np.float32) + 0.5) * np.float32(2 / side) - 1)[None, :]
    out = x - (c0 + c2 * yy + c5 * yy * yy)
    out -= (c1 + c4 * yy) * xx
    out -= c3 * xx * xx
    return np.maximum(out, 0, out=out)


def paper_level(x: np.ndarray, n: int = 8) -> np.ndarray:
    """The 20th percentile of each of n x n blocks (row by row), from every 4th pixel: plenty."""
    h, w = x.shape
    bh, bw = -(-h // n), -(-w // n)
    ri = np.minimum((np.arange(n)[:, None] * bh + np.arange(0, bh, 2)).ravel(), h - 1)  # clamped indices
    ci = np.minimum((np.arange(n)[:, None] * bw + np.arange(0, bw, 2)).ravel(), w - 1)  # = edge padding
    lr, lc = len(ri) // n, len(ci) // n
    blocks = x.take(ri, axis=0).take(ci, axis=1).reshape(n, lr, n, lc).transpose(0, 2, 1, 3).reshape(n * n, -1)
    # A block that is mostly exactly 0 (clean paper, ink up) has a 20th percentile of exactly 0: only the
    # others need sorting (none at all on a drawn canvas).
    k = blocks.shape[1]
    busy = k - np.count_nonzero(blocks, axis=1) < int(0.2 * (k - 1)) + 2
    if blocks.min() < 0:
        busy[:] = True
    low = np.zeros(n * n)
    if busy.any():
        low[busy] = np.percentile(blocks[busy], 20, axis=1)
    return low


def polarity(thumb: Image.Image) -> tuple[bool, bool]:
    """Is the ink darker than the paper, and does the picture's border say so clearly? `dark_ink`'s
    statistic assumes paper is most of the picture; where the border clearly says otherwise (a tight crop
    filled with ink), the border wins. A border that does not decide (a photo's lighting gradient, split by
    Otsu into light and shade rather than ink and paper) leaves `dark_ink`'s answer."""
    dark = dark_ink(thumb)
    a = np.asarray(thumb)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return dark, False
    if thumb.mode == "L" and max(thumb.histogram()) * 2 > a.size:  # paper of one exact level: a drawing
        return dark, False
    paper_dark = document.border_dark_paper(np.clip(a, 0, 255).astype(np.uint8))
    return (dark, False) if paper_dark is None else (not paper_dark, True)

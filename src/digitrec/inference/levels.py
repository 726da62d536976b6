"""Grey levels of ink against paper: the 3x3 blur, noise (median deviation, Laplacian grain), Otsu's split,
grey dilation and erosion, stroke width. `preprocess` (one digit) and `segment` (numbers) measure pictures with
these. Serving half: NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

STROKE_SHARE = 0.25  # strokes are thinner than this share of the picture (broad stripes, checks, blotches are
# not). It was 0.08, which called a tiny scan's bold digit (its pen 15-30 % of the picture) blank; the gate
# (gate.py) now refuses the pictures this lets through.
PAPER_FAR = 0.03  # paper this share of the picture away from ink must be flat, in a picture full of ink
_GRAIN = 1.11  # median |3x3 Laplacian| -> sigma, for white noise after blur3 (test_levels checks it)


def blur3(x: np.ndarray) -> np.ndarray:
    """3x3 mean: tames grain and single-pixel specks before thresholding."""
    h, w = x.shape
    p = np.empty((h + 2, w + 2), x.dtype)  # edge padding, without np.pad's overhead
    p[1:-1, 1:-1] = x
    p[0, 1:-1], p[-1, 1:-1] = x[0], x[-1]
    p[:, 0], p[:, -1] = p[:, 1], p[:, -2]
    r = p[:, :-2] + p[:, 1:-1]  # separable: 4 adds instead of 8
    r += p[:, 2:]
    out = r[:-2] + r[1:-1]
    out += r[2:]
    out *= np.float32(1 / 9)
    return out


def noise_level(x: np.ndarray, zeros: int = 0) -> float:
    """Robust noise level of x (>= 0) and `zeros` more pixels of 0: the median absolute deviation from the
    median, scaled to a Gaussian's sigma."""
    if (x.size - np.count_nonzero(x) + zeros) * 2 > x.size + zeros:  # mostly exactly 0 (a clean canvas):
        return 0.0  # both medians are 0, so skip two partial sorts of the image
    if zeros:
        x = np.concatenate([x.ravel(), np.zeros(zeros, x.dtype)])
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def ink_noise(smooth: np.ndarray, top: float, zeros: int = 0, dense: bool = False) -> float:
    """The noise level of an ink-bright image (see `noise_level`). Where ink is much of the picture (`dense`, or
    the median deviation says the noise drowns the ink), the median deviation measures ink against paper,
    not noise: it is measured on the paper side of Otsu's split alone (by `dense_noise` when `dense`), and, unless
    `dense`, kept only if the two sides are far apart for it (pure noise splits into two sides a couple of
    sigmas apart) and the ink side is strokes rather than regions (stripes, checks and blotches stay blank)."""
    noise = 0.0 if dense else noise_level(smooth, zeros)
    if top > 0 and (dense or top < 8 * noise):
        split = otsu(smooth, top, zeros)
        if dense:
            return dense_noise(smooth, smooth <= split)
        paper, ink = smooth[smooth <= split], smooth[smooth > split]
        quiet = noise_level(paper) if paper.size else 0.0
        if ink.size > 0.05 * smooth.size and ink.mean() - paper.mean() > 8 * quiet and \
                stroke_width(smooth > split) < STROKE_SHARE * max(smooth.shape):
            noise = quiet
    return noise


def dense_noise(x: np.ndarray, paper: np.ndarray) -> float:
    """Noise level of a picture full of ink, given its paper side: the grain of all its paper (`grain`), or
    the median deviation of the paper far from any ink (over PAPER_FAR of the picture away), whichever is
    larger. A scan's soft stroke edges lie near strokes; a smooth field of blotches has no flat paper
    anywhere, and stays blank."""
    noise = grain(x, paper)
    far = spread(paper, max(2, int(PAPER_FAR * max(x.shape))), np.minimum)
    if np.count_nonzero(far) >= 20:  # enough pixels for a median
        noise = max(noise, noise_level(x[far]))
    return noise


def grain(x: np.ndarray, where: np.ndarray) -> float:
    """Noise level of x on the pixels `where`, from its second differences (a 3x3 Laplacian, separable):
    a blurred or upscaled scan's soft stroke edges are smooth ramps, which the Laplacian ignores and the
    median deviation counts as noise (then an upscaled tiny scan's 8 came out blank). Scaled to agree
    with `noise_level` on white noise after `blur3`."""
    if min(x.shape) < 3:
        return noise_level(x[where]) if where.any() else 0.0
    d = x[:-2] - 2 * x[1:-1] + x[2:]
    d = np.abs(d[:, :-2] - 2 * d[:, 1:-1] + d[:, 2:])[where[1:-1, 1:-1]]
    return float(_GRAIN * np.median(d)) if d.size else 0.0


def otsu(x: np.ndarray, top: float, zeros: int = 0) -> float:
    """Otsu's threshold over 0..top (> 0) of x and `zeros` more pixels of 0: the level that best
    separates paper from ink."""
    levels = np.arange(1, 257) * (top / 256)
    p = np.bincount(np.minimum(x * (256 / top), 255).astype(np.intp).ravel(), minlength=256)
    p[0] += zeros
    p = p / (x.size + zeros)
    w0 = np.cumsum(p)
    m = np.cumsum(p * levels)
    between = (m[-1] * w0 - m) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(levels[np.argmax(between[:-1])])


def spread(x: np.ndarray, r: int, op=np.maximum) -> np.ndarray:
    """Grey dilation (np.maximum) or erosion (np.minimum) by a (2r+1)^2 square, done separably in NumPy
    (Pillow's rank filter is slow for large windows)."""
    if r <= 0:
        return x
    h, w = x.shape
    fill = x.max() if op is np.minimum else x.min()  # neutral padding: the frame neither grows nor eats ink
    p = np.full((h + 2 * r, w + 2 * r), fill, x.dtype)
    p[r : r + h, r : r + w] = x
    return _window(_window(p, 2 * r + 1, op, 1), 2 * r + 1, op, 0)


def _window(p: np.ndarray, n: int, op, axis: int) -> np.ndarray:
    """op over every n consecutive entries along axis 0 or 1, in log2(n) + 1 passes: windows of 1, 2, 4,
    ... entries, then two overlapping ones cover n (max and min do not mind the overlap)."""

    def cut(a: int, b: int | None) -> tuple[slice, ...]:
        return (slice(a, b),) if axis == 0 else (slice(None), slice(a, b))

    step = 1
    while 2 * step <= n:
        p = op(p[cut(None, -step)], p[cut(step, None)])
        step *= 2
    last = p.shape[axis] - (n - step)
    return op(p[cut(None, last)], p[cut(n - step, None)])


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: twice the area over the perimeter (edge count x pi/4)."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return float(2 * np.count_nonzero(mask) / max(edges * math.pi / 4, 1))

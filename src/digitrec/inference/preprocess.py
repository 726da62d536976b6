"""Any image -> an MNIST-style 28x28 digit; the one function every entry point uses.

MNIST digits were made by scaling each digit's bounding box into a 20x20 box (aspect ratio kept,
anti-aliased) and placing it in a 28x28 frame by its centre of mass, white ink on black. A model trained on
that reads real pictures well only when they are made the same way, so the API, the CLI, the web page and
the webcam all go through `to_mnist`. Pictures from paper get more work first (`paper`: ink versus paper;
`document`: tight crops, rules and frames, several digits; OpenCV there). Serving half: no torch, no scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitrec.inference import document
from digitrec.inference.components import label, piece_sizes
from digitrec.inference.images import (
    MAX_PIXELS,
    ImageError,
    ImageSource,
    decode_gray,
    grey8,
    image_to_gray,
    open_image,
    open_with_side,
)
from digitrec.inference.paper import flatten, paper_level, polarity, thumb

# Decoding lives in digitrec.inference.images; its names are re-exported for callers of this module.
__all__ = ["BOX", "MAX_PIXELS", "STROKE", "ImageError", "ImageSource", "locate", "open_image", "stroke_width",
           "to_gray", "to_mnist"]

# Defaults measured with benchmarks/handwriting.py (4,000 synthetic drawings, scans, photos and chalk, never
# MNIST; confirmed on a second seed): box 18 + stroke 2.5 beat MNIST's own box 20 on 29 images and lost 4.
BOX = 18  # side of the square the ink's bounding box is scaled into (MNIST used 20)
STROKE = 2.5  # pen width to normalise to, in 28x28 pixels (MNIST's median is ~2.3); None keeps the pen's
MIN_CONTRAST = 16.0  # ink must differ from the paper by this much (0..255) or the image counts as blank
STROKE_SHARE = 0.25  # strokes are thinner than this share of the picture (broad stripes, checks, blotches are
# not). It was 0.08, which called a tiny scan's bold digit (its pen 15-30 % of the picture) blank; the gate
# (gate.py) now refuses the pictures this lets through.
FAINT = 24.0  # ink fainter than this (faint pencil) must hang together: scattered specks are blank
PAPER_FAR = 0.03  # paper this share of the picture away from ink must be flat, in a picture full of ink
THIN_MAX = 0.3  # thinning removes at most this share of a dense picture's stroke (a blur overstates the pen)
_WORK = (112, 384)  # long side of the working image: enough detail for a 20 px box, fast on a 4096^2 photo
_GRAIN = 1.11  # median |3x3 Laplacian| -> sigma, for white noise after _blur3 (test_preprocess checks it)
_SPECK = 0.1  # ink blobs smaller than this fraction of the largest one are specks, not strokes

def to_gray(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any image or array -> (H, W) float32 grey levels 0..255; transparency is composited on white."""
    return decode_gray(source, max_pixels=max_pixels, side=_WORK[1])[0]


def _resize(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize a float array; size is (width, height) as Pillow wants it."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F").resize(size, resample))


def _blur3(x: np.ndarray) -> np.ndarray:
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


def _noise(x: np.ndarray, zeros: int = 0) -> float:
    """Robust noise level of x (>= 0) and `zeros` more pixels of 0: the median absolute deviation from the
    median, scaled to a Gaussian's sigma."""
    if (x.size - np.count_nonzero(x) + zeros) * 2 > x.size + zeros:  # mostly exactly 0 (a clean canvas):
        return 0.0  # both medians are 0, so skip two partial sorts of the image
    if zeros:
        x = np.concatenate([x.ravel(), np.zeros(zeros, x.dtype)])
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _ink_noise(smooth: np.ndarray, top: float, zeros: int = 0, dense: bool = False) -> float:
    """The noise level of an ink-bright image (see `_noise`). Where ink is much of the picture (`dense`, or
    the median deviation says the noise drowns the ink), the median deviation measures ink against paper,
    not noise: it is measured on the paper side of Otsu's split alone (by `_grain` when `dense`), and, unless
    `dense`, kept only if the two sides are far apart for it (pure noise splits into two sides a couple of
    sigmas apart) and the ink side is strokes rather than regions (stripes, checks and blotches stay blank)."""
    noise = 0.0 if dense else _noise(smooth, zeros)
    if top > 0 and (dense or top < 8 * noise):
        split = _otsu(smooth, top, zeros)
        if dense:
            return _dense_noise(smooth, smooth <= split)
        paper, ink = smooth[smooth <= split], smooth[smooth > split]
        quiet = _noise(paper) if paper.size else 0.0
        if ink.size > 0.05 * smooth.size and ink.mean() - paper.mean() > 8 * quiet and \
                stroke_width(smooth > split) < STROKE_SHARE * max(smooth.shape):
            noise = quiet
    return noise


def _dense_noise(x: np.ndarray, paper: np.ndarray) -> float:
    """Noise level of a picture full of ink, given its paper side: the grain of all its paper (`_grain`), or
    the median deviation of the paper far from any ink (over PAPER_FAR of the picture away), whichever is
    larger. A scan's soft stroke edges lie near strokes; a smooth field of blotches has no flat paper
    anywhere, and stays blank."""
    noise = _grain(x, paper)
    far = _spread(paper, max(2, int(PAPER_FAR * max(x.shape))), np.minimum)
    if np.count_nonzero(far) >= 20:  # enough pixels for a median
        noise = max(noise, _noise(x[far]))
    return noise


def _grain(x: np.ndarray, where: np.ndarray) -> float:
    """Noise level of x on the pixels `where`, from its second differences (a 3x3 Laplacian, separable):
    a blurred or upscaled scan's soft stroke edges are smooth ramps, which the Laplacian ignores and the
    median deviation counts as noise (then an upscaled tiny scan's 8 came out blank). Scaled to agree
    with `_noise` on white noise after `_blur3`."""
    if min(x.shape) < 3:
        return _noise(x[where]) if where.any() else 0.0
    d = x[:-2] - 2 * x[1:-1] + x[2:]
    d = np.abs(d[:, :-2] - 2 * d[:, 1:-1] + d[:, 2:])[where[1:-1, 1:-1]]
    return float(_GRAIN * np.median(d)) if d.size else 0.0


def _otsu(x: np.ndarray, top: float, zeros: int = 0) -> float:
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


def _keep_strokes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop specks: 8-connected blobs much smaller than the largest. Also returns how many blobs are kept."""
    labels, area = label(mask)
    keep = area >= _SPECK * area.max(initial=0)
    if keep.all():
        return mask, len(area)  # the common case: nothing but strokes
    return np.concatenate(([False], keep))[labels], int(keep.sum())


def _spread(x: np.ndarray, r: int, op=np.maximum) -> np.ndarray:
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


def to_mnist(
    source: ImageSource | np.ndarray,
    *,
    box: int = BOX,
    stroke: float | None = STROKE,
    center: str = "mass",
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray | None:
    """Make a photo, scan or drawing of one digit look like an MNIST digit.

    Returns a (28, 28) float32 array in [0, 1], white ink on black, or None when the image is (nearly)
    blank. `center="mass"` places the centre of mass at (14, 14) as MNIST did; "box" centres the bounding
    box. `stroke` thickens or thins the pen to that width (28x28 pixels) before scaling. See `locate`.
    """
    return locate(source, box=box, stroke=stroke, center=center, max_pixels=max_pixels)[0]


def locate(
    source: ImageSource | np.ndarray,
    *,
    box: int = BOX,
    stroke: float | None = STROKE,
    center: str = "mass",
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None]:
    """`to_mnist`, and where the digit's ink is: (28x28 or None, (x, y, width, height) in the input's pixels
    (after EXIF rotation) or None when blank).

    Ruling and form frames are removed before the digit is located (`document.remove_lines`); with several
    digits in the picture, the one nearest its centre is read (`document.central`)."""
    if not 4 <= box <= 28 or center not in ("mass", "box"):
        raise ValueError(f"box must be 4..28 and center 'mass' or 'box', got {box!r} and {center!r}")
    work = _ink_crop(source, max_pixels)
    flat, zeros = work.crop, work.zeros
    if flat is None:
        return None, None
    smooth = _blur3(flat)
    top = float(smooth.max())
    noise = _ink_noise(smooth, top, zeros, work.dense)
    if top < max(MIN_CONTRAST, 8 * noise):
        return None, None
    t = max(_otsu(smooth, top, zeros), 4 * noise)
    mask = smooth > t
    if top < FAINT:  # faint ink (pencil) must be strokes, not scattered specks of dust
        sizes = piece_sizes(mask)
        if sizes.max() < 0.2 * sizes.sum():
            return None, None
    mask = _find_digit(mask)
    # From here on only the ink's box (plus a margin for the anti-aliased fringe) is touched: every mask
    # pixel lies inside it, so the edge count, the ink level and the dilation below are unchanged.
    ink_box = _bounds(mask)
    if ink_box is None:
        return None, None
    r0, r1, c0, c1 = ink_box
    near_box = _around(ink_box, 2)  # a margin for the anti-aliased fringe
    mask, flat = mask[near_box], flat[near_box]
    pen = stroke_width(mask)
    if max(r1 - r0, c1 - c0) < max(2.0 * pen, 4):  # a dot or a speck, not a digit
        return None, None

    # Ink level 0..1 with soft (anti-aliased) edges; grain outside the strokes' neighbourhood is zeroed.
    floor = min(3 * noise, t / 2)
    level = max(_percentile(flat[mask], 75), floor + 1)
    ink = np.clip((flat - floor) / (level - floor), 0, 1) * _spread(mask, 2)

    if stroke is not None:
        ink = _normalise_stroke(ink, pen, stroke, box, soft=work.dense)
    return _place(ink, box, center), work.box(ink_box)


def _find_digit(mask: np.ndarray) -> np.ndarray:
    """The digit's pixels in an ink mask: ruling and frames removed, the central digit of several, no specks.
    Each step runs only when a cheap test says the picture may need it (a canvas drawing never does)."""
    h, w = mask.shape
    pen = None
    # Frames and ruling have long rows of ink (a frame's sides go only with its top and bottom).
    if max(h, w) >= 12 and np.count_nonzero(mask, axis=1).max() >= document.LINE_SPAN * w:
        pen = stroke_width(mask)
        mask, _ = document.remove_lines(mask, pen)
    mask, pieces = _keep_strokes(mask)
    b = _bounds(mask) if pieces > 1 else None
    if b is not None and not np.logical_or.reduce(mask[:, b[2] : b[3]], axis=0).all():
        # Several pieces with an empty column between them: maybe several digits (on the ink's box only).
        inner = _around(b, 0)
        part, _ = document.central(mask[inner], stroke_width(mask) if pen is None else pen)
        mask = np.zeros_like(mask)
        mask[inner] = part
    return mask


def _percentile(v: np.ndarray, q: float) -> float:
    """np.percentile(v, q) (linear) of a 1-D array: one partition, without np.percentile's ~30 us setup."""
    pos = (v.size - 1) * q / 100
    i = int(pos)
    j = min(i + 1, v.size - 1)
    part = np.partition(v, (i, j))
    return float(part[i] + (pos - i) * (float(part[j]) - float(part[i])))


@dataclass(frozen=True)
class _Work:
    """The working image cropped to its ink (ink bright on flattened paper, float32), the count of exactly-0
    pixels cropped away, and the way back to the input's pixels: the crop's origin (row, col) in the working
    image and the input pixels per working pixel."""

    crop: np.ndarray | None
    zeros: int = 0
    origin: tuple[int, int] = (0, 0)
    factor: float = 1.0
    dense: bool = False  # ink covers much of the picture (see document.DENSE_INK)

    def box(self, b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """(r0, r1, c0, c1) in the crop -> (x, y, width, height) in the input's pixels."""
        r0, r1, c0, c1 = b
        y0, x0 = (r0 + self.origin[0]) * self.factor, (c0 + self.origin[1]) * self.factor
        return (round(x0), round(y0), max(1, round((c1 - c0) * self.factor)), max(1, round((r1 - r0) * self.factor)))


def _ink_crop(source: ImageSource | np.ndarray, max_pixels: int) -> _Work:
    """The working image, ink bright on flattened paper (float32), cropped to its non-zero pixels plus 3 px;
    and how many pixels, all exactly 0, were cropped away (crop None when every pixel is 0).

    Paper that is exactly 0 (a drawn canvas) stays 0 through the 3x3 blur and below any threshold, so
    to_mnist can work on the crop and count the rest as zeros: the same result, on a fraction of the
    pixels. The margin holds the blur's 1 px and the fringe's 2 px. A photo's paper is never exactly 0:
    there the crop is everything. An 8-bit image at working size goes the same way on whole grey levels
    and only its crop becomes float: inverting and flattening clean paper are exact there. Ink that covers
    much of the picture (a tight crop, an upscaled tiny scan) is told from paper by the picture's border,
    and its paper level by `document.flatten_dense`."""
    grey = g = None
    if isinstance(source, np.ndarray):
        g, side = to_gray(source, max_pixels=max_pixels), max(source.shape[:2])
    else:
        im, side = open_with_side(source, max_pixels=max_pixels, draft=(_WORK[1], _WORK[1]))
        grey = grey8(im)
        if grey is None:
            g = image_to_gray(im, max_pixels)
    h, w = g.shape if g is not None else (grey.height, grey.width)
    scale = min(max(_WORK[0], max(h, w)), _WORK[1]) / max(h, w)
    factor = side / (max(h, w) * scale)  # input pixels per working pixel
    if scale != 1:
        g = np.asarray(grey, dtype=np.float32) if g is None else g
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        g, grey = np.clip(_resize(g, size, resample), 0, 255), None
    if grey is not None:
        a = np.asarray(grey)
        small = thumb(grey)
        dark, clear = polarity(small)
        flat = 255 - a if dark else a  # uint8, as exact as 255.0 - a
        low = paper_level(flat)
        dense = False
        if low.any():  # shaded paper (or blocks full of ink): flatten in float
            # Dense ink on real paper; a drawn canvas (its paper exactly 0) keeps the exact path.
            dense = clear and document.ink_fraction(np.asarray(small), dark) > document.DENSE_INK and \
                np.count_nonzero(flat) > flat.size // 2
            flat = document.flatten_dense(flat.astype(np.float32)) if dense else \
                flatten(flat.astype(np.float32), low=low)
    else:
        small = thumb(Image.fromarray(np.ascontiguousarray(g, np.float32)))
        dark, clear = polarity(small)
        up = 255.0 - g if dark else g
        t8 = np.clip(np.asarray(small), 0, 255).astype(np.uint8)
        dense = clear and document.ink_fraction(t8, dark) > document.DENSE_INK and \
            np.count_nonzero(up) > up.size // 2
        flat = document.flatten_dense(up) if dense else flatten(up)
    ink_box = _bounds(flat != 0)
    if ink_box is None:
        return _Work(None)
    crop = _around(ink_box, 3)
    cut = flat[crop]
    return _Work(cut.astype(np.float32), flat.size - cut.size, (crop[0].start, crop[1].start), factor, dense)


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (r0, r1, c0, c1) of a mask's True pixels, ends exclusive; None if there are none."""
    rows = np.logical_or.reduce(mask, axis=1).nonzero()[0]  # ufuncs and methods, not np.* wrappers:
    if not len(rows):  # this runs three times per image
        return None
    cols = np.logical_or.reduce(mask, axis=0).nonzero()[0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _around(box: tuple[int, int, int, int], m: int) -> tuple[slice, slice]:
    """Slices for a box grown by m pixels on each side (clipped at 0; NumPy clips the far ends)."""
    r0, r1, c0, c1 = box
    return slice(max(r0 - m, 0), r1 + m), slice(max(c0 - m, 0), c1 + m)


def _normalise_stroke(ink: np.ndarray, pen: float, target: float, box: int, soft: bool = False) -> np.ndarray:
    """Thin a thick pen (erosion) or thicken a thin one (dilation) towards `target` 28x28 pixels,
    at 4x the box's resolution: fine enough steps, and fast. `soft`: ink that fills much of a blurred or
    upscaled picture, whose measured pen overstates the stroke; it is thinned by at most THIN_MAX."""
    f = min(1.0, 4 * box / max(ink.shape))
    if f < 1:
        ink = _resize(ink, (max(1, round(ink.shape[1] * f)), max(1, round(ink.shape[0] * f))))
    per_px = box / max(ink.shape)  # 28x28 pixels per pixel once scaled into the box
    k = round((target / per_px - pen * f) / 2)  # pixels to add (or remove) on each side of the stroke
    if soft:
        k = max(k, -round(pen * f * THIN_MAX / 2))
    if k == 0 or (k < 0 and pen * f + 2 * k < 1):
        return ink
    out = _spread(np.pad(ink, abs(k)), abs(k), np.maximum if k > 0 else np.minimum)
    return out if out.max() > 0.5 else ink  # never erase the digit


def _place(ink: np.ndarray, box: int, center: str) -> np.ndarray:
    """Scale the ink's bounding box into box x box (aspect kept, anti-aliased), place it in 28x28."""
    r0, r1, c0, c1 = _bounds(ink > 0.05)
    ink = ink[r0:r1, c0:c1]
    h, w = ink.shape
    s = box / max(h, w)
    small = np.clip(_resize(ink, (max(1, round(w * s)), max(1, round(h * s)))), 0, 1)
    h, w = small.shape
    if center == "mass":
        total = small.sum()
        cy = (small.sum(1) @ np.arange(h)) / total
        cx = (small.sum(0) @ np.arange(w)) / total
        top, left = round(14 - cy), round(14 - cx)
    else:
        top, left = (28 - h) // 2, (28 - w) // 2
    top, left = min(max(top, 0), 28 - h), min(max(left, 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top : top + h, left : left + w] = small
    return out / out.max()

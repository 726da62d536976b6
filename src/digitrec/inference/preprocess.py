"""Any image -> an MNIST-style 28x28 digit; the one function every entry point uses.

MNIST digits were made by scaling each digit's bounding box into a 20x20 box (aspect ratio kept,
anti-aliased) and placing it in a 28x28 frame by its centre of mass, white ink on black. A model trained on
that reads real pictures well only when they are made the same way, so the API, the CLI, the web page and
the webcam all go through `to_mnist`. Pictures from paper get more work first (`paper`: ink versus paper;
`document`: tight crops, rules and frames, several digits; OpenCV there). Serving half: no torch, no scipy.
"""

from __future__ import annotations

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
from digitrec.inference.levels import blur3, ink_noise, otsu, spread, stroke_width
from digitrec.inference.paper import flatten, paper_level, polarity, thumb

# Decoding lives in digitrec.inference.images; its names are re-exported for callers of this module.
__all__ = ["BOX", "MAX_PIXELS", "STROKE", "ImageError", "ImageSource", "locate", "open_image", "to_gray", "to_mnist"]

# Defaults measured with benchmarks/handwriting.py (4,000 synthetic drawings, scans, photos and chalk, never
# MNIST; confirmed on a second seed): box 18 + stroke 2.5 beat MNIST's own box 20 on 29 images and lost 4.
BOX = 18  # side of the square the ink's bounding box is scaled into (MNIST used 20)
STROKE = 2.5  # pen width to normalise to, in 28x28 pixels (MNIST's median is ~2.3); None keeps the pen's
MIN_CONTRAST = 16.0  # ink must differ from the paper by this much (0..255) or the image counts as blank
FAINT = 24.0  # ink fainter than this (faint pencil) must hang together: scattered specks are blank
THIN_MAX = 0.3  # thinning removes at most this share of a dense picture's stroke (a blur overstates the pen)
_WORK = (112, 384)  # long side of the working image: enough detail for a 20 px box, fast on a 4096^2 photo
_REPLICATED = (4, 112)  # original long side of a picture enlarged by repeating pixels that _replication undoes
_SPECK = 0.1  # ink blobs smaller than this fraction of the largest one are specks, not strokes

def to_gray(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any image or array -> (H, W) float32 grey levels 0..255; transparency is composited on white."""
    return decode_gray(source, max_pixels=max_pixels, side=_WORK[1])[0]


def _resize(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize a float array; size is (width, height) as Pillow wants it."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F").resize(size, resample))


def _keep_strokes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop specks: 8-connected blobs much smaller than the largest. Also returns how many blobs are kept."""
    labels, area = label(mask)
    keep = area >= _SPECK * area.max(initial=0)
    if keep.all():
        return mask, len(area)  # the common case: nothing but strokes
    return np.concatenate(([False], keep))[labels], int(keep.sum())


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
    smooth = blur3(flat)
    top = float(smooth.max())
    noise = ink_noise(smooth, top, zeros, work.dense)
    if top < max(MIN_CONTRAST, 8 * noise):
        return None, None
    t = max(otsu(smooth, top, zeros), 4 * noise)
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
    ink = np.clip((flat - floor) / (level - floor), 0, 1) * spread(mask, 2)

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
    pixels = np.asarray(grey) if g is None else g  # read once: for the check below and the work after it
    k = _replication(pixels)
    if k > 1:  # a tiny scan enlarged by repeating pixels: back to its own pixels, enlarged smoothly below
        if g is None:
            grey = grey.reduce(k)
            pixels = np.asarray(grey)
        else:
            g = pixels = g[::k, ::k]
    h, w = pixels.shape
    scale = min(max(_WORK[0], max(h, w)), _WORK[1]) / max(h, w)
    factor = side / (max(h, w) * scale)  # input pixels per working pixel
    if scale != 1:
        g = pixels.astype(np.float32) if g is None else g
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # Lanczos, not bilinear, enlarges a small picture: it keeps a tiny scan's strokes apart (a 4's loop open).
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.LANCZOS
        g, grey = np.clip(_resize(g, size, resample), 0, 255), None
    if grey is not None:
        a = pixels
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


def _replication(a: np.ndarray) -> int:
    """k > 1 when the picture is one of 4-112 px (_REPLICATED) enlarged k times by repeating each pixel (nearest
    neighbour, as a sender may enlarge a tiny scan), else 1: k is the greatest common divisor of the runs of
    equal rows and of equal columns. Larger originals are detailed enough as they are; pictures over the working
    size are not looked at (shrinking averages the blocks anyway)."""
    h, w = a.shape
    if max(h, w) > _WORK[1]:
        return 1
    k = 0
    for b in (a, a.T):
        edges = np.flatnonzero(np.logical_or.reduce(b[1:] != b[:-1], axis=1)) + 1
        k = int(np.gcd.reduce(np.diff(edges, prepend=0, append=len(b)), initial=k))
        if k == 1:
            return 1
    return k if _REPLICATED[0] <= max(h, w) // k <= _REPLICATED[1] else 1


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
    out = spread(np.pad(ink, abs(k)), abs(k), np.maximum if k > 0 else np.minimum)
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

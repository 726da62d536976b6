"""Any image -> an MNIST-style 28x28 digit; the one function every entry point uses.

MNIST digits were made by scaling each digit's bounding box into a 20x20 box (aspect ratio kept,
anti-aliased) and placing it in a 28x28 frame by its centre of mass, white ink on black. A model trained on
that reads real pictures well only when they are made the same way, so the API, the CLI, the web page and
the webcam all go through `to_mnist`. NumPy + Pillow only: this is the serving half (no torch, no scipy).
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from digitrec.errors import DigitrecError

MAX_PIXELS = 4096 * 4096
# Defaults measured with benchmarks/handwriting.py (4,000 synthetic drawings, scans, photos and chalk, never
# MNIST; confirmed on a second seed): box 18 + stroke 2.5 beat MNIST's own box 20 on 29 images and lost 4.
BOX = 18  # side of the square the ink's bounding box is scaled into (MNIST used 20)
STROKE = 2.5  # pen width to normalise to, in 28x28 pixels (MNIST's median is ~2.3); None keeps the pen's
MIN_CONTRAST = 24.0  # ink must differ from the paper by this much (0..255) or the image counts as blank
_WORK = (112, 384)  # long side of the working image: enough detail for a 20 px box, fast on a 4096^2 photo
_SPECK = 0.1  # ink blobs smaller than this fraction of the largest one are specks, not strokes

ImageSource = str | Path | bytes | bytearray | Image.Image


class ImageError(DigitrecError):
    """The input cannot be read as an image: empty, truncated, not an image, or too large."""


def open_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode a path, bytes or PIL image, refusing huge ones before decoding (PNG bombs).

    Returns a fully loaded single-frame image (first frame of an animation), EXIF orientation applied.
    `draft` lets a JPEG decode at a reduced scale no smaller than that size: a 12 Mpx photo is 10x faster.
    """
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels)
        return ImageOps.exif_transpose(source)
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except OSError as e:
            raise ImageError(f"could not read the image {str(source)!r}: {e.strerror or e}.") from e
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        raise TypeError(f"expected a path, bytes, a PIL image or an array, got {type(source).__name__}")
    if not data:
        raise ImageError("could not read the image: the file is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we enforce our own limit
        try:
            im = Image.open(io.BytesIO(data))  # lazy: reads the header only
        except Image.DecompressionBombError as e:
            raise ImageError(f"the image is too large: {e}. Send at most {max_pixels} pixels.") from e
        except Image.UnidentifiedImageError as e:
            raise ImageError("could not read the image: it is not a PNG, JPEG, WebP, BMP or GIF file.") from e
        except Exception as e:  # a header cut short or corrupt
            raise ImageError("could not read the image: the file is truncated or corrupt.") from e
        _check_size(im.size, max_pixels)
        try:
            if draft and im.format == "JPEG":
                im.draft(None, draft)
            im.load()  # decodes frame 0 only
            return ImageOps.exif_transpose(im)  # a detached copy either way
        except Exception as e:
            raise ImageError("could not read the image: the file is truncated or corrupt.") from e


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageError(
            f"the image is too large: {w}x{h} pixels; send at most {max_pixels} pixels "
            f"(e.g. {math.isqrt(max_pixels)}x{math.isqrt(max_pixels)})."
        )
    if w < 1 or h < 1:
        raise ImageError("could not read the image: it has no pixels.")


def to_gray(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any image or array -> (H, W) float32 grey levels 0..255; transparency is composited on white."""
    if isinstance(source, np.ndarray):
        return _array_to_gray(source, max_pixels)
    im = open_image(source, max_pixels=max_pixels, draft=(_WORK[1], _WORK[1]))
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.float32)
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey: keep the absolute scale
        a = np.asarray(im, dtype=np.float32)
        if im.mode.startswith("I;16") or (im.mode == "I" and a.max(initial=0) > 255):
            a = a / 257.0
        elif im.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        return np.clip(np.nan_to_num(a), 0, 255)
    try:
        has_alpha = "A" in im.mode or "a" in im.mode or "transparency" in im.info
        return _array_to_gray(np.asarray(im.convert("RGBA" if has_alpha else "RGB")), max_pixels)
    except (ValueError, OSError) as e:
        raise ImageError(f"could not read the image: colour mode {im.mode} is not supported.") from e


def _array_to_gray(a: np.ndarray, max_pixels: int) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ValueError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    _check_size((a.shape[1], a.shape[0]), max_pixels)
    if a.dtype == bool:
        a = a.astype(np.float32) * 255
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32)
        if a.max() > 255:  # 16-bit
            a /= 257.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("the image array contains NaN or infinite values")
        a = np.clip(a, 0, 255).astype(np.float32) * (255.0 if a.max() <= 1.0 else 1.0)  # 0..1 or 0..255
    else:
        raise ValueError(f"expected an integer, float or bool image array, got dtype {a.dtype}")
    a = np.clip(a, 0, 255)
    if a.ndim == 3:
        rgb = a[..., :3]
        if a.shape[2] == 4:  # composite on white paper
            alpha = a[..., 3:] / 255.0
            rgb = rgb * alpha + 255.0 * (1 - alpha)
        a = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return a.astype(np.float32)


def _resize(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize a float array; size is (width, height) as Pillow wants it."""
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize(size, resample))


def _ink_up(g: np.ndarray) -> np.ndarray:
    """Return the image with ink bright. Paper is most of the picture, so the median is paper; ink is the
    far tail on one side of it. Compare the extreme 2% on each side: symmetric noise adds to both, and
    a lighting gradient stretches both but never as far as ink on paper does."""
    h, w = g.shape
    f = 128 / max(h, w)
    t = _resize(g, (max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX) if f < 1 else g
    v = np.sort(t.ravel())
    n = max(1, v.size // 50)
    median = v[v.size // 2]
    return 255.0 - g if median - v[:n].mean() > v[-n:].mean() - median else g


def _flatten(x: np.ndarray, n: int = 8) -> np.ndarray:
    """Subtract the paper's shading (light gradient, vignette, shadow): a quadratic surface fitted to
    the 20th percentile of each of n x n blocks. Blocks that a thick stroke fills stand out above the
    surface and are dropped from the fit, so ink never passes for background."""
    h, w = x.shape
    bh, bw, side = -(-h // n), -(-w // n), max(h, w)
    xp = np.pad(x, ((0, n * bh - h), (0, n * bw - w)), mode="edge")
    blocks = xp.reshape(n, bh, n, bw).transpose(0, 2, 1, 3).reshape(n * n, bh, bw)
    low = np.percentile(blocks[:, ::2, ::2].reshape(n * n, -1), 20, axis=1)  # every 4th pixel is plenty

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
    yy = ((np.arange(h) + 0.5) * 2 / side - 1)[:, None]
    xx = ((np.arange(w) + 0.5) * 2 / side - 1)[None, :]
    return np.clip(x - sum(k * b for k, b in zip(coef, basis(yy, xx), strict=True)), 0, None)


def _blur3(x: np.ndarray) -> np.ndarray:
    """3x3 mean: tames grain and single-pixel specks before thresholding."""
    p = np.pad(x, 1, mode="edge")
    h, w = x.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def _otsu(x: np.ndarray, top: float) -> float:
    """Otsu's threshold over 0..top (> 0): the level that best separates paper from ink."""
    levels = np.arange(1, 257) * (top / 256)
    p = np.bincount(np.minimum(x * (256 / top), 255).astype(np.intp).ravel(), minlength=256) / x.size
    w0 = np.cumsum(p)
    m = np.cumsum(p * levels)
    between = (m[-1] * w0 - m) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(levels[np.argmax(between[:-1])])


def _keep_strokes(mask: np.ndarray) -> np.ndarray:
    """Drop specks: 8-connected blobs much smaller than the largest. Union-find over row runs,
    which is fast because a digit has only a few runs per row."""
    d = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(d == 1)
    ends = np.nonzero(d == -1)[1]
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_start = np.searchsorted(rows, np.arange(mask.shape[0] + 1))
    for r in range(1, mask.shape[0]):
        i, i_end = row_start[r - 1], row_start[r]
        j, j_end = row_start[r], row_start[r + 1]
        while i < i_end and j < j_end:  # runs touch (8-connected) if they overlap with one pixel of slack
            if starts[i] <= ends[j] and starts[j] <= ends[i]:
                parent[find(i)] = find(j)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    labels = np.array([find(i) for i in range(len(rows))], dtype=np.int64)
    area = np.bincount(labels, weights=ends - starts, minlength=len(rows))
    keep = area[labels] >= _SPECK * area.max(initial=0)
    marks = np.zeros((mask.shape[0], mask.shape[1] + 1), np.int32)
    np.add.at(marks, (rows[keep], starts[keep]), 1)
    np.add.at(marks, (rows[keep], ends[keep]), -1)
    return np.cumsum(marks, axis=1)[:, :-1] > 0


def _spread(x: np.ndarray, r: int, op=np.maximum) -> np.ndarray:
    """Grey dilation (np.maximum) or erosion (np.minimum) by a (2r+1)^2 square, done separably in NumPy
    (Pillow's rank filter is slow for large windows)."""
    h, w = x.shape
    fill = x.max() if op is np.minimum else x.min()  # neutral padding: the frame neither grows nor eats ink
    p = np.pad(x, ((0, 0), (r, r)), constant_values=fill)
    x = op.reduce([p[:, i : i + w] for i in range(2 * r + 1)])
    p = np.pad(x, ((r, r), (0, 0)), constant_values=fill)
    return op.reduce([p[i : i + h] for i in range(2 * r + 1)])


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: twice the area over the perimeter (edge count x pi/4)."""
    m = mask.astype(np.int8)
    edges = np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()
    return float(2 * m.sum() / max(edges * math.pi / 4, 1))


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
    box. `stroke` thickens or thins the pen to that width (28x28 pixels) before scaling.
    """
    if not 4 <= box <= 28 or center not in ("mass", "box"):
        raise ValueError(f"box must be 4..28 and center 'mass' or 'box', got {box!r} and {center!r}")
    g = to_gray(source, max_pixels=max_pixels)
    h, w = g.shape
    scale = min(max(_WORK[0], max(h, w)), _WORK[1]) / max(h, w)
    if scale != 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        g = np.clip(_resize(g, size, resample), 0, 255)
    flat = _flatten(_ink_up(g))
    smooth = _blur3(flat)
    noise = 1.4826 * np.median(np.abs(smooth - np.median(smooth)))
    top = float(smooth.max())
    if top < max(MIN_CONTRAST, 8 * noise):
        return None
    t = max(_otsu(smooth, top), 4 * noise)
    mask = _keep_strokes(smooth > t)
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pen = stroke_width(mask)
    if max(r1 - r0, c1 - c0) < max(2.0 * pen, 4):  # a dot or a speck, not a digit
        return None

    # Ink level 0..1 with soft (anti-aliased) edges; grain outside the strokes' neighbourhood is zeroed.
    floor = min(3 * noise, t / 2)
    level = max(float(np.percentile(flat[mask], 75)), floor + 1)
    near = _spread(mask, 2)
    ink = np.clip((flat - floor) / (level - floor), 0, 1) * near
    m = 2  # margin for the anti-aliased fringe
    ink = ink[max(r0 - m, 0) : r1 + m, max(c0 - m, 0) : c1 + m]

    if stroke is not None:
        ink = _normalise_stroke(ink, pen, stroke, box)
    return _place(ink, box, center)


def _normalise_stroke(ink: np.ndarray, pen: float, target: float, box: int) -> np.ndarray:
    """Thin a thick pen (erosion) or thicken a thin one (dilation) towards `target` 28x28 pixels,
    at 4x the box's resolution: fine enough steps, and fast."""
    f = min(1.0, 4 * box / max(ink.shape))
    if f < 1:
        ink = _resize(ink, (max(1, round(ink.shape[1] * f)), max(1, round(ink.shape[0] * f))))
    per_px = box / max(ink.shape)  # 28x28 pixels per pixel once scaled into the box
    k = round((target / per_px - pen * f) / 2)  # pixels to add (or remove) on each side of the stroke
    if k == 0 or (k < 0 and pen * f + 2 * k < 1):
        return ink
    out = _spread(np.pad(ink, abs(k)), abs(k), np.maximum if k > 0 else np.minimum)
    return out if out.max() > 0.5 else ink  # never erase the digit


def _place(ink: np.ndarray, box: int, center: str) -> np.ndarray:
    """Scale the ink's bounding box into box x box (aspect kept, anti-aliased), place it in 28x28."""
    rows, cols = np.nonzero((ink > 0.05).any(1))[0], np.nonzero((ink > 0.05).any(0))[0]
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
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

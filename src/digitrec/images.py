"""Reading untrusted images safely: size checked from the header before decoding, any mode to 8-bit grey.

Split from preprocess.py: this half only decodes (and refuses what it must); preprocess makes the result look
like MNIST. NumPy + Pillow only (serving half).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from digitrec.errors import DigitrecError

MAX_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class Header:
    """An image `Image.open` has read the header of, no pixel decoded yet: what the web layer holds once it
    has checked format and size, so that decoding does not parse the file a second time. `open_image` decodes
    it exactly as it would decode the bytes (JPEG draft, frame 0, EXIF orientation, the same errors)."""

    image: Image.Image


ImageSource = str | Path | bytes | bytearray | Image.Image | Header


class ImageError(DigitrecError):
    """The input cannot be read as an image: empty, truncated, not an image, or too large."""


def open_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode a path, bytes or PIL image, refusing huge ones before decoding (PNG bombs).

    Returns a fully loaded single-frame image (first frame of an animation), EXIF orientation applied.
    `draft` lets a JPEG decode at a reduced scale no smaller than that size: a 12 Mpx photo is 10x faster.
    """
    if isinstance(source, Header):  # opened by the caller: decoded exactly as its bytes would be
        _check_size(source.image.size, max_pixels)
        return _decode(source.image, draft)
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
    return _decode(im, draft)


def _decode(im: Image.Image, draft: tuple[int, int] | None) -> Image.Image:
    """Decode an image whose header has been read (frame 0 only), JPEG at draft scale, EXIF orientation applied."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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


def grey8(im: Image.Image) -> Image.Image | None:
    """The image as Pillow 8-bit grey ('L') when that loses nothing we keep, else None (16-bit, alpha).
    Pillow's luma (ITU-R 601 rounded to whole levels) is 4x faster than NumPy's on RGB, within half a level."""
    if im.mode == "L":
        return im
    if im.mode == "1" or (im.mode == "RGB" and "transparency" not in im.info):
        return im.convert("L")
    if im.mode == "RGBA" and im.getextrema()[3][0] == 255:  # an opaque canvas (what browsers send):
        return im.convert("L")  # nothing to composite
    return None


def image_to_gray(im: Image.Image, max_pixels: int) -> np.ndarray:
    grey = grey8(im)
    if grey is not None:
        return np.asarray(grey, dtype=np.float32)
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey: keep the absolute scale
        a = np.asarray(im, dtype=np.float32)
        if im.mode.startswith("I;16") or (im.mode == "I" and a.max(initial=0) > 255):
            a = a / 257.0
        elif im.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        return np.clip(np.nan_to_num(a), 0, 255)
    try:
        has_alpha = "A" in im.mode or "a" in im.mode or "transparency" in im.info
        return array_to_gray(np.asarray(im.convert("RGBA" if has_alpha else "RGB")), max_pixels)
    except (ValueError, OSError) as e:
        raise ImageError(f"could not read the image: colour mode {im.mode} is not supported.") from e


def array_to_gray(a: np.ndarray, max_pixels: int) -> np.ndarray:
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

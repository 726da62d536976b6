"""Reading untrusted images safely: a bounded amount of memory and CPU per image, any mode to 8-bit grey.

Split from preprocess.py: this half only decodes (and refuses what it must); preprocess makes the result look
like MNIST. Every cost is checked before it is paid: the format from the first bytes and only our formats'
parsers tried (`formats=`), the size from the header, then the slow paths refused (run-length BMPs, which
Pillow decodes in Python; JPEGs padded with fill bytes or made of endless progressive scans). A big image is
shrunk by a whole factor right after decoding (JPEGs while decoding, `draft`) and transparency is composited
strip by strip, so one image costs its decoded size plus a few MB, whatever its canvas. NumPy + Pillow only.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.errors import DigitrecError

MAX_PIXELS = 4096 * 4096
# Pillow's plugin names for the formats we decode (its JPEG opener also returns MPO, many phone photos); no other
# parser ever sees the bytes.
PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
FORMATS_TEXT = "PNG, JPEG, WebP, BMP or GIF"
MAX_JPEG_SCANS = 64  # a progressive JPEG has about 10 scans; each one is a full pass over the image
# Pillow decodes an animated WebP's first frame through libwebp's animation decoder, which holds several
# canvases: ~15 bytes a pixel (242 MB for 4096², benchmarks/hostile.py), against ~5 for a still WebP.
MAX_ANIMATED_WEBP_PIXELS = 2048 * 2048
_FILL_RUN = re.compile(rb"\xff{256}")  # fill bytes before a JPEG marker: Pillow skips them one by one in Python
_STRIP_PIXELS = 1 << 18  # transparency is composited this many pixels at a time
# First bytes of formats people send that we do not read, so that the answer can name them.
_OTHER_FORMATS = [
    (re.compile(rb"^....ftyp(heic|heix|hevc|heim|heis|hevm|hevs|mif1|msf1)", re.S), "HEIC"),
    (re.compile(rb"^....ftyp(avif|avis)", re.S), "AVIF"),
    (re.compile(rb"^(II\*\x00|MM\x00\*)"), "TIFF"),
    (re.compile(rb"^\x00\x00\x01\x00"), "ICO"),
    (re.compile(rb"^%PDF"), "PDF"),
    (re.compile(rb"^\s*(<\?xml|<svg)", re.I), "SVG"),
    (re.compile(rb"^8BPS"), "PSD"),
]
# EXIF orientation -> the transpose that undoes it (as ImageOps.exif_transpose), applied after shrinking.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(DigitrecError):
    """The input cannot be read as an image: empty, truncated, not an image, or too large."""


class ImageTooLarge(ImageError):
    """More pixels than the limit (the web layer answers 413); `size` is (width, height) when the header
    could be read."""

    def __init__(self, message: str, size: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.size = size


class UnsupportedImage(ImageError):
    """An image in a format or an encoding we do not decode (the web layer answers 415)."""


@dataclass(frozen=True)
class Header:
    """An image whose header `read_header` has accepted, no pixel decoded yet: what the web layer holds once
    it knows format and size, so that decoding does not parse the file a second time. `open_image` decodes
    it exactly as it would decode the bytes."""

    image: Image.Image

    @property
    def pixels(self) -> int:
        width, height = self.image.size
        return width * height


ImageSource = str | Path | bytes | bytearray | Image.Image | Header


def read_header(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Header:
    """Open untrusted bytes far enough to know format and size, and refuse what would be costly to decode:
    other formats (named when we know them), more than `max_pixels`, run-length BMPs, padded JPEGs and
    JPEGs with more than MAX_JPEG_SCANS scans. Reads the header only: no pixel is decoded."""
    if not data:
        raise ImageError("could not read the image: the file is empty.")
    is_jpeg = data[:2] == b"\xff\xd8"
    if is_jpeg and _FILL_RUN.search(data):
        raise UnsupportedImage("the JPEG is padded with runs of fill bytes; send the image as saved by a camera "
                               "or an editor.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we enforce our own limit
        try:
            im = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)  # lazy: reads the header only
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(f"the image is too large: {e}. Send at most {max_pixels} pixels.") from e
        except Image.UnidentifiedImageError as e:
            name = next((name for magic, name in _OTHER_FORMATS if magic.match(data[:64])), None)
            if name:
                raise UnsupportedImage(f"the file is in {name} format; send {FORMATS_TEXT}.") from e
            raise ImageError(f"could not read the image: it is not a {FORMATS_TEXT} file.") from e
        except Exception as e:  # a header cut short or corrupt: Pillow raises many types
            raise ImageError("could not read the image: the file is truncated or corrupt.") from e
    _check_size(im.size, max_pixels)
    if im.format == "BMP" and any(tile[0] != "raw" for tile in im.tile):
        raise UnsupportedImage("run-length compressed BMP files are not supported; send an uncompressed BMP "
                               "or a PNG.")
    if im.format == "WEBP" and getattr(im, "n_frames", 1) > 1 and im.width * im.height > MAX_ANIMATED_WEBP_PIXELS:
        raise UnsupportedImage(f"animated WebP images of more than {MAX_ANIMATED_WEBP_PIXELS:,} pixels are not "
                               "supported; send its first frame as a PNG or JPEG.")
    if is_jpeg and data.count(b"\xff\xda") > MAX_JPEG_SCANS:  # 0xFF in coded data is escaped: these are markers
        raise UnsupportedImage(f"the JPEG has more than {MAX_JPEG_SCANS} scans; save it again as a baseline "
                               "or ordinary progressive JPEG.")
    return Header(im)


def open_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode a path, bytes or PIL image, refusing huge or costly ones before decoding (see `read_header`).

    Returns a fully loaded single-frame image (first frame of an animation), EXIF orientation applied.
    `draft` (w, h) lets it come back smaller, but never smaller than that: a JPEG decodes at a reduced scale
    (a 12 Mpx photo is 10x faster), any other image is shrunk by a whole factor right after decoding, and a
    transparent one is composited on white ('L'), strip by strip.
    """
    return open_with_side(source, max_pixels=max_pixels, draft=draft)[0]


def decode_gray(
    source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS, side: int | None = None
) -> tuple[np.ndarray, float]:
    """(H, W) float32 grey levels 0..255 of any image or array (transparency composited on white), decoded
    at no less than `side` pixels on each side when given (see `open_image`), and its scale from the source:
    a box found in it is (box / scale) in the sent image's pixels."""
    if isinstance(source, np.ndarray):
        return array_to_gray(source, max_pixels), 1.0
    im, long_side = open_with_side(source, max_pixels=max_pixels, draft=(side, side) if side else None)
    return image_to_gray(im, max_pixels), max(im.size) / long_side


def open_with_side(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, draft: tuple[int, int] | None = None
) -> tuple[Image.Image, int]:
    """`open_image`, and the long side of the image as sent, before any shrinking: what a box found in the
    result is scaled back to."""
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels)
        im, long_side = source, max(source.size)
    else:
        if isinstance(source, Header):
            header = source
        elif isinstance(source, (str, Path)):
            try:
                header = read_header(Path(source).read_bytes(), max_pixels=max_pixels)
            except OSError as e:
                raise ImageError(f"could not read the image {str(source)!r}: {e.strerror or e}.") from e
        elif isinstance(source, (bytes, bytearray, memoryview)):
            header = read_header(bytes(source), max_pixels=max_pixels)
        else:
            raise TypeError(f"expected a path, bytes, a PIL image or an array, got {type(source).__name__}")
        _check_size(header.image.size, max_pixels)
        long_side = max(header.image.size)  # before a JPEG draft changes it
        im = _load(header.image, draft)
    try:
        orientation = im.getexif().get(0x0112)
        if draft:
            im = _shrink(im, draft)
        method = _ORIENTATION.get(orientation)
        return (im.transpose(method) if method is not None else im.copy() if im is source else im), long_side
    except Exception as e:
        raise ImageError("could not read the image: the file is truncated or corrupt.") from e


def _load(im: Image.Image, draft: tuple[int, int] | None) -> Image.Image:
    """Decode frame 0 of an image whose header has been read; a JPEG at draft scale."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            if draft and im.format in ("JPEG", "MPO"):
                im.draft(None, draft)
            im.load()
            return im
        except Exception as e:
            raise ImageError("could not read the image: the file is truncated or corrupt.") from e


def _shrink(im: Image.Image, draft: tuple[int, int]) -> Image.Image:
    """Box-reduce by the largest whole factor that keeps the image at least `draft`; composite any
    transparency on white first, strip by strip (a full-size RGBA copy of a 4096^2 canvas is 64 MB)."""
    factor = max(1, min(im.width // draft[0], im.height // draft[1]))
    if _has_alpha(im) and not (im.mode == "RGBA" and im.getextrema()[3][0] == 255):  # opaque: as RGB
        return _on_white(im, factor)
    if factor == 1:
        return im
    if im.mode in ("1", "P") or im.mode.startswith("I;16"):
        im = im.convert("L" if im.mode in ("1", "P") else "I")
    return im.reduce(factor)


def _has_alpha(im: Image.Image) -> bool:
    return "A" in im.mode or "a" in im.mode or "transparency" in im.info


def _on_white(im: Image.Image, factor: int) -> Image.Image:
    """A transparent image composited on white paper as 8-bit grey, reduced by `factor`: rows of at most
    _STRIP_PIXELS pixels at a time, each a whole number of `factor` rows, so the result is exactly the
    reduction of the whole composited image."""
    width, height = im.size
    rows = max(1, _STRIP_PIXELS // (width * factor)) * factor
    out = Image.new("L", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        part = im.crop((0, top, width, min(top + rows, height))).convert("RGBA")
        grey = Image.alpha_composite(Image.new("RGBA", part.size, "white"), part).convert("L")
        out.paste(grey.reduce(factor) if factor > 1 else grey, (0, top // factor))
    return out


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"the image is too large: {w}x{h} pixels; send at most {max_pixels} pixels "
            f"(e.g. {math.isqrt(max_pixels)}x{math.isqrt(max_pixels)}).",
            (w, h),
        )
    if w < 1 or h < 1:
        raise ImageError("could not read the image: it has no pixels.")


def grey8(im: Image.Image) -> Image.Image | None:
    """The image as Pillow 8-bit grey ('L') when that loses nothing we keep, else None (16-bit, alpha).
    Pillow's luma (ITU-R 601 rounded to whole levels) is 4x faster than NumPy's on RGB, within half a level."""
    if im.mode == "L":
        return im
    if im.mode in ("1", "CMYK", "YCbCr") or (im.mode in ("RGB", "P") and "transparency" not in im.info):
        return im.convert("L")
    if im.mode == "RGBA" and im.getextrema()[3][0] == 255:  # an opaque canvas (what browsers send):
        return im.convert("L")  # nothing to composite
    return None


def image_to_gray(im: Image.Image, max_pixels: int) -> np.ndarray:
    """(H, W) float32 grey levels 0..255 of a decoded image; transparency composited on white."""
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
        return np.asarray(_on_white(im, 1) if _has_alpha(im) else im.convert("L"), dtype=np.float32)
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

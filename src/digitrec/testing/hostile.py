"""Small files that used to cost a server far more than their size: each made here, in memory, in a few
milliseconds (nothing big is committed). Used by tests/e2e/server/test_hostile_server.py (statuses),
tests/unit/inference/test_hostile.py (decoding) and benchmarks/hostile.py (memory, CPU and /healthz latency
while they are sent).

Each case is (name, route, what to send, the statuses that count as handled).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    route: str  # /api/predict, /api/predict/number or /api/predict/batch
    make: Callable[[], list[bytes]]  # the file(s) to upload
    ok: tuple[int, ...]  # statuses that mean "handled": a correct answer or the right 4xx


def _png(im: Image.Image, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG", **kw)
    return out.getvalue()


def transparent_png(side: int = 4096) -> bytes:
    """A fully transparent RGBA canvas: ~60 KB that decodes to 64 MB (and used to be composited in float32)."""
    return _png(Image.new("RGBA", (side, side), (0, 0, 0, 0)), optimize=True)


def palette_trns_png(side: int = 4096) -> bytes:
    """A palette image whose colour 0 is transparent (tRNS): 2 KB on disk."""
    return _png(Image.new("P", (side, side), 0), transparency=0)


def animated_webp(side: int = 4096) -> bytes:
    """Two frames of a 4096² canvas in a ~150-byte animated WebP."""
    frames = [Image.new("RGBA", (side, side), (0, 0, 0, 0)), Image.new("RGBA", (side, side), (255, 0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    return out.getvalue()


def ico_wrapping_png(side: int = 13000) -> bytes:
    """An ICO whose one entry is a PNG of side² pixels: Pillow's ICO parser decodes it to read its size."""
    png = _png(Image.new("1", (side, side), 0))
    header = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22)
    return header + png


def jpeg_with_fill(fill: int = 2_000_000) -> bytes:
    """A tiny JPEG with `fill` 0xFF fill bytes before its first marker (legal, and parsed byte by byte)."""
    out = io.BytesIO()
    Image.new("L", (64, 64), 128).save(out, "JPEG")
    data = out.getvalue()
    return data[:2] + b"\xff" * fill + data[2:]


def jpeg_many_scans(scans: int = 200) -> bytes:
    """A progressive JPEG whose first scan is repeated: each scan is another full pass of the decoder."""
    out = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (512, 512), dtype=np.uint8)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    first = data.index(b"\xff\xda")
    second = data.index(b"\xff\xda", first + 2)
    return data[:second] + data[first:second] * scans + data[second:]


def rle8_bmp(width: int = 4096, height: int = 4096) -> bytes:
    """An 8-bit run-length BMP (Pillow decodes these in Python, pixel run by pixel run): each row one short
    run then end-of-line, ~16 KB for 4096² pixels."""
    data = bytes([1, 255, 0, 0]) * height + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    return file_header + info + palette + data


def heic_like() -> bytes:
    """The first bytes of an HEIC photo (what an iPhone sends by default): a format we do not read."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + bytes(64)


def png_bomb(side: int = 100_000) -> bytes:
    """A PNG header claiming side² pixels (IHDR only): refused from the header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def mark_grid(side: int = 1024) -> bytes:
    """A page of short bars, 12 px apart (a 3 KB PNG of ~3,600 ink pieces, each tall enough to pass for a
    digit): number mode groups and reads pieces."""
    a = np.full((side, side), 255, np.uint8)
    for y in range(8, side - 14, 24):
        for x in range(8, side - 3, 12):
            a[y : y + 14, x : x + 3] = 0
    return _png(Image.fromarray(a), optimize=True)


def noise_png(side: int = 1024) -> bytes:
    """Incompressible grey noise: the most decoding work a body of this size can ask for."""
    return _png(Image.fromarray(np.random.default_rng(1).integers(0, 256, (side, side), dtype=np.uint8)))


def batch_of_canvases(n: int = 16, side: int = 4096) -> list[bytes]:
    """A batch of big (transparent) canvases, 1 MB in all: each alone is allowed, together 268 Mpx."""
    one = transparent_png(side)
    return [one] * n


CASES = [
    Case("transparent RGBA PNG 4096²", "/api/predict", lambda: [transparent_png()], (200,)),
    Case("palette + tRNS PNG 4096²", "/api/predict", lambda: [palette_trns_png()], (200,)),
    Case("animated WebP 4096²", "/api/predict", lambda: [animated_webp()], (415,)),
    Case("ICO wrapping a 13000² PNG", "/api/predict", lambda: [ico_wrapping_png()], (415,)),
    Case("JPEG with 2 MB of fill bytes", "/api/predict", lambda: [jpeg_with_fill()], (415,)),
    Case("progressive JPEG, 200 scans", "/api/predict", lambda: [jpeg_many_scans()], (415,)),
    Case("RLE8 BMP 4096²", "/api/predict", lambda: [rle8_bmp()], (415,)),
    Case("HEIC photo", "/api/predict", lambda: [heic_like()], (415,)),
    Case("PNG header of 100000²", "/api/predict", lambda: [png_bomb()], (413,)),
    Case("noise PNG 1024²", "/api/predict", lambda: [noise_png()], (200,)),
    Case("grid of marks, number mode", "/api/predict/number", lambda: [mark_grid()], (400,)),
    Case("batch of 16 transparent 4096² PNGs", "/api/predict/batch", batch_of_canvases, (413,)),
]


def files_for(case: Case) -> list[tuple[str, tuple[str, bytes]]]:
    """The multipart `files=` argument for httpx: `file` for one image, `files` for a batch."""
    field = "files" if case.route.endswith("/batch") else "file"
    return [(field, (f"hostile-{i}", data)) for i, data in enumerate(case.make())]


def phone_photo(width: int = 4000, height: int = 3000) -> bytes:
    """Not hostile: a 12 Mpx JPEG of a digit on paper with camera-like grain (~3 MB), the largest ordinary
    upload, for comparison."""
    from digitrec.training.synth import render

    digit = render(4, np.random.default_rng(12), "photo", size=height).convert("L")
    page = Image.new("L", (width, height), 200)
    page.paste(digit, ((width - height) // 2, 0))
    grain = np.random.default_rng(13).normal(0, 6, (height, width))
    a = np.clip(np.asarray(page, np.float32) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()

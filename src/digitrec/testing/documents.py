"""Synthetic real-document images: digits and numbers as they come from paper (benchmarks/documents.py measures
the reading of them; tests/unit/inference/test_document.py uses some).

Never MNIST, and kept apart from anything trained on: the handwriting comes from digitrec.training.synth's stroke
templates (digits) and this module's own stroke templates (letters, symbols) drawn the same way, never from a
font. Every generator takes a seeded `rng` and returns a PIL image and its truth (a digit, a number string,
or None for a picture that holds no digit).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from digitrec.testing.glyphs import LETTERS, SYMBOLS, Strokes, digit_glyph, extent, glyph, moved
from digitrec.training.synth import S, _draw, _stroke_points, render


class Sheet:
    """A w x h piece of paper (RGB floats) that ink and printed lines are laid on, then photographed or scanned."""

    def __init__(self, w: int, h: int, rng: np.random.Generator, tone: float | None = None) -> None:
        self.w, self.h, self.rng = w, h, rng
        t = rng.uniform(215, 252) if tone is None else tone
        self.rgb = np.ones((h, w, 3)) * t * np.array([1, rng.uniform(0.97, 1), rng.uniform(0.9, 1)])

    def lay(self, strokes: Strokes, pen: float, colour: np.ndarray, strength: float = 1.0,
            texture: float = 0.0) -> None:
        ink = _draw(strokes, pen, (self.w, self.h), ss=2) * strength
        if texture:
            ink = ink * np.clip(1 - texture * self.rng.random(ink.shape), 0, 1)
        a = ink[..., None]
        self.rgb = self.rgb * (1 - a) + colour * a

    def line(self, x0: float, y0: float, x1: float, y1: float, width: float, colour: np.ndarray) -> None:
        n = max(2, int(abs(x1 - x0) + abs(y1 - y0)) // 4)
        pts = np.stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)], 1)
        self.lay([pts], width, colour)

    def box(self, x: float, y: float, w: float, h: float, width: float, colour: np.ndarray) -> None:
        for a in ((x, y, x + w, y), (x, y + h, x + w, y + h), (x, y, x, y + h), (x + w, y, x + w, y + h)):
            self.line(*a, width, colour)

    def finish(self, noise: float = 3.0, blur: float = 0.5, jpeg: float = 0.5) -> Image.Image:
        rgb = self.rgb + self.rng.normal(0, noise, (self.h, self.w, 1))
        im = Image.fromarray(np.uint8(np.clip(rgb, 0, 255)), "RGB")
        if blur > 0:
            im = im.filter(ImageFilter.GaussianBlur(blur))
        return _jpeg(im, self.rng) if self.rng.random() < jpeg else im


def _jpeg(im: Image.Image, rng: np.random.Generator, q: tuple[int, int] = (35, 92)) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(*q)))
    out = Image.open(io.BytesIO(buf.getvalue()))
    out.load()
    return out


def _ink(rng: np.random.Generator) -> np.ndarray:
    """Pen colours: black, dark grey, blue, dark blue."""
    return [np.array([20.0, 20, 25]), np.array([60.0, 60, 60]), np.array([25.0, 40, 150]),
            np.array([15.0, 20, 80])][rng.integers(4)]


def _rule(rng: np.random.Generator) -> np.ndarray:
    """Printed line colours: light blue, grey, black, red."""
    return [np.array([140.0, 170, 220]), np.array([150.0, 150, 150]), np.array([30.0, 30, 30]),
            np.array([210.0, 90, 90])][rng.integers(4)]


# -- single digits, one generator per condition ----------------------------------------------------------


def tight(d: int, rng: np.random.Generator) -> Image.Image:
    """Cut out tight to its ink: the strokes touch the picture's borders."""
    hgt = rng.uniform(28, 160)
    pen = hgt * rng.uniform(0.06, 0.18)
    g = digit_glyph(d, rng, hgt)
    w, h = (extent(g) + pen).astype(int) + 2
    sheet = Sheet(w, h, rng)
    sheet.lay(moved(g, pen / 2 + 1, pen / 2 + 1), pen, _ink(rng), rng.uniform(0.8, 1))
    im = sheet.finish(rng.uniform(1, 5), rng.uniform(0, 0.7))
    a = 255 - np.asarray(im.convert("L"), np.float32)
    ys, xs = np.nonzero(a > 0.5 * a.max())
    m = rng.integers(0, 2)
    return im.crop((max(xs.min() - m, 0), max(ys.min() - m, 0), min(xs.max() + 1 + m, im.width),
                    min(ys.max() + 1 + m, im.height)))


def boxed(d: int, rng: np.random.Generator) -> Image.Image:
    """A form field cut out with its frame (and sometimes a little of the form around it)."""
    bw = rng.uniform(40, 160)
    bh = bw * rng.uniform(0.9, 1.4)
    frame = max(1.0, bw * rng.uniform(0.01, 0.04))
    margin = bw * rng.choice([0, rng.uniform(0, 0.15)])
    w, h = int(bw + 2 * margin + frame + 2), int(bh + 2 * margin + frame + 2)
    sheet = Sheet(w, h, rng)
    x0, y0 = margin + frame / 2 + 1, margin + frame / 2 + 1
    sheet.box(x0, y0, bw, bh, frame, _rule(rng))
    hgt = bh * rng.uniform(0.5, 0.82)
    pen = hgt * rng.uniform(0.06, 0.15)
    g = digit_glyph(d, rng, hgt)
    room = np.array([bw, bh]) - extent(g) - 2 * pen - 2 * frame
    off = np.array([x0, y0]) + frame + pen + rng.uniform(0, 1, 2) * np.maximum(room, 0)
    sheet.lay(moved(g, *off), pen, _ink(rng))
    return sheet.finish(rng.uniform(1, 5), rng.uniform(0, 0.8))


def _ruled(sheet: Sheet, spacing: float, rng: np.random.Generator, phase: float) -> None:
    colour = [np.array([140.0, 170, 220]), np.array([170.0, 170, 170])][rng.integers(2)]  # blue or grey rules
    width = rng.uniform(1, 2.2)
    y = phase
    while y < sheet.h:
        sheet.line(0, y, sheet.w, y + rng.uniform(-1, 1), width, colour)
        y += spacing


def lined(d: int, rng: np.random.Generator) -> Image.Image:
    """On ruled paper: the digit sits on a line and may cross the one above."""
    spacing = rng.uniform(24, 60)
    hgt = spacing * rng.uniform(0.7, 1.3)
    pen = hgt * rng.uniform(0.06, 0.14)
    g = digit_glyph(d, rng, hgt)
    ext = extent(g)
    w = int(ext[0] + hgt * rng.uniform(0.6, 2.0))
    h = int(spacing * rng.integers(2, 4) + hgt * 0.6)
    sheet = Sheet(w, h, rng)
    phase = rng.uniform(0, spacing)
    _ruled(sheet, spacing, rng, phase)
    base = phase + spacing * np.ceil((hgt + pen - phase) / spacing)  # the first line below the digit's top
    if base > h - pen:
        base -= spacing
    x = rng.uniform(pen, max(w - ext[0] - pen, pen + 1))
    sheet.lay(moved(g, x, base - ext[1] - rng.uniform(0, 0.1) * hgt), pen, _ink(rng))
    return sheet.finish(rng.uniform(1, 5), rng.uniform(0, 0.8))


def lowres(d: int, rng: np.random.Generator, upscale: bool = True) -> Image.Image:
    """A scan at 8-32 px: grey ink on grey paper, soft; upscaled 4-12x by the sender, or sent as it is."""
    side = int(rng.integers(8, 33))
    hgt = side * rng.uniform(0.6, 0.9)
    pen = max(hgt * rng.uniform(0.1, 0.2), 0.9)
    g = digit_glyph(d, rng, hgt)
    ext = extent(g)
    sheet = Sheet(side, side, rng, tone=rng.uniform(150, 240))
    off = (side - ext) / 2 + rng.uniform(-0.1, 0.1, 2) * side
    off = np.clip(off, pen / 2, np.maximum(side - ext - pen / 2, pen / 2))  # the whole digit on the scan
    sheet.lay(moved(g, *off), pen, np.full(3, rng.uniform(20, 110)))
    im = sheet.finish(rng.uniform(1, 4), rng.uniform(0.3, 0.8), jpeg=0).convert("L")
    if upscale:
        f = int(rng.integers(4, 13))
        how = [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.NEAREST][rng.integers(3)]
        im = im.resize((side * f, side * f), how)
    return im


def pencil(d: int, rng: np.random.Generator) -> Image.Image:
    """Faint, patchy pencil on white paper, scanned."""
    side = int(rng.uniform(90, 280))
    hgt = side * rng.uniform(0.35, 0.8)
    pen = hgt * rng.uniform(0.03, 0.08)
    g = digit_glyph(d, rng, hgt)
    ext = extent(g)
    sheet = Sheet(side, side, rng, tone=rng.uniform(225, 250))
    off = rng.uniform(pen, np.maximum(side - ext - pen, pen + 1))
    sheet.lay(moved(g, *off), pen, np.full(3, 60.0), rng.uniform(0.15, 0.45), texture=0.6)
    return sheet.finish(rng.uniform(1.5, 5), rng.uniform(0.3, 0.9))


def photo(d: int, rng: np.random.Generator) -> Image.Image:
    """A phone photo of the paper: uneven light, colour cast, blur, a slight perspective, JPEG."""
    w = int(rng.uniform(320, 720))
    h = w * 3 // 4
    hgt = h * rng.uniform(0.2, 0.6)
    pen = hgt * rng.uniform(0.05, 0.13)
    g = digit_glyph(d, rng, hgt)
    ext = extent(g)
    off = rng.uniform(0.2, 0.8, 2) * (np.array([w, h]) - ext)
    g = moved(g, *off)
    kx, ky = rng.uniform(-0.3, 0.3, 2) / w  # perspective tilt about the centre
    g = [_tilt(p, w, h, kx, ky) for p in g]
    sheet = Sheet(w, h, rng)
    sheet.lay(g, pen, _ink(rng))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    gr = rng.normal(0, 1, 2)
    vignette = rng.uniform(0, 0.6) * ((xx - 0.5) ** 2 + (yy - 0.4) ** 2)
    light = 1 + 0.25 * (gr[0] * (xx - 0.5) + gr[1] * (yy - 0.4)) - vignette
    cast = np.array([rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.04), rng.uniform(0.75, 1.0)])
    sheet.rgb = sheet.rgb * np.clip(light, 0.35, 1.2)[..., None] * cast * rng.uniform(0.6, 1.0)
    im = sheet.finish(rng.uniform(3, 9), rng.uniform(0.5, 1.6), jpeg=0)
    return _jpeg(im, rng, (25, 90))


def _tilt(p: np.ndarray, w: int, h: int, kx: float, ky: float) -> np.ndarray:
    x, y = p[:, 0] - w / 2, p[:, 1] - h / 2
    den = 1 + kx * x + ky * y
    return np.stack([x / den + w / 2, y / den + h / 2], 1)


def canvas(d: int, rng: np.random.Generator) -> Image.Image:
    """Not from paper: a drawing as the web page sends it (black strokes on a white 280x280 canvas), the load
    benchmark's kind, so that the page's refusals are measured beside the documents'."""
    return render(d, rng, "canvas")


SINGLE: dict[str, Callable[[int, np.random.Generator], Image.Image]] = {
    "tight crop": tight, "boxed": boxed, "lined paper": lined, "low-res scan, upscaled": lowres,
    "low-res scan, as sent": lambda d, rng: lowres(d, rng, upscale=False), "faint pencil": pencil,
    "photo of paper": photo,
}
PAGE = {"canvas drawing (the page)": canvas}


# -- numbers ----------------------------------------------------------------------------------------------


def _number_glyphs(text: str, rng: np.random.Generator, hgt: float, pen: float) -> tuple[list[Strokes], float]:
    """Glyphs of `text` ('.' a dot on the baseline) side by side, baseline at y = hgt; and their width."""
    out, x = [], 0.0
    for ch in text:
        if ch == ".":  # a dab of the pen, 1.2-2 pen widths across, on the baseline
            r = pen * rng.uniform(0.6, 1.0)
            x += hgt * rng.uniform(0.08, 0.2)
            out.append([np.array([[x + r, hgt - r], [x + r + 0.01, hgt - r]])])
            x += 2 * r + hgt * rng.uniform(0.1, 0.2)
            continue
        h = hgt * rng.uniform(0.9, 1.05)
        g = digit_glyph(int(ch), rng, h)
        ext = extent(g)
        out.append(moved(g, x, hgt - ext[1] + rng.uniform(-0.05, 0.05) * hgt))
        x += ext[0] + hgt * rng.uniform(0.15, 0.55)
    return out, x


def _number_text(rng: np.random.Generator, decimal: bool = False) -> str:
    k = int(rng.integers(2, 7)) if not decimal else int(rng.integers(2, 6))
    s = "".join(str(v) for v in rng.integers(0, 10, k))
    if decimal:
        p = int(rng.integers(1, k))
        s = s[:p] + "." + s[p:]
    return s


def number(rng: np.random.Generator, ruled: bool = False, decimal: bool = False) -> tuple[Image.Image, str]:
    """A number written on plain (or ruled) paper, scanned."""
    text = _number_text(rng, decimal)
    hgt = rng.uniform(30, 80)
    pen = hgt * rng.uniform(0.06, 0.13)
    glyphs, width = _number_glyphs(text, rng, hgt, pen)
    mx, my = hgt * rng.uniform(0.2, 0.8), hgt * rng.uniform(0.2, 0.6)
    w, h = int(width + 2 * mx), int(hgt * 1.3 + 2 * my)
    sheet = Sheet(w, h, rng)
    if ruled:
        spacing = hgt * rng.uniform(0.9, 1.3)
        base = my + hgt
        _ruled(sheet, spacing, rng, base % spacing)
    ink = _ink(rng)
    for g in glyphs:
        dot = len(g) == 1 and len(g[0]) == 2  # its pen is its diameter: the dab sits on the baseline
        sheet.lay(moved(g, mx, my), 2 * (hgt - g[0][0, 1]) if dot else pen, ink)
    return sheet.finish(rng.uniform(1, 5), rng.uniform(0, 0.8)), text


def comb(rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A comb field: a row of boxes, one digit in each (postcodes, dates, account numbers)."""
    text = "".join(str(v) for v in rng.integers(0, 10, int(rng.integers(3, 8))))
    cw = rng.uniform(34, 80)
    ch = cw * rng.uniform(1.0, 1.4)
    frame = max(1.0, cw * rng.uniform(0.01, 0.04))
    m = cw * rng.uniform(0, 0.3)
    w, h = int(cw * len(text) + 2 * m + frame + 2), int(ch + 2 * m + frame + 2)
    sheet = Sheet(w, h, rng)
    colour = _rule(rng)
    x0, y0 = m + frame / 2 + 1, m + frame / 2 + 1
    sheet.line(x0, y0, x0 + cw * len(text), y0, frame, colour)
    sheet.line(x0, y0 + ch, x0 + cw * len(text), y0 + ch, frame, colour)
    for i in range(len(text) + 1):
        sheet.line(x0 + i * cw, y0, x0 + i * cw, y0 + ch, frame, colour)
    ink = _ink(rng)
    for i, c in enumerate(text):
        hgt = ch * rng.uniform(0.55, 0.82)
        pen = hgt * rng.uniform(0.06, 0.13)
        g = digit_glyph(int(c), rng, hgt)
        room = np.array([cw, ch]) - extent(g) - 2 * pen - 2 * frame
        off = np.array([x0 + i * cw, y0]) + frame + pen + rng.uniform(0, 1, 2) * np.maximum(room, 0)
        sheet.lay(moved(g, *off), pen, ink)
    return sheet.finish(rng.uniform(1, 5), rng.uniform(0, 0.8)), text


NUMBERS: dict[str, Callable[[np.random.Generator], tuple[Image.Image, str]]] = {
    "number, plain paper": number,
    "number, lined paper": lambda rng: number(rng, ruled=True),
    "number, comb field": comb,
    "number with a decimal point": lambda rng: number(rng, decimal=True),
}


# -- things that are not digits ---------------------------------------------------------------------------


def _one_shape(templates: dict[str, list], rng: np.random.Generator) -> Image.Image:
    keys = sorted(templates)
    variant = templates[keys[rng.integers(len(keys))]]
    side = int(rng.uniform(60, 280))
    hgt = side * rng.uniform(0.4, 0.8)
    pen = hgt * rng.uniform(0.05, 0.12)
    g = glyph(variant, rng, hgt, rng.uniform(0.6, 1.0))
    ext = extent(g)
    sheet = Sheet(side, side, rng) if rng.random() < 0.6 else Sheet(side, side, rng, tone=255.0)
    off = rng.uniform(pen, np.maximum(side - ext - pen, pen + 1))
    sheet.lay(moved(g, *off), pen, _ink(rng))
    return sheet.finish(rng.uniform(0, 4), rng.uniform(0, 0.7))


def letter(rng: np.random.Generator) -> Image.Image:
    return _one_shape(LETTERS, rng)


def symbol(rng: np.random.Generator) -> Image.Image:
    return _one_shape(SYMBOLS, rng)


def scribble(rng: np.random.Generator) -> Image.Image:
    """A random smooth pen path through 6-14 points: loops and crossings, nothing in particular."""
    side = int(rng.uniform(60, 280))
    pts = rng.uniform(0.1, 0.9, (int(rng.integers(6, 15)), 2)) * side
    strokes = [_stroke_points([S(*[tuple(p) for p in pts])], rng, 0.0)]
    sheet = Sheet(side, side, rng)
    sheet.lay(strokes, side * rng.uniform(0.02, 0.06), _ink(rng))
    return sheet.finish(rng.uniform(0, 4), rng.uniform(0, 0.7))


def picture(rng: np.random.Generator) -> Image.Image:
    """Other things: filled or outlined shapes, stripes, checks, smooth blotches, grain."""
    side = int(rng.uniform(48, 280))
    kind = rng.integers(5)
    yy, xx = np.mgrid[0:side, 0:side] / side
    if kind == 0:  # a filled disc or rectangle
        c, r = rng.uniform(0.3, 0.7, 2), rng.uniform(0.15, 0.35, 2)
        a = ((np.abs(xx - c[0]) < r[0]) & (np.abs(yy - c[1]) < r[1])) if rng.random() < 0.5 else \
            (((xx - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 < 1)
        a = a.astype(float)
    elif kind == 1:  # an outlined triangle or square
        c, r = rng.uniform(0.35, 0.65, 2), rng.uniform(0.2, 0.3)
        n = int(rng.choice([3, 4, 5]))
        t = rng.uniform(0, 2 * math.pi) + np.linspace(0, 2 * math.pi, n + 1)
        pts = np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1) * side
        return _lines_picture([pts], side * rng.uniform(0.02, 0.06), side, rng)
    elif kind == 2:  # stripes
        f, th = rng.uniform(3, 12), rng.uniform(0, math.pi)
        a = (np.sin(2 * math.pi * f * (xx * math.cos(th) + yy * math.sin(th))) > 0).astype(float)
    elif kind == 3:  # checks
        f = int(rng.integers(2, 8))
        a = ((np.floor(xx * f) + np.floor(yy * f)) % 2).astype(float)
    else:  # smooth blotches
        small = rng.random((int(rng.integers(3, 8)),) * 2)
        a = np.asarray(Image.fromarray(np.uint8(255 * small)).resize((side, side), Image.Resampling.BICUBIC)) / 255
    grey = 230 - a * rng.uniform(80, 200) + rng.normal(0, rng.uniform(0, 8), a.shape)
    return Image.fromarray(np.uint8(np.clip(grey, 0, 255)), "L")


def _lines_picture(strokes: Strokes, pen: float, side: int, rng: np.random.Generator) -> Image.Image:
    sheet = Sheet(side, side, rng)
    sheet.lay(strokes, pen, _ink(rng))
    return sheet.finish(rng.uniform(0, 4), rng.uniform(0, 0.7))


REFUSALS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "letters (handwritten)": letter, "symbols": symbol, "scribbles": scribble, "other pictures": picture,
}

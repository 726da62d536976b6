"""Synthetic handwriting: digits as people draw, scan and photograph them, kept apart from MNIST.

Used to choose the preprocessing (box size, stroke normalisation, centring) and to report accuracy on
real-looking input next to the MNIST figure, and by the browser tests, which replay `stroke_path` with a real
mouse on the page's canvas. Each digit has a few stroke templates (how people actually write it) in a unit
box, x right and y down; a sample jitters them, slants, rotates, stretches, scales and moves them, then
renders with a random pen. NumPy + Pillow only.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = ("canvas", "scan", "photo", "chalk")
Point = tuple[float, float]


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float, turn: float, n: int = 9) -> list:
    """Points on an ellipse from angle `start` (0 = top, clockwise on screen) through `turn` turns."""
    a = start + np.linspace(0, 2 * math.pi * turn, n)
    return [("s", [(cx + rx * math.sin(t), cy - ry * math.cos(t)) for t in a])]


def L(*pts: Point) -> tuple:  # noqa: N802 - reads like the template notation
    """Straight segments through the points (sharp corners)."""
    return ("l", list(pts))


def S(*pts: Point) -> tuple:  # noqa: N802
    """A smooth Catmull-Rom curve through the points."""
    return ("s", list(pts))


# TEMPLATES[digit] = variants; a variant = strokes (pen down .. pen up); a stroke = pieces joined end to end.
TEMPLATES: dict[int, list[list[list[tuple]]]] = {
    0: [
        [_ellipse(0.5, 0.5, 0.4, 0.5, 0.0, -1.05)],
        [_ellipse(0.5, 0.5, 0.33, 0.5, 0.3, -1.1)],
    ],
    1: [
        [[L((0.5, 0.0), (0.5, 1.0))]],
        [[L((0.2, 0.25), (0.55, 0.0), (0.55, 1.0))]],
        [[L((0.2, 0.25), (0.55, 0.0), (0.55, 1.0))], [L((0.25, 1.0), (0.85, 1.0))]],
    ],
    2: [
        [
            [
                S(
                    (0.1, 0.25),
                    (0.35, 0.03),
                    (0.7, 0.04),
                    (0.85, 0.25),
                    (0.7, 0.5),
                    (0.35, 0.78),
                    (0.05, 1.0),
                ),
                L((0.05, 1.0), (0.95, 1.0)),
            ]
        ],
        [
            [
                S((0.12, 0.2), (0.45, 0.0), (0.85, 0.15), (0.8, 0.45), (0.45, 0.75), (0.08, 1.0)),
                S((0.08, 1.0), (0.5, 0.92), (0.95, 0.98)),
            ]
        ],
    ],
    3: [
        [
            [
                S((0.1, 0.15), (0.45, 0.0), (0.85, 0.13), (0.8, 0.36), (0.42, 0.48)),
                S((0.42, 0.48), (0.85, 0.6), (0.9, 0.82), (0.55, 1.0), (0.1, 0.88)),
            ]
        ],
        [
            [
                L((0.1, 0.0), (0.85, 0.0), (0.4, 0.42)),
                S((0.4, 0.42), (0.85, 0.55), (0.9, 0.8), (0.5, 1.0), (0.1, 0.88)),
            ]
        ],
    ],
    4: [
        [[L((0.55, 0.0), (0.05, 0.66), (0.95, 0.66))], [L((0.68, 0.28), (0.68, 1.0))]],
        [[L((0.2, 0.0), (0.08, 0.6), (0.92, 0.6))], [L((0.7, 0.05), (0.7, 1.0))]],
        [[L((0.7, 1.0), (0.7, 0.0), (0.05, 0.66), (0.95, 0.66))]],
    ],
    5: [
        [
            [
                L((0.22, 0.0), (0.17, 0.45)),
                S((0.17, 0.45), (0.5, 0.37), (0.85, 0.53), (0.88, 0.8), (0.55, 1.0), (0.1, 0.9)),
            ],
            [L((0.22, 0.0), (0.88, 0.0))],
        ],
        [
            [
                L((0.88, 0.0), (0.22, 0.0), (0.17, 0.45)),
                S((0.17, 0.45), (0.5, 0.37), (0.85, 0.53), (0.88, 0.8), (0.55, 1.0), (0.1, 0.9)),
            ]
        ],
    ],
    6: [
        [
            [
                S(
                    (0.78, 0.02),
                    (0.4, 0.2),
                    (0.15, 0.55),
                    (0.2, 0.92),
                    (0.55, 1.0),
                    (0.85, 0.8),
                    (0.75, 0.55),
                    (0.4, 0.52),
                    (0.17, 0.7),
                )
            ]
        ],
        [
            [
                S(
                    (0.6, 0.0),
                    (0.3, 0.45),
                    (0.2, 0.8),
                    (0.45, 1.0),
                    (0.78, 0.85),
                    (0.72, 0.6),
                    (0.4, 0.58),
                    (0.22, 0.75),
                )
            ]
        ],
    ],
    7: [
        [[L((0.05, 0.0), (0.95, 0.0), (0.35, 1.0))]],
        [[L((0.05, 0.0), (0.95, 0.0), (0.4, 1.0))], [L((0.35, 0.52), (0.85, 0.52))]],
        [[L((0.05, 0.08), (0.05, 0.0), (0.95, 0.0)), S((0.95, 0.0), (0.65, 0.45), (0.5, 1.0))]],
    ],
    8: [
        [
            [
                S(
                    (0.8, 0.12),
                    (0.5, 0.0),
                    (0.2, 0.12),
                    (0.25, 0.35),
                    (0.5, 0.48),
                    (0.82, 0.66),
                    (0.8, 0.92),
                    (0.5, 1.0),
                    (0.18, 0.9),
                    (0.2, 0.66),
                    (0.5, 0.48),
                    (0.75, 0.33),
                    (0.8, 0.12),
                )
            ]
        ],
        [_ellipse(0.5, 0.24, 0.28, 0.24, 3.14, 1.0), _ellipse(0.5, 0.74, 0.36, 0.26, 0.0, 1.0)],
    ],
    9: [
        [
            [
                S((0.85, 0.2), (0.5, 0.0), (0.15, 0.15), (0.2, 0.42), (0.55, 0.48), (0.85, 0.25)),
                L((0.85, 0.25), (0.85, 1.0)),
            ]
        ],
        [
            [
                S((0.85, 0.2), (0.5, 0.0), (0.15, 0.15), (0.2, 0.42), (0.55, 0.48), (0.85, 0.25)),
                S((0.85, 0.25), (0.8, 0.7), (0.55, 1.0)),
            ]
        ],
    ],
}


def _catmull_rom(pts: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """Sample a Catmull-Rom spline through pts (n, 2); the ends are extended by reflection."""
    p = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    out.append(pts[-1:])
    return np.vstack(out)


def _stroke_points(stroke: list[tuple], rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Jitter the control points (shared where pieces join) and sample the stroke densely."""
    moved: dict[Point, np.ndarray] = {}
    parts = []
    for kind, pts in stroke:
        ctrl = np.array([moved.setdefault(p, np.array(p) + rng.normal(0, jitter, 2)) for p in pts])
        parts.append(_catmull_rom(ctrl) if kind == "s" and len(ctrl) > 2 else _densify(ctrl))
    return np.vstack(parts)


def _densify(pts: np.ndarray, step: float = 0.03) -> np.ndarray:
    """Points every `step` along straight segments, so later warps (perspective) bend them smoothly."""
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = max(1, math.ceil(np.linalg.norm(b - a) / step))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.vstack(out)


def _sample(digit: int, rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], float]:
    """Random geometry for one digit: strokes in pixels of a size x size canvas, and a pen width."""
    variants = TEMPLATES[digit]
    strokes = [_stroke_points(s, rng, 0.04) for s in variants[rng.integers(len(variants))]]
    pts = np.vstack(strokes)
    lo, hi = pts.min(0), pts.max(0)
    height = rng.uniform(0.18, 0.9) * size
    aspect = rng.uniform(0.45, 0.85) * (0.35 if digit == 1 else 1.0)  # width / height of the digit's box
    shear, angle = rng.uniform(-0.15, 0.4), math.radians(rng.normal(0, 10))  # most people slant right
    c, s = math.cos(angle), math.sin(angle)
    scale = np.array([aspect * height / max(hi[0] - lo[0], 0.1), height / (hi[1] - lo[1])])
    transform = np.array([[c, -s], [s, c]]) @ np.array([[1, -shear], [0, 1]]) @ np.diag(scale)
    strokes = [(p - (lo + hi) / 2) @ transform.T for p in strokes]
    pen = min(rng.choice([rng.uniform(1.5, 6), rng.uniform(6, 16), rng.uniform(16, 44)]) * size / 280, height / 3.5)
    pts = np.vstack(strokes)
    k = min(1.0, size / (pts.max(0) - pts.min(0) + 2 * pen).max())  # slant and rotation can overflow
    strokes, pen = [p * k for p in strokes], pen * k
    lo, hi = pts.min(0) * k - pen, pts.max(0) * k + pen
    room = np.maximum(size - (hi - lo), 0)
    offset = -lo + rng.uniform(0, 1, 2) * room  # anywhere on the canvas, off-centre included
    return [p + offset for p in strokes], float(pen)


def stroke_path(digit: int, rng: np.random.Generator, size: int = 280) -> list[list[Point]]:
    """Strokes (pen down .. pen up) as (x, y) pixel coordinates on a size x size canvas, for replaying with
    a mouse or touch; the digit is random in shape, slant, size and position, and always inside the canvas."""
    strokes, _ = _sample(digit, rng, size)
    return [[(float(x), float(y)) for x, y in s] for s in strokes]


def _draw(strokes: list[np.ndarray], pen: float, size: tuple[int, int], ss: int = 3) -> np.ndarray:
    """Ink coverage 0..1 (h, w) of round-capped, round-joined strokes, anti-aliased by supersampling."""
    im = Image.new("L", (size[0] * ss, size[1] * ss), 0)
    d = ImageDraw.Draw(im)
    r = pen * ss / 2
    for s in strokes:
        pts = [(float(x) * ss, float(y) * ss) for x, y in s]
        d.line(pts, fill=255, width=max(1, round(2 * r)))
        for x, y in pts:
            d.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(im.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255


def render(digit: int, rng: np.random.Generator, style: str = "canvas", size: int = 280) -> Image.Image:
    """One synthetic image of `digit`:

    - "canvas": black round strokes on white, size x size, as the drawing page sends;
    - "scan": dark ink on off-white paper, sensor noise, a slight blur;
    - "photo": a 4:3 photo of paper: uneven light, colour cast, grain, a perspective tilt, JPEG;
    - "chalk": light, patchy strokes on a dark board.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    width = size * 4 // 3 if style == "photo" else size
    strokes, pen = _sample(digit, rng, size)
    if style == "photo":  # place on the wider sheet, then tilt it as a hand-held camera would
        shift = np.array([(width - size) * rng.uniform(0, 1), 0.0])
        strokes = [p + shift for p in strokes]
        tilt = rng.uniform(-0.25, 0.25, 2) / width
        strokes = _fit([_perspective(p, width, size, tilt) for p in strokes], pen, width, size)
    ink = _draw(strokes, pen, (width, size))
    if style == "canvas":
        return Image.fromarray(np.uint8(np.round(255 * (1 - ink))), "L")

    h, w = ink.shape
    if style == "chalk":
        texture = np.clip(rng.uniform(0.55, 0.9) + rng.normal(0, 0.25, (h, w)), 0, 1)
        board = rng.uniform(15, 70) * np.array([rng.uniform(0.6, 1), rng.uniform(0.8, 1.2), rng.uniform(0.6, 1)])
        chalk = rng.uniform(190, 250)
        a = (ink * texture)[..., None]
        rgb = board * (1 - a) + chalk * a + rng.normal(0, 4, (h, w, 1))
        blur = rng.uniform(0.3, 1.0)
    else:
        paper = rng.uniform(215, 250) * np.array([1, rng.uniform(0.97, 1.0), rng.uniform(0.9, 1.0)])
        tint = rng.uniform(0, 80, 3) if rng.random() < 0.7 else np.array([20.0, 30.0, rng.uniform(90, 160)])
        a = (ink * rng.uniform(0.75, 1.0))[..., None]
        rgb = paper * (1 - a) + tint * a
        if style == "photo":
            yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
            g = rng.normal(0, 1, 2)
            light = (
                1
                + 0.22 * (g[0] * (xx - 0.5) + g[1] * (yy - 0.5))
                - rng.uniform(0, 0.5) * ((xx - 0.5 * w / max(h, w)) ** 2 + (yy - 0.5 * h / max(h, w)) ** 2)
            )
            cast = np.array([rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.04), rng.uniform(0.75, 1.0)])
            rgb = rgb * np.clip(light, 0.35, 1.2)[..., None] * cast * rng.uniform(0.7, 1.0)
            rgb += rng.normal(0, rng.uniform(3, 9), (h, w, 1)) + rng.normal(0, 2, (h, w, 3))
            blur = rng.uniform(0.4, 1.3)
        else:
            rgb = rgb + rng.normal(0, rng.uniform(1, 6), (h, w, 1))
            blur = rng.uniform(0.2, 0.9)
    im = Image.fromarray(np.uint8(np.clip(rgb, 0, 255)), "RGB").filter(ImageFilter.GaussianBlur(blur))
    if style in ("photo", "chalk") or rng.random() < 0.5:  # phones and many scanners save JPEG
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(rng.integers(25, 92)))
        im = Image.open(io.BytesIO(buf.getvalue()))
        im.load()
    return im


def _perspective(p: np.ndarray, w: int, h: int, tilt: np.ndarray) -> np.ndarray:
    """A mild projective warp of points about the centre: a sheet seen slightly off-axis."""
    kx, ky = tilt
    x, y = p[:, 0] - w / 2, p[:, 1] - h / 2
    den = 1 + kx * x + ky * y
    return np.stack([x / den + w / 2, y / den + h / 2], axis=1)


def _fit(strokes: list[np.ndarray], pen: float, w: int, h: int) -> list[np.ndarray]:
    """Move (and if need be shrink) strokes so the whole pen line stays inside a w x h image."""
    pts = np.vstack(strokes)
    lo, hi = pts.min(0) - pen, pts.max(0) + pen
    k = min(1.0, w / (hi[0] - lo[0]), h / (hi[1] - lo[1]))
    centre = (lo + hi) / 2
    shift = np.clip(centre, (hi - lo) * k / 2, np.array([w, h]) - (hi - lo) * k / 2) - centre
    return [(p - centre) * k + centre + shift for p in strokes]


def dataset(
    n: int, seed: int = 0, styles: tuple[str, ...] = STYLES, size: int = 280
) -> tuple[list[Image.Image], np.ndarray]:
    """n images with balanced labels, styles in turn; the same seed gives the same images."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = [render(int(d), rng, styles[i % len(styles)], size) for i, d in enumerate(labels)]
    return images, labels.astype(np.int64)

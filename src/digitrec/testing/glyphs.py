"""Hand-drawn shapes as strokes in pixels: letters and symbols (templates here), digits (digitrec.training.synth's
templates), each jittered, slanted and rotated like a person's hand. digitrec.testing.documents lays them on paper."""

from __future__ import annotations

import math

import numpy as np

from digitrec.training.synth import TEMPLATES, L, S, _ellipse, _stroke_points

Strokes = list[np.ndarray]

# Letters drawn by hand (stroke templates in a unit box, x right, y down), chosen not to look like a digit
# (no O, I, l, S, Z, B, G, q, g, b).
LETTERS: dict[str, list[list[tuple]]] = {
    "A": [[L((0.0, 1.0), (0.5, 0.0), (1.0, 1.0))], [L((0.22, 0.58), (0.78, 0.58))]],
    "C": [_ellipse(0.55, 0.5, 0.45, 0.5, 1.25, -0.7)],
    "E": [[L((0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0))], [L((0.1, 0.5), (0.7, 0.5))]],
    "F": [[L((0.9, 0.0), (0.1, 0.0), (0.1, 1.0))], [L((0.1, 0.48), (0.7, 0.48))]],
    "H": [[L((0.1, 0.0), (0.1, 1.0))], [L((0.9, 0.0), (0.9, 1.0))], [L((0.1, 0.5), (0.9, 0.5))]],
    "K": [[L((0.1, 0.0), (0.1, 1.0))], [L((0.9, 0.0), (0.12, 0.55), (0.9, 1.0))]],
    "M": [[L((0.0, 1.0), (0.1, 0.0), (0.5, 0.6), (0.9, 0.0), (1.0, 1.0))]],
    "N": [[L((0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0))]],
    "R": [[L((0.1, 1.0), (0.1, 0.0)), S((0.1, 0.0), (0.75, 0.05), (0.8, 0.3), (0.1, 0.5)),
           L((0.1, 0.5), (0.9, 1.0))]],
    "T": [[L((0.0, 0.0), (1.0, 0.0))], [L((0.5, 0.0), (0.5, 1.0))]],
    "V": [[L((0.0, 0.0), (0.5, 1.0), (1.0, 0.0))]],
    "W": [[L((0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0))]],
    "X": [[L((0.0, 0.0), (1.0, 1.0))], [L((1.0, 0.0), (0.0, 1.0))]],
    "Y": [[L((0.0, 0.0), (0.5, 0.5), (1.0, 0.0))], [L((0.5, 0.5), (0.5, 1.0))]],
    "e": [[S((0.1, 0.55), (0.9, 0.5), (0.7, 0.15), (0.3, 0.15), (0.1, 0.55), (0.3, 0.95), (0.9, 0.85))]],
    "h": [[L((0.1, 0.0), (0.1, 1.0))], [S((0.1, 0.6), (0.5, 0.4), (0.85, 0.6), (0.85, 1.0))]],
    "k": [[L((0.1, 0.0), (0.1, 1.0))], [L((0.8, 0.4), (0.12, 0.72), (0.85, 1.0))]],
    "m": [[L((0.05, 1.0), (0.05, 0.3)), S((0.05, 0.45), (0.27, 0.3), (0.5, 0.45), (0.5, 1.0)),
           S((0.5, 0.45), (0.73, 0.3), (0.95, 0.45), (0.95, 1.0))]],
    "n": [[L((0.1, 1.0), (0.1, 0.3)), S((0.1, 0.45), (0.5, 0.3), (0.9, 0.5), (0.9, 1.0))]],
    "r": [[L((0.15, 1.0), (0.15, 0.3)), S((0.15, 0.55), (0.45, 0.32), (0.85, 0.35))]],
    "w": [[S((0.0, 0.3), (0.2, 1.0), (0.5, 0.5), (0.8, 1.0), (1.0, 0.3))]],
    "x": [[L((0.1, 0.3), (0.9, 1.0))], [L((0.9, 0.3), (0.1, 1.0))]],
}
SYMBOLS: dict[str, list[list[tuple]]] = {
    "+": [[L((0.5, 0.1), (0.5, 0.9))], [L((0.1, 0.5), (0.9, 0.5))]],
    "=": [[L((0.05, 0.3), (0.95, 0.3))], [L((0.05, 0.7), (0.95, 0.7))]],
    "#": [[L((0.35, 0.0), (0.25, 1.0))], [L((0.75, 0.0), (0.65, 1.0))], [L((0.0, 0.33), (1.0, 0.33))],
          [L((0.0, 0.67), (1.0, 0.67))]],
    "*": [[L((0.5, 0.0), (0.5, 1.0))], [L((0.07, 0.25), (0.93, 0.75))], [L((0.93, 0.25), (0.07, 0.75))]],
    "?": [[S((0.1, 0.25), (0.5, 0.0), (0.9, 0.25), (0.5, 0.55), (0.5, 0.75))], [L((0.5, 0.93), (0.5, 1.0))]],
    "%": [_ellipse(0.2, 0.2, 0.17, 0.2, 0, 1.0), [L((0.9, 0.0), (0.1, 1.0))], _ellipse(0.8, 0.8, 0.17, 0.2, 0, 1.0)],
    "&": [[S((0.9, 1.0), (0.3, 0.45), (0.35, 0.05), (0.65, 0.2), (0.1, 0.7), (0.4, 1.0), (0.9, 0.55))]],
    "@": [_ellipse(0.5, 0.5, 0.2, 0.22, 0.5, 1.0) + [S((0.7, 0.5), (0.9, 0.7), (0.95, 0.4), (0.6, 0.02),
                                                         (0.1, 0.3), (0.2, 0.9), (0.7, 0.95))]],
    "<": [[L((0.9, 0.0), (0.1, 0.5), (0.9, 1.0))]],
    "$": [[S((0.85, 0.2), (0.5, 0.08), (0.15, 0.28), (0.5, 0.5), (0.85, 0.72), (0.5, 0.92), (0.1, 0.8))],
          [L((0.5, 0.0), (0.5, 1.0))]],
}


def glyph(variant: list[list[tuple]], rng: np.random.Generator, height: float, aspect: float) -> Strokes:
    """One handwritten shape in pixels, its bounding box's top-left at (0, 0): jittered, slanted, rotated."""
    strokes = [_stroke_points(s, rng, 0.035) for s in variant]
    pts = np.vstack(strokes)
    lo, hi = pts.min(0), pts.max(0)
    shear, angle = rng.uniform(-0.1, 0.3), math.radians(rng.normal(0, 6))
    c, s = math.cos(angle), math.sin(angle)
    scale = np.array([aspect * height / max(hi[0] - lo[0], 0.1), height / max(hi[1] - lo[1], 0.1)])
    t = np.array([[c, -s], [s, c]]) @ np.array([[1, -shear], [0, 1]]) @ np.diag(scale)
    strokes = [(p - (lo + hi) / 2) @ t.T for p in strokes]
    low = np.vstack(strokes).min(0)
    return [p - low for p in strokes]


def digit_glyph(d: int, rng: np.random.Generator, height: float) -> Strokes:
    variants = TEMPLATES[d]
    aspect = rng.uniform(0.5, 0.85) * (0.3 if d == 1 else 1.0)
    return glyph(variants[rng.integers(len(variants))], rng, height, aspect)


def extent(strokes: Strokes) -> np.ndarray:
    return np.vstack(strokes).max(0)


def moved(strokes: Strokes, dx: float, dy: float) -> Strokes:
    return [p + np.array([dx, dy]) for p in strokes]

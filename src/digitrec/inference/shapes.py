"""Drawn shapes the digit model takes for 0s: closed outlines with a few straight sides.

At 28x28 a triangle, square or pentagon drawn as an outline is close to a 0, and the gate (trained without
them: its threshold, fitted on handwritten digits, gave way when they were added, docs/no-digit.md) lets
most pentagons through. A 0 is curved all round: its outer contour needs more than five straight pieces to
follow within 2 % of its length, a polygon's no more than its sides. What it costs real digits:
benchmarks/calibration.py (MNIST) and benchmarks/documents.py. Serving half: OpenCV, no torch.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_SIDES = 5  # an outline that this many straight pieces follow is a drawn shape
TOLERANCE = 0.02  # ... within this share of its contour's length (cv2.approxPolyDP's epsilon)
_UP = 4  # the 28x28 view is traced at 4x: whole pixels would make every curve a polygon


def straight_outline(image: np.ndarray) -> bool:
    """Is this (28, 28) MNIST-form view (ink bright, 0..1) a closed outline of at most MAX_SIDES straight
    sides? Its largest piece must enclose a hole (an outline, not a filled shape or a stroke)."""
    up = cv2.resize(np.asarray(image, np.float32), (28 * _UP, 28 * _UP), interpolation=cv2.INTER_LINEAR)
    contours, hierarchy = cv2.findContours((up > 0.5).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return False
    i = max(range(len(contours)), key=lambda j: cv2.contourArea(contours[j]))
    if hierarchy[0][i][2] < 0:  # no hole inside it
        return False
    c = contours[i]
    return len(cv2.approxPolyDP(c, TOLERANCE * cv2.arcLength(c, True), True)) <= MAX_SIDES


def refuse_outlines(images: np.ndarray, reasons: list[str | None], digits: np.ndarray) -> list[str | None]:
    """The rules' reasons with "not_digit_like" for every view read as a 0 (`digits`: the model's top
    class) that is a straight-sided outline, unless they already refused it as not digit-like. Only 0s: a
    closed 4 drawn with straight strokes is close to a triangle with a tail, and is a 4."""
    views = np.asarray(images).reshape(-1, 28, 28)
    return [
        "not_digit_like" if d == 0 and r != "not_digit_like" and straight_outline(x) else r
        for x, r, d in zip(views, reasons, digits, strict=True)
    ]

"""A picture of a multi-digit number -> one crop per digit, left to right, each read like a single digit.

The ink is found exactly as `preprocess.to_mnist` finds it (polarity, flattened background, Otsu), then split
into connected components. Handwriting breaks the "one component = one digit" rule both ways: a 4 or a 5
drawn in two strokes is two components, and digits written close together touch. So pieces that overlap
horizontally are merged, and a group much wider than a digit is tall is cut at the columns of least ink.
Each group becomes its own image (other digits' ink masked out) and goes through `to_mnist`, so a digit in
a number is preprocessed like a digit on its own. NumPy + Pillow only (serving half).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from digitrec.preprocess import (
    MAX_PIXELS,
    MIN_CONTRAST,
    ImageSource,
    _blur3,
    _flatten,
    _ink_up,
    _otsu,
    _resize,
    _spread,
    stroke_width,
    to_gray,
    to_mnist,
)

WORK_SIDE = 768  # long side of the working image: a 10-digit number keeps ~70 px per digit
MIN_AREA = 0.02  # components under this fraction of the largest one are specks
MERGE_OVERLAP = 0.5  # merge pieces whose x-extents overlap by this fraction of the narrower one
SPLIT_ASPECT = 1.15  # a group wider than this times its height holds several digits
DIGIT_ASPECT = 0.7  # typical width / height of one handwritten digit, used to guess how many
MIN_HEIGHT = 0.3  # groups shorter than this fraction of the median height (and small) are dots/dashes


@dataclass(frozen=True)
class DigitBox:
    """One recognised digit: its box (x, y, w, h) in the input image's pixels."""

    digit: int
    confidence: float
    box: tuple[int, int, int, int]
    probabilities: tuple[float, ...]
    input: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "box": list(self.box),
            "probabilities": [round(p, 6) for p in self.probabilities],
        }


@dataclass(frozen=True)
class NumberResult:
    """The digits read left to right; `confidence` is the product of theirs (0 when nothing was found)."""

    number: str
    digits: list[DigitBox]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "digits": [d.to_dict() for d in self.digits],
            "confidence": round(self.confidence, 6),
        }


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask -> (labels (H, W) int32 with 0 = background, count).

    Union-find over horizontal runs (a stroke has few runs per row), so it is fast in pure NumPy."""
    h, w = mask.shape
    d = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(d == 1)
    ends = np.nonzero(d == -1)[1]  # exclusive
    n = len(rows)
    if n == 0:
        return np.zeros((h, w), np.int32), 0
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_start = np.searchsorted(rows, np.arange(h + 1))
    for r in range(1, h):
        i, i_end = row_start[r - 1], row_start[r]
        j, j_end = row_start[r], row_start[r + 1]
        while i < i_end and j < j_end:  # 8-connected: runs touch if they overlap with one pixel of slack
            if starts[i] <= ends[j] and starts[j] <= ends[i]:
                a, b = find(i), find(j)
                if a != b:
                    parent[a] = b
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(n)])
    _, run_label = np.unique(roots, return_inverse=True)
    out = np.zeros((h, w + 1), np.int32)
    # Paint each run: +label at its start, -label at its end, then a cumulative sum along the row.
    np.add.at(out, (rows, starts), run_label + 1)
    np.add.at(out, (rows, ends), -(run_label + 1))
    return np.cumsum(out, axis=1)[:, :-1].astype(np.int32), int(run_label.max()) + 1


def ink_image(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, float]:
    """The working image with ink bright on a flat black background, and its scale from the input."""
    g = to_gray(source, max_pixels=max_pixels)
    h, w = g.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        g = np.clip(_resize(g, size, Image.Resampling.BOX), 0, 255)
    return _flatten(_ink_up(g)), scale


def ink_mask(flat: np.ndarray) -> np.ndarray | None:
    """Ink pixels of a flattened ink-bright image, by the same rule as `to_mnist`; None if blank."""
    smooth = _blur3(flat)
    noise = 1.4826 * np.median(np.abs(smooth - np.median(smooth)))
    top = float(smooth.max())
    if top < max(MIN_CONTRAST, 8 * noise):
        return None
    return smooth > max(_otsu(smooth, top), 4 * noise)


def _boxes(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per component (1..n): bounding boxes (x0, y0, x1, y1) exclusive ends, and areas."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    area = np.bincount(lab, minlength=n)
    x0 = np.full(n, labels.shape[1]); y0 = np.full(n, labels.shape[0])  # noqa: E702
    x1 = np.zeros(n, int); y1 = np.zeros(n, int)  # noqa: E702
    np.minimum.at(x0, lab, xs); np.minimum.at(y0, lab, ys)  # noqa: E702
    np.maximum.at(x1, lab, xs + 1); np.maximum.at(y1, lab, ys + 1)  # noqa: E702
    return np.stack([x0, y0, x1, y1], 1), area


def _group(boxes: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """Merge components whose x-extents overlap by MERGE_OVERLAP of the narrower one, left to right."""
    order = [i for i in np.argsort(boxes[:, 0], kind="stable") if keep[i]]
    groups: list[list[int]] = []
    spans: list[list[int]] = []
    for i in order:
        x0, _, x1, _ = boxes[i]
        for g, (a, b) in enumerate(spans):
            overlap = min(b, x1) - max(a, x0)
            if overlap > 0 and overlap >= MERGE_OVERLAP * min(b - a, x1 - x0):
                groups[g].append(i)
                spans[g] = [min(a, x0), max(b, x1)]
                break
        else:
            groups.append([i])
            spans.append([x0, x1])
    return groups


def _split(cols: np.ndarray, height: int) -> list[tuple[int, int]]:
    """Column ranges of the digits in a group too wide to be one: k pieces, each cut at the column of least
    ink near where an even split would put it. `cols` is the group's ink per column."""
    w = len(cols)
    if w <= SPLIT_ASPECT * height:
        return [(0, w)]
    k = max(2, round(w / (DIGIT_ASPECT * height)))
    cuts = [0]
    for i in range(1, k):
        centre, half = round(i * w / k), max(1, round(0.3 * w / k))
        lo, hi = max(cuts[-1] + 1, centre - half), min(w - 1, centre + half)
        if lo >= hi:
            continue
        window = cols[lo:hi].astype(np.float64)
        # Least ink, ties broken towards the expected position.
        cost = window + 1e-3 * np.abs(np.arange(lo, hi) - centre)
        cuts.append(lo + int(np.argmin(cost)))
    cuts.append(w)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b - a > 1]


@dataclass(frozen=True)
class Segment:
    """One digit's ink: `box` in input pixels; `image` the digit alone (ink bright, 0..255), with margin."""

    box: tuple[int, int, int, int]
    image: np.ndarray


def segment(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> list[Segment]:
    """Find the digits of a handwritten number, left to right. An empty list when the image is blank."""
    flat, scale = ink_image(source, max_pixels=max_pixels)
    mask = ink_mask(flat)
    if mask is None:
        return []
    labels, n = label(mask)
    if n == 0:
        return []
    boxes, area = _boxes(labels, n)
    groups = _group(boxes, area >= MIN_AREA * area.max())
    gboxes = np.array([[boxes[g, 0].min(), boxes[g, 1].min(), boxes[g, 2].max(), boxes[g, 3].max()]
                       for g in groups])
    heights = gboxes[:, 3] - gboxes[:, 1]
    gareas = np.array([area[g].sum() for g in groups])
    median_h = float(np.median(heights))
    # Dots, commas and dashes: short groups with little ink. A "1" is short on ink but tall; a "-" is wide.
    small = (heights < MIN_HEIGHT * median_h) & (gareas < 0.25 * gareas.max())
    r = max(1, round(stroke_width(mask) / 2))  # how far the anti-aliased fringe reaches past the mask
    out: list[Segment] = []
    for g, (x0, y0, x1, y1), is_small in zip(groups, gboxes, small, strict=True):
        if is_small:
            continue
        own = np.isin(labels, np.asarray(g) + 1)
        for a, b in _split(own[y0:y1, x0:x1].sum(0), int(y1 - y0)):
            rows = np.nonzero(own[y0:y1, x0 + a : x0 + b].any(1))[0]
            if len(rows) == 0:
                continue
            px0, px1, py0, py1 = x0 + a, x0 + b, y0 + rows[0], y0 + rows[-1] + 1
            # The piece's own ink (neighbours masked out), with its soft fringe, plus a margin of paper.
            ex0, ex1 = max(px0 - r, 0), min(px1 + r, flat.shape[1])
            ey0, ey1 = max(py0 - r, 0), min(py1 + r, flat.shape[0])
            mine = own[ey0:ey1, ex0:ex1].copy()
            mine[:, : px0 - ex0] = False
            mine[:, px1 - ex0 :] = False
            near = _spread(mine.astype(np.float32), r) > 0
            crop = flat[ey0:ey1, ex0:ex1] * near
            image = np.pad(crop, max(4, (py1 - py0) // 4))
            box = (px0 / scale, py0 / scale, (px1 - px0) / scale, (py1 - py0) / scale)
            out.append(Segment(tuple(int(round(v)) for v in box), image.astype(np.float32)))
    return out


def read_number(
    model: Any, source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS
) -> NumberResult:
    """Segment, then recognise every digit in one batch through `to_mnist` and the model's predictor."""
    segments = segment(source, max_pixels=max_pixels)
    crops = [to_mnist(s.image) for s in segments]
    predictions = model.predict_mnist(crops) if crops else []
    digits = [
        DigitBox(p.digit, p.confidence, s.box, p.probabilities, p.input)
        for s, p in zip(segments, predictions, strict=True)
        if p.input is not None and p.digit is not None
    ]
    confidence = float(np.prod([d.confidence for d in digits])) if digits else 0.0
    return NumberResult("".join(str(d.digit) for d in digits), digits, confidence)

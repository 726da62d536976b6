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

from digitrec.inference.components import label
from digitrec.inference.document import remove_lines
from digitrec.inference.images import ImageError, decode_gray
from digitrec.inference.levels import blur3, ink_noise, otsu, spread, stroke_width
from digitrec.inference.paper import flatten, ink_up
from digitrec.inference.preprocess import MAX_PIXELS, MIN_CONTRAST, ImageSource, _resize, to_mnist

WORK_SIDE = 768  # long side of the working image: a 10-digit number keeps ~70 px per digit
MIN_AREA = 0.02  # components under this fraction of the largest one are specks
MERGE_OVERLAP = 0.5  # merge pieces whose x-extents overlap by this fraction of the narrower one
SPLIT_ASPECT = 1.15  # a group wider than this times its height holds several digits
DIGIT_ASPECT = 0.7  # typical width / height of one handwritten digit, used to guess how many
PRIOR_PENALTY = 0.01  # mean log-confidence a less likely digit count must win by (a tie-break)
POINT = "."  # stands for a decimal point among the groups `_analyse` returns
MIN_HEIGHT = 0.3  # groups shorter than this fraction of the median height (and small) are dots/dashes
# More separate ink pieces than this is a page, a texture or a grid, not a number: grouping and reading them
# costs time and memory per piece (a 2048² grid of 14,000 marks took 2.4 s and 290 MB before this limit).
MAX_PIECES = 300


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
            "input": None if self.input is None else np.round(self.input, 3).tolist(),
        }


@dataclass(frozen=True)
class NumberResult:
    """The digits read left to right, with a "." where a decimal point was found; `confidence` is the
    product of the digits' (0 when nothing was found)."""

    number: str
    digits: list[DigitBox]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "digits": [d.to_dict() for d in self.digits],
            "confidence": round(self.confidence, 6),
        }


def ink_image(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, float]:
    """The working image with ink bright on a flat black background, and its scale from the input."""
    g, decoded = decode_gray(source, max_pixels=max_pixels, side=WORK_SIDE)
    h, w = g.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        g = np.clip(_resize(g, size, Image.Resampling.BOX), 0, 255)
    return flatten(ink_up(g)), scale * decoded


def ink_mask(flat: np.ndarray) -> np.ndarray | None:
    """Ink pixels of a flattened ink-bright image, by the same rule as `to_mnist`; None if blank."""
    smooth = blur3(flat)
    top = float(smooth.max())
    noise = ink_noise(smooth, top)
    if top < max(MIN_CONTRAST, 8 * noise):
        return None
    return smooth > max(otsu(smooth, top), 4 * noise)


def _slant(ys: np.ndarray, xs: np.ndarray, lab: np.ndarray, n: int) -> float:
    """The writer's slant dx/dy: the median over the tall components of cov(x, y) / var(y) of their pixels
    (how MNIST-style deslanting measures it). Clipped, so that a sloping 7 or 2 cannot tilt everything."""
    count = np.bincount(lab, minlength=n).astype(np.float64)
    my = np.bincount(lab, ys, n) / np.maximum(count, 1)
    mx = np.bincount(lab, xs, n) / np.maximum(count, 1)
    dy, dx = ys - my[lab], xs - mx[lab]
    vyy = np.bincount(lab, dy * dy, n)
    vxy = np.bincount(lab, dx * dy, n)
    height = np.sqrt(vyy / np.maximum(count, 1))
    tall = (count > 0) & (height >= 0.5 * height.max())
    if tall.sum() < 2:  # one digit's own shape (a 7's diagonal) is not the writer's slant
        return 0.0
    return float(np.clip(np.median(-vxy[tall] / np.maximum(vyy[tall], 1e-9)), -0.5, 0.5))


def _spans(xp: np.ndarray, ys: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
    """Per component: (x0, y0, x1, y1), x in deslanted coordinates, exclusive ends."""
    x0 = np.full(n, np.inf); y0 = np.full(n, np.iinfo(np.int64).max)  # noqa: E702
    x1 = np.full(n, -np.inf); y1 = np.zeros(n, np.int64)  # noqa: E702
    np.minimum.at(x0, lab, xp); np.minimum.at(y0, lab, ys)  # noqa: E702
    np.maximum.at(x1, lab, xp + 1); np.maximum.at(y1, lab, ys + 1)  # noqa: E702
    return np.stack([x0, y0, x1, y1], 1)


def _group(spans: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """Merge components whose (deslanted) x-extents overlap by MERGE_OVERLAP of the narrower one."""
    order = [i for i in np.argsort(spans[:, 0], kind="stable") if keep[i]]
    groups: list[list[int]] = []
    extents: list[list[float]] = []
    for i in order:
        x0, _, x1, _ = spans[i]
        for g, (a, b) in enumerate(extents):
            overlap = min(b, x1) - max(a, x0)
            if overlap > 0 and overlap >= MERGE_OVERLAP * min(b - a, x1 - x0):
                groups[g].append(i)
                extents[g] = [min(a, x0), max(b, x1)]
                break
        else:
            groups.append([i])
            extents.append([x0, x1])
    return groups


def _cuts(cols: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Column ranges of k digits in a group: each cut at the column of least ink near where an even split
    would put it. `cols` is the group's ink per column."""
    w = len(cols)
    cuts = [0]
    for i in range(1, k):
        centre, half = round(i * w / k), max(1, round(0.3 * w / k))
        lo, hi = max(cuts[-1] + 1, centre - half), min(w - 1, centre + half)
        if lo >= hi:
            continue
        # Least ink, ties broken towards the expected position.
        cost = cols[lo:hi].astype(np.float64) + 1e-3 * np.abs(np.arange(lo, hi) - centre)
        cuts.append(lo + int(np.argmin(cost)))
    cuts.append(w)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b - a > 1]


def _digit_counts(w: int, h: int, aspect: float) -> list[int]:
    """How many digits a w x h group may hold, the likeliest first (from the digits' typical aspect).
    A wide 0 or a sprawling 2 is one digit, so 1 stays a candidate unless the group is very wide."""
    if w <= SPLIT_ASPECT * h:
        return [1]
    k = max(1, round(w / (aspect * h)))
    top = max(2, int(w / (0.3 * h)))  # no digit but a 1 is narrower than 0.3 of its height
    ks = [k] + [j for j in (k + 1, k - 1) if 1 <= j <= top]
    return ks + [1] if w <= 2 * h and 1 not in ks else ks


@dataclass(frozen=True)
class Segment:
    """One digit's ink: `box` in input pixels; `image` the digit alone (ink bright, 0..255), with margin."""

    box: tuple[int, int, int, int]
    image: np.ndarray


def _analyse(source: ImageSource | np.ndarray, max_pixels: int) -> list[list[list[Segment]]]:
    """Per group of ink, left to right: the ways to cut it into digits, the likeliest first.

    Handwriting slants, so extents, overlaps and cuts are measured along the writer's slant (x' = x - s*y):
    an upright cut between two slanted digits would slice through both."""
    flat, scale = ink_image(source, max_pixels=max_pixels)
    mask = ink_mask(flat)
    if mask is None:
        return []
    mask, _ = remove_lines(mask)  # ruled paper, comb fields: only the digits stay
    labels, areas = label(mask)
    n = len(areas)
    if n == 0:
        return []
    if n > MAX_PIECES:
        raise ImageError(f"the image has {n:,} separate marks, more than a number's {MAX_PIECES}; crop it to "
                         "the number.")
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    area = np.bincount(lab, minlength=n)
    big = area >= MIN_AREA * area.max()
    slope = _slant(ys, xs, lab, n)
    xp = xs - slope * (ys - float(np.median(ys)))  # deslanted x of every ink pixel
    spans = _spans(xp, ys, lab, n)
    groups = _group(spans, big)
    gspans = np.array([[spans[g, 0].min(), spans[g, 1].min(), spans[g, 2].max(), spans[g, 3].max()]
                       for g in groups])
    widths, heights = gspans[:, 2] - gspans[:, 0], gspans[:, 3] - gspans[:, 1]
    gareas = np.array([area[g].sum() for g in groups])
    # Dots, commas and dashes: short groups with little ink. A "1" is short on ink but tall; a "-" is wide.
    small = (heights < MIN_HEIGHT * float(np.median(heights))) & (gareas < 0.25 * gareas.max())
    point = _decimal_point(gspans, small)
    # This writer's digit proportions, from the groups that are one digit (neither touching pairs nor 1s).
    ratio = widths / np.maximum(heights, 1)
    single = ~small & (ratio <= SPLIT_ASPECT) & (ratio >= 0.35)
    aspect = float(np.clip(np.median(ratio[single]), 0.5, 0.9)) if single.any() else DIGIT_ASPECT
    r = max(1, round(stroke_width(mask) / 2))  # how far the anti-aliased fringe reaches past the mask
    H, W = flat.shape  # noqa: N806

    def crop(py: np.ndarray, px: np.ndarray) -> Segment:
        """A piece's pixels -> its own ink (neighbours masked out) with its soft fringe and a margin."""
        y0, y1, x0, x1 = py.min(), py.max() + 1, px.min(), px.max() + 1
        ey0, ey1, ex0, ex1 = max(y0 - r, 0), min(y1 + r, H), max(x0 - r, 0), min(x1 + r, W)
        mine = np.zeros((ey1 - ey0, ex1 - ex0), np.float32)
        mine[py - ey0, px - ex0] = 1
        near = spread(mine, r) > 0
        image = np.pad(flat[ey0:ey1, ex0:ex1] * near, max(4, (y1 - y0) // 4))
        box = (x0 / scale, y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale)
        return Segment(tuple(int(round(v)) for v in box), image.astype(np.float32))

    out: list = []
    for i, (g, (gx0, _, gx1, _), w, h, is_small) in enumerate(zip(groups, gspans, widths, heights, small,
                                                                    strict=True)):
        if i == point:
            out.append(POINT)
        if is_small:
            continue
        sel = np.isin(lab, g)
        gy, gx, gxp = ys[sel], xs[sel], xp[sel] - gx0
        cols = np.bincount(gxp.astype(np.int64), minlength=int(np.ceil(gx1 - gx0)))
        ways = []
        for k in _digit_counts(int(round(w)), int(h), aspect):
            pieces = []
            for a, b in _cuts(cols, k):
                part = (gxp >= a) & (gxp < b)
                if part.any():
                    pieces.append(crop(gy[part], gx[part]))
            ways.append(pieces)
        out.append(ways)
    return out


def _decimal_point(spans: np.ndarray, small: np.ndarray) -> int | None:
    """The index of the group that is a decimal point, if any: the first small, roughly round group that
    sits on the digits' baseline with digits on both sides (a dash or an apostrophe is not one)."""
    if (~small).sum() < 2:
        return None
    h = spans[:, 3] - spans[:, 1]
    w = spans[:, 2] - spans[:, 0]
    tall = float(np.median(h[~small]))
    base = float(np.median(spans[~small, 3]))
    digits = np.flatnonzero(~small)
    for i in np.flatnonzero(small):
        round_ = max(w[i], h[i]) <= 0.4 * tall and 0.4 <= w[i] / max(h[i], 1) <= 2.5
        on_base = abs(spans[i, 3] - base) <= 0.25 * tall
        if round_ and on_base and digits[0] < i < digits[-1]:
            return int(i)
    return None


def segment(source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> list[Segment]:
    """Find the digits of a handwritten number, left to right (an empty list when the image is blank).
    Touching digits are cut by their proportions alone; `read_number` also asks the model."""
    return [s for ways in _analyse(source, max_pixels) if ways is not POINT for s in ways[0]]


def _digit(p: Any) -> int | None:
    """The digit a Prediction stands for in a number: its answer, or its best guess when only unsure."""
    if p.input is None or p.digit is not None or getattr(p, "reason", None) != "low_confidence":
        return None if p.input is None else p.digit
    return int(np.argmax(p.probabilities))


def read_number(
    model: Any, source: ImageSource | np.ndarray, *, max_pixels: int = MAX_PIXELS
) -> NumberResult:
    """Segment, then recognise every digit through `to_mnist` and the model, in one batch.

    Where digits touch, each plausible count of digits is cut and recognised, and the cut whose digits the
    model is surest of (geometric mean of confidences) wins: a wrong cut leaves half-digits the model
    doubts. Pieces that are not digits (blank, not digit-like) are left out of the number; a digit the model
    is unsure of stays in, with its low confidence: dropping it would silently change the number."""
    ways = _analyse(source, max_pixels)
    flat = [s for w in ways if w is not POINT for cut in w for s in cut]
    crops = [to_mnist(s.image) for s in flat]
    predictions = iter(model.predict_mnist(crops) if crops else [])
    digits: list[DigitBox] = []
    text = ""
    for group in ways:
        if group is POINT:
            text += "." if digits and "." not in text else ""
            continue
        best, best_score = [], -np.inf
        for rank, cut in enumerate(group):
            found = [(s, next(predictions)) for s in cut]
            found = [
                DigitBox(_digit(p), p.confidence, s.box, p.probabilities, p.input)
                for s, p in found if _digit(p) is not None
            ]
            score = np.mean([np.log(max(d.confidence, 1e-9)) for d in found]) if found else -np.inf
            score -= PRIOR_PENALTY * rank
            if score > best_score:
                best, best_score = found, score
        digits.extend(best)
        text += "".join(str(d.digit) for d in best)
    confidence = float(np.prod([d.confidence for d in digits])) if digits else 0.0
    return NumberResult(text.rstrip("."), digits, confidence)

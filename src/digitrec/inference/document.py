"""Digits on real documents: ink that fills much of a tight crop, ruling and form frames, several digits.

`preprocess.to_mnist` and `segment` call these only when a picture needs them (paper that is not a clean
canvas), so the drawing page's fast path is unchanged. OpenCV does the image work (morphology with long line
kernels, connected components with statistics): the field's standard, in C++, and no torch (serving half).
"""

from __future__ import annotations

import cv2
import numpy as np

from digitrec.inference.levels import stroke_width

DENSE_INK = 0.12  # ink over this fraction of the picture: a tight crop or an upscaled tiny scan
LINE_SPAN = 0.6  # a rule or frame side spans at least this fraction of the picture
LINE_PEN = 5.0  # ... and is at least this many stroke widths long
LINE_THIN = 8.0  # ... and this many times longer than it is thick
MAX_GROUPS = 40  # more separate pieces than this is a texture, not a few digits to choose from
BALANCED = 0.35  # each side of Otsu's split is at least this share of the picture: ink as much as paper
SHADED_SIDE = 0.9  # a side of the border this dark is in a lighting gradient's shade, not crossed by ink


def border_dark_paper(a: np.ndarray) -> bool | None:
    """Is the paper the dark side of Otsu's split, judging by the picture's border? The border is paper
    even in a tight crop, where ink touches it only where strokes leave the picture. A ring decides when
    70 % of it is one side. A light edge means light paper; a dark one, dark paper only if the rings 6 %
    and 12 % inside are dark too (light inside: a form field's frame along the edge).
    Ink about as plentiful as paper (a bold digit filling a tiny scan, whose strokes cut the edge in many
    places) is the side the edge holds less of than the picture does, unless one whole side of the edge is
    dark: a lighting gradient shades a side, strokes only cross it. None otherwise (a photo's lighting
    gradient or vignette): the caller then asks the median."""
    a = np.ascontiguousarray(a, np.uint8)
    t, _ = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    h, w = a.shape
    votes = []
    for f in (0.0, 0.06, 0.12):
        i = min(int(f * min(h, w)), (min(h, w) - 1) // 2)
        r = a[i : h - i, i : w - i]
        ring = np.concatenate([r[0], r[-1], r[1:-1, 0], r[1:-1, -1]])
        votes.append(float(np.mean(ring <= t)))
    edge, inner = votes[0], votes[1:]
    if edge <= 0.3:  # light paper all round, even where a tight crop's thick strokes fill the inside
        return False
    if edge >= 0.7 and min(inner) <= 0.3:  # a form field's frame along the edge, light paper inside it
        return False
    if edge >= 0.7 and min(inner) >= 0.7:  # dark paper (a board) all the way in
        return True
    dark = float(np.mean(a <= t))
    sides = (a[0], a[-1], a[:, 0], a[:, -1])
    if BALANCED <= dark <= 1 - BALANCED and max(float(np.mean(s <= t)) for s in sides) < SHADED_SIDE:
        return edge > dark
    return None  # a dark edge that fades inwards is a photo's vignette as often as it is dark paper


def ink_fraction(a: np.ndarray, dark_ink: bool) -> float:
    """Fraction of the picture on the ink side of Otsu's split."""
    a = np.ascontiguousarray(a, np.uint8)
    t, _ = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(np.mean(a <= t) if dark_ink else np.mean(a > t))


def flatten_dense(x: np.ndarray) -> np.ndarray:
    """Ink-bright float image -> the same with the paper's level (shading included) subtracted, for pictures
    whose ink fills much of them. The paper level is a grey opening (min then max) with a window wider than
    any stroke: it keeps what is wider than a stroke (paper, light) and removes the strokes, whatever share
    of the picture they cover. Done on a 64 px thumbnail, then scaled up: smooth, and fast."""
    h, w = x.shape
    f = 64 / max(h, w)
    small = cv2.resize(x, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    mask = small > cv2.threshold(np.clip(small, 0, 255).astype(np.uint8), 0, 255,
                                 cv2.THRESH_BINARY | cv2.THRESH_OTSU)[0]
    k = int(np.clip(2 * max(1.0, stroke_width(mask)) + 3, 5, 41)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    paper = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.blur(paper, (k, k), borderType=cv2.BORDER_REPLICATE)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    # Where ink is wider than the window (a 1 that fills a tight crop's width, a bold stroke upscaled), the
    # opening keeps it: the paper level is never above the paper's own (Otsu's dark side, 95th percentile).
    side = small[~mask]
    cap = float(np.percentile(side, 95)) if side.size else float(small.min())
    return np.maximum(x - np.minimum(paper, cap), 0).astype(np.float32)


def _lines(mask: np.ndarray, axis: int, length: int) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Straight runs along `axis` (1: horizontal) at least `length` long and LINE_THIN times longer than
    thick (a bold digit's flat top is not a rule): (x, y, w, h, pixels) per line, with the mean thickness
    in place of h (w for vertical lines).
    The mask is thickened by one pixel across the line and gaps of up to 4 pixels along it are bridged first,
    so a slightly tilted rule, or a faint one that the threshold broke, stays one run."""
    across = (3, 1) if axis == 1 else (1, 3)  # (rows, cols) of the thickening kernel
    along = (1, length) if axis == 1 else (length, 1)
    fat = cv2.dilate(mask, np.ones(across, np.uint8))
    fat = cv2.morphologyEx(fat, cv2.MORPH_CLOSE, np.ones((1, 5) if axis == 1 else (5, 1), np.uint8))
    runs = cv2.morphologyEx(fat, cv2.MORPH_OPEN, np.ones(along, np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    along_i, across_i = (2, 3) if axis == 1 else (3, 2)
    # Lengths are measured on the bridged runs; a line's pixels are the ink under them, its thickness
    # (reported in place of its extent across) their median count across it.
    out = []
    for i in range(1, n):
        size = int(stats[i, along_i])
        if size < length:
            continue
        px = (lab == i) & (mask > 0)
        counts = np.count_nonzero(px, axis=0 if axis == 1 else 1)
        if not counts.any():  # made only by the thickening, between dashes above and below: no ink of its own
            continue
        thick = max(1, int(np.median(counts[counts > 0])))  # per column (row): strokes crossing do not count
        if size >= LINE_THIN * thick:
            x, y, w, h = stats[i, :4].tolist()
            out.append((x, y, w, thick, px) if axis == 1 else (x, y, thick, h, px))
    return out


def remove_lines(mask: np.ndarray, pen: float | None = None) -> tuple[np.ndarray, bool]:
    """Ink mask -> (the mask with ruling and form frames removed, whether anything was removed).

    A horizontal line goes when it spans the picture (LINE_SPAN of its width, LINE_PEN strokes long) and
    either there are two such lines (ruled paper, a box's top and bottom) or it reaches past the rest of the
    ink on both sides: a 7's bar or a 2's base, even in a tight crop, ends where the digit's other strokes
    do. A vertical line goes when it is no thicker than the removed lines, both of its ends meet them, and
    one such vertical is at a horizontal line's end (a box's corner: frames and comb fields, not a 1 standing
    on ruled paper, nor a bold 1 in a box).
    Where a stroke crosses a removed line, the line's pixels between the stroke's two sides are put back."""
    m = np.ascontiguousarray(mask, np.uint8)
    h, w = m.shape
    pen = max(1.0, stroke_width(mask)) if pen is None else pen
    length = max(int(LINE_SPAN * w), int(LINE_PEN * pen), 8)
    long_rows = np.flatnonzero(np.count_nonzero(mask, axis=1) >= length)
    if not len(long_rows) or (long_rows[-1] - long_rows[0] < 2 * pen + 3 and _inside(mask, long_rows, pen)):
        return mask, False  # no row is long enough, or one band of them that ends with the ink (a 7's bar)
    hs = _lines(m, 1, length)
    if not hs:
        return mask, False
    if len(hs) < 2:
        x, _, lw, _, px = hs[0]
        rest = m & ~px
        cols = np.flatnonzero(rest.any(0))
        if len(cols) and not (x + 2 * pen < cols[0] and cols[-1] < x + lw - 2 * pen):
            return mask, False
    hmask = np.zeros_like(m)
    for *_, px in hs:
        hmask |= px
    rest = m & ~hmask
    vs = _lines(rest, 0, max(int(LINE_SPAN * 0.8 * (max(y + lh for _, y, _, lh, _ in hs) -
                                                     min(y for _, y, _, _, _ in hs))), int(LINE_PEN * pen), 8))
    rule = float(np.median([lh for _, _, _, lh, _ in hs]))  # the printed lines' thickness
    tol = 2 * rule + 3
    rows = np.flatnonzero(hmask.any(1))

    def meets(y: int) -> bool:  # a frame's side runs into the rule (a digit's stroke stops short of it)
        return bool(len(rows)) and float(np.min(np.abs(rows - y))) <= rule + 3

    # A frame's sides are printed like its top and bottom: no thicker than twice those (a bold 1 is).
    frame = [v for v in vs if meets(v[1]) and meets(v[1] + v[3] - 1) and v[2] <= 2 * rule + 2]
    ends = [e for x, _, lw, _, _ in hs for e in (x, x + lw - 1)]
    if frame and any(min(abs(v[0] - e), abs(v[0] + v[2] - 1 - e)) <= tol for v in frame for e in ends):
        vmask = np.zeros_like(m)
        for *_, px in frame:
            vmask |= px
        rest &= ~vmask
    else:
        vmask = np.zeros_like(m)
    # Put back line pixels where a stroke crosses: ink on both sides of the line, across it.
    thick = int(2 * pen + 3)
    keep = (cv2.morphologyEx(rest, cv2.MORPH_CLOSE, np.ones((thick, 1), np.uint8)) & hmask) | \
        (cv2.morphologyEx(rest, cv2.MORPH_CLOSE, np.ones((1, thick), np.uint8)) & vmask)
    return (rest | keep).astype(bool), True


def _inside(mask: np.ndarray, band: np.ndarray, pen: float) -> bool:
    """Does the ink outside rows band[0]..band[-1] reach within 2 pens of the band's ends (or is there none)?
    The quick form of remove_lines' test for a single line, without labelling anything."""
    rest = mask.copy()
    rest[band[0] : band[-1] + 1] = False
    cols = np.flatnonzero(np.logical_or.reduce(rest, axis=0))
    line = np.flatnonzero(np.logical_or.reduce(mask[band[0] : band[-1] + 1], axis=0))
    return not len(cols) or not (line[0] + 2 * pen < cols[0] and cols[-1] < line[-1] - 2 * pen)


def central(mask: np.ndarray, pen: float) -> tuple[np.ndarray, bool]:
    """With several digits in the picture, the one nearest its centre (and whether one was chosen).

    Pieces closer than a few stroke widths, or one above the other, are one digit (a 5's flag, a broken
    pencil stroke). Digit-sized groups (a fifth of the largest's ink, half its height) compete; smaller ones
    are dots and specks that the caller drops anyway."""
    m = np.ascontiguousarray(mask, np.uint8)
    r = max(1, int(1.5 * pen))
    near = cv2.dilate(m, np.ones((2 * r + 1, 2 * r + 1), np.uint8), borderValue=0)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    if not 2 < n <= MAX_GROUPS:  # one group; or texture, not a few digits (and the pairing below is n^2)
        return mask, False
    area = np.bincount(lab[mask], minlength=n)
    x0, y0, ww, hh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    # Merge groups just above one another (x-extents overlapping by half the narrower, the gap between them
    # no more than 3 times the taller one): one digit.
    parent = np.arange(n)
    for i in range(1, n):
        for j in range(i + 1, n):
            overlap = min(x0[i] + ww[i], x0[j] + ww[j]) - max(x0[i], x0[j])
            gap = max(y0[i], y0[j]) - min(y0[i] + hh[i], y0[j] + hh[j])
            if overlap > 0.5 * min(ww[i], ww[j]) and gap <= 3 * max(hh[i], hh[j]):
                parent[parent == parent[j]] = parent[i]
    roots = np.unique(parent[1:])
    if len(roots) < 2:
        return mask, False
    g_area = np.array([area[parent == g].sum() for g in roots])
    g_top = np.array([y0[parent == g].min() for g in roots])
    g_bot = np.array([(y0 + hh)[parent == g].max() for g in roots])
    g_left = np.array([x0[parent == g].min() for g in roots])
    g_right = np.array([(x0 + ww)[parent == g].max() for g in roots])
    big = (g_area >= 0.2 * g_area.max()) & (g_bot - g_top >= 0.5 * (g_bot - g_top).max())
    if big.sum() < 2:
        return mask, False
    h, w = mask.shape
    d = np.hypot((g_left + g_right) / 2 - w / 2, (g_top + g_bot) / 2 - h / 2)
    d[~big] = np.inf
    chosen = roots[int(np.argmin(d))]
    return mask & np.isin(lab, np.flatnonzero(parent == chosen)), True

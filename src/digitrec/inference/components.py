"""8-connected pieces of a binary mask, labelled over horizontal runs in a few vectorised NumPy passes.

A drawn digit has only a few runs per row, so working on runs instead of pixels is cheap; doing it without
a Python loop over them keeps it cheap for the small masks of every request (preprocessing's speck removal,
the no-digit rules' piece count).
"""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True in reading order: (rows, starts, ends), ends exclusive."""
    h, w = mask.shape
    p = np.zeros((h, w + 2), np.int8)
    p[:, 1:-1] = mask
    edges = (p[:, 1:] != p[:, :-1]).ravel().nonzero()[0]  # per row: a run's start, its end, the next ...
    rows, cols = np.divmod(edges, w + 1)
    return rows[::2], cols[::2], cols[1::2]


def run_components(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, w: int) -> np.ndarray:
    """Label 8-connected components of runs (from `runs` on a mask w wide): one root index per run.

    Vectorised: the runs a run touches in the row above form an index range found by binary search; then
    roots are hooked under smaller roots and pointers compressed until every touching pair agrees."""
    n, stride = len(rows), w + 2
    key_start, key_end = rows * stride + starts, rows * stride + ends  # both increasing
    above = (rows - 1) * stride
    lo = key_end.searchsorted(above + starts, "left")  # runs above touch if they overlap with one pixel
    hi = key_start.searchsorted(above + ends, "right")  # of slack: start <= end' and start' <= end
    count = np.maximum(hi - lo, 0)
    b = np.arange(n).repeat(count)
    a = lo.repeat(count) + np.arange(len(b)) - (count.cumsum() - count).repeat(count)
    root = np.arange(n)
    while len(a):
        ra, rb = root[a], root[b]
        differ = ra != rb
        if not differ.any():
            break
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        root[np.maximum(ra, rb)] = np.minimum(ra, rb)  # pointers only ever go down: no cycles
        while True:
            up = root[root]
            if (up == root).all():
                break
            root = up
    return root


def piece_sizes(mask: np.ndarray) -> np.ndarray:
    """Pixel counts of a binary mask's 8-connected pieces (in no particular order)."""
    rows, starts, ends = runs(mask)
    root = run_components(rows, starts, ends, mask.shape[1])
    area = np.bincount(root, weights=ends - starts, minlength=len(rows))
    return area[root == np.arange(len(rows))].astype(np.int64)

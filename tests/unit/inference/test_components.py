"""Connected pieces (components.py: OpenCV's labeller, called 8-connected) and the preprocessing steps built on
them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitrec.inference.components import piece_sizes
from digitrec.inference.levels import spread
from digitrec.inference.preprocess import _keep_strokes, to_mnist
from digitrec.training.synth import render


def _flood_sizes(mask: np.ndarray) -> list[int]:
    """Reference: sizes of the 8-connected pieces by a depth-first flood fill."""
    seen = np.zeros_like(mask, bool)
    h, w = mask.shape
    sizes = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, size = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for v in range(max(y - 1, 0), min(y + 2, h)):
                for u in range(max(x - 1, 0), min(x + 2, w)):
                    if mask[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        stack.append((v, u))
        sizes.append(size)
    return sorted(sizes)


@pytest.mark.parametrize("seed", range(8))
def test_piece_sizes_agree_with_flood_fill_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(tuple(rng.integers(1, 60, 2))) < rng.uniform(0.05, 0.7)
    assert sorted(piece_sizes(mask).tolist()) == _flood_sizes(mask)


def test_piece_sizes_of_empty_full_and_diagonal_masks():
    assert piece_sizes(np.zeros((5, 7), bool)).size == 0
    assert piece_sizes(np.ones((5, 7), bool)).tolist() == [35]
    diagonal = np.eye(6, dtype=bool)
    diagonal[0, 5] = True
    assert sorted(piece_sizes(diagonal).tolist()) == [1, 6]  # corners touch (8-connected)


def test_keep_strokes_drops_only_specks():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 18:22] = True  # a stroke of 120 px
    mask[2, 2] = True  # a 1 px speck...
    mask[37, 30:33] = True  # ...and a 3 px one: both under 10% of the stroke
    mask[10:14, 30:34] = True  # 16 px: 13% of the stroke, kept
    kept, _ = _keep_strokes(mask)
    assert kept[5:35, 18:22].all() and kept[10:14, 30:34].all()
    assert not kept[2, 2] and not kept[37, 30:33].any()
    assert kept.sum() == 120 + 16


@pytest.mark.parametrize("r", [1, 2, 5, 8])
def test_spread_is_a_square_dilation_and_erosion(r):
    rng = np.random.default_rng(r)
    x = rng.random((23, 31)).astype(np.float32)
    p = np.pad(x, r, constant_values=-np.inf)
    dilated = np.array([[p[i : i + 2 * r + 1, j : j + 2 * r + 1].max() for j in range(31)] for i in range(23)])
    assert np.array_equal(spread(x, r), dilated)
    p = np.pad(x, r, constant_values=np.inf)
    eroded = np.array([[p[i : i + 2 * r + 1, j : j + 2 * r + 1].min() for j in range(31)] for i in range(23)])
    assert np.array_equal(spread(x, r, np.minimum), eroded)


@pytest.mark.parametrize("digit", range(10))
def test_a_canvas_png_and_its_pixel_array_give_the_same_digit_image(digit):
    """The 8-bit path (PNG -> whole grey levels, only the ink's crop in float) and the float path (an
    array) are the same computation."""
    im = render(digit, np.random.default_rng(digit), "canvas")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    from_png = to_mnist(buf.getvalue())
    from_array = to_mnist(np.asarray(im, np.float32))
    assert from_png is not None and from_array is not None
    assert np.abs(from_png - from_array).max() < 1e-5
    assert np.abs(from_png - to_mnist(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))).max() < 1e-5

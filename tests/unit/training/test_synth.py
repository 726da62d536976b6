"""Synthetic handwriting: deterministic, inside the canvas, every style, readable by the preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.inference.preprocess import to_gray, to_mnist
from digitrec.training import synth


@pytest.mark.parametrize("digit", range(10))
def test_stroke_paths_stay_inside_the_canvas(digit):
    rng = np.random.default_rng(digit)
    for _ in range(20):
        for size in (280, 150):
            strokes = synth.stroke_path(digit, rng, size=size)
            assert strokes and all(len(s) >= 2 for s in strokes)
            pts = np.array([p for s in strokes for p in s])
            assert pts.min() >= 0 and pts.max() <= size
            # a real digit, not a dot: at least 15% of the canvas tall or wide
            assert (pts.max(0) - pts.min(0)).max() >= 0.15 * size


def test_same_seed_same_digit_different_seed_different_digit():
    a = synth.stroke_path(3, np.random.default_rng(7))
    b = synth.stroke_path(3, np.random.default_rng(7))
    c = synth.stroke_path(3, np.random.default_rng(8))
    assert a == b and a != c
    ia = synth.render(5, np.random.default_rng(1), "photo")
    ib = synth.render(5, np.random.default_rng(1), "photo")
    assert np.array_equal(np.asarray(ia), np.asarray(ib))


@pytest.mark.parametrize(
    ("style", "size", "ink_is_dark"),
    [
        ("canvas", (280, 280), True),
        ("scan", (280, 280), True),
        ("photo", (373, 280), True),
        ("chalk", (280, 280), False),
    ],
)
def test_each_style_has_its_size_and_polarity(style, size, ink_is_dark):
    im = synth.render(8, np.random.default_rng(0), style)
    assert im.size == size
    g = to_gray(im)
    ink = g < g.mean() - 40 if ink_is_dark else g > g.mean() + 40
    assert 0.002 < ink.mean() < 0.4  # some ink, mostly paper
    if style == "canvas":  # exactly what the page sends: white paper, black pen
        assert im.mode == "L" and g.max() == 255 and g.min() < 30


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="style"):
        synth.render(1, np.random.default_rng(0), "oil-painting")


def test_dataset_is_balanced_and_cycles_styles():
    images, labels = synth.dataset(40, seed=3, size=96)
    assert len(images) == 40 and labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [4] * 10
    assert images[0].mode == "L" and images[1].mode == "RGB"  # canvas, then scan
    assert images[2].size == (128, 96)  # the photo is 4:3
    again, labels2 = synth.dataset(40, seed=3, size=96)
    assert np.array_equal(labels, labels2) and np.array_equal(np.asarray(images[7]), np.asarray(again[7]))


def test_every_synthetic_image_has_a_digit_for_the_preprocessing():
    images, _ = synth.dataset(60, seed=11, size=160)
    outs = [to_mnist(im) for im in images]
    assert sum(x is None for x in outs) <= 1

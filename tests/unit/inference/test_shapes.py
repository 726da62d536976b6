"""Closed outlines with a few straight sides are drawn shapes, not 0s (inference.shapes); curved 0s and digits
with tails are not outlines, and only answers of 0 are checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import load_model
from digitrec.inference.preprocess import to_mnist
from digitrec.inference.shapes import refuse_outlines, straight_outline
from digitrec.training.synth import render


def polygon(sides: int, *, filled: bool = False, turn: float = 0.3) -> Image.Image:
    im = Image.new("L", (280, 280), 255)
    pts = [(140 + 90 * math.cos(turn + 2 * math.pi * k / sides), 140 + 90 * math.sin(turn + 2 * math.pi * k / sides))
           for k in range(sides)]
    if filled:
        ImageDraw.Draw(im).polygon(pts, fill=0)
    else:
        ImageDraw.Draw(im).line([*pts, pts[0]], fill=0, width=12, joint="curve")
    return im


@pytest.mark.parametrize("sides", [3, 4, 5])
def test_straight_sided_outlines_are_shapes(sides):
    assert straight_outline(to_mnist(polygon(sides)))


@pytest.mark.parametrize("image", [polygon(5, filled=True), polygon(8)], ids=["filled pentagon", "octagon"])
def test_filled_shapes_and_many_sided_outlines_are_left_to_the_model(image):
    assert not straight_outline(to_mnist(image))


@pytest.mark.parametrize("seed", range(20))
def test_drawn_digits_with_loops_are_not_outlines(seed):
    for d in (0, 8, 6, 9, 4):
        assert not straight_outline(to_mnist(render(d, np.random.default_rng(seed), "canvas"))), d


def test_the_predictor_refuses_a_pentagon_it_would_read_as_0():
    model = load_model()
    view = to_mnist(polygon(5))
    assert model.predict_proba([view])[0].argmax() == 0  # the digit model alone takes it for a 0
    answer = model.predict_mnist([view])[0]
    assert answer.digit is None and answer.reason == "not_digit_like"


def test_only_answers_of_0_are_checked_and_reasons_given_are_kept():
    views = np.stack([to_mnist(polygon(4))] * 3)
    assert refuse_outlines(views, [None, None, "not_digit_like"], np.array([0, 4, 0])) == [
        "not_digit_like", None, "not_digit_like"]
    assert refuse_outlines(views[:1], ["low_confidence"], np.array([0])) == ["not_digit_like"]

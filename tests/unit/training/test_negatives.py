"""Outlier exposure (`digitrec train --negatives`): the non-digits it trains on, the loss that pushes them to a
uniform softmax (the short real run: tests/e2e/mnist/test_negatives_training.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from digitrec.inference.preprocess import to_mnist
from digitrec.training import negatives


def test_negatives_are_deterministic_mnist_form_images_with_ink():
    a = negatives.negatives(48, seed=3)
    assert a.shape == (48, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, negatives.negatives(48, seed=3))
    assert not np.array_equal(a, negatives.negatives(48, seed=4))
    ink = (a > 127).mean(axis=(1, 2))
    assert (ink > 0.02).all()  # every one has strokes: blank pictures are redrawn, not kept
    # to_mnist places the centre of mass at the middle, as for a digit
    ys, xs = np.mgrid[0:28, 0:28]
    w = a.astype(np.float64)
    cy, cx = (w * ys).sum((1, 2)) / w.sum((1, 2)), (w * xs).sum((1, 2)) / w.sum((1, 2))
    assert np.abs(cy - 13.5).max() < 2.5 and np.abs(cx - 13.5).max() < 2.5


def test_no_digit_look_alikes_and_the_held_out_font_family_is_never_trained_on():
    assert not set(negatives.LETTERS) & set("OoIlSsZzBbgqGDJ0123456789")
    assert "T" in negatives.LETTERS  # a T is no 7 (its stem leaves the bar in the middle): docs/no-digit.md
    assert not set(negatives.SYMBOLS) & set("0123456789|/()")
    fonts = negatives.train_fonts()
    assert len(fonts) >= 10
    assert not [f for f in fonts if f.name.startswith("DejaVuSans")]


def test_a_glyph_the_font_lacks_is_skipped_not_drawn_as_a_box():
    serif = next(f for f in negatives.train_fonts() if f.name == "DejaVuSerif.ttf")
    rng = np.random.default_rng(0)
    assert negatives.render_glyph("\u4e2d", serif, rng) is None  # a CJK character DejaVu Serif does not have
    assert negatives.render_glyph("K", serif, rng) is not None


def test_elastic_warps_smoothly_and_keeps_the_shape():
    x = torch.from_numpy(negatives.negatives(8, seed=1)).float().div(255).unsqueeze(1)
    g = torch.Generator().manual_seed(0)
    y = negatives.elastic(x, generator=g)
    assert y.shape == x.shape
    assert torch.equal(y, negatives.elastic(x, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(negatives.elastic(x, alpha=0.0), x, atol=1e-5)
    moved = (y - x).abs().mean()
    assert moved > 0.01 and (y.sum() / x.sum() - 1).abs() < 0.25  # strokes move, ink is mostly kept


def test_a_batch_of_negatives_is_resampled_no_more_than_the_digits_are():
    """Without augmentation a drawn negative is a pool image, untouched: a negative blurred by an extra warp
    would teach the network that blur, not shape, means "not a digit"."""
    from digitrec.training.augment import AugmentConfig

    pool = torch.from_numpy(negatives.negatives(16, seed=2)).float().div(255).unsqueeze(1)
    digits = torch.rand(10, 1, 28, 28)
    views = negatives.image_path_views(digits)
    exposure = negatives.Exposure(pool, views)
    drawn = exposure.draw(12, AugmentConfig(0, 0, 0, 0), torch.Generator().manual_seed(1))
    assert all(any(torch.equal(d, p) for p in pool) for d in drawn)
    batch = exposure.digits(digits, torch.arange(10), torch.Generator().manual_seed(3))
    from_views = [bool(torch.equal(b, v)) for b, v in zip(batch, views, strict=True)]
    from_digits = [bool(torch.equal(b, d)) for b, d in zip(batch, digits, strict=True)]
    assert all(a or b for a, b in zip(from_views, from_digits, strict=True)) and any(from_views) and any(from_digits)


def test_image_path_views_are_what_to_mnist_makes_of_each_digit():
    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 6:22, 12:16] = 1.0  # a bar: a 1, drawn thick
    views = negatives.image_path_views(x)
    np.testing.assert_allclose(views[0, 0].numpy(), to_mnist(np.uint8(x[0, 0].numpy() * 255)), atol=1e-6)
    assert torch.equal(views[1], x[1])  # blank: kept as it was


def test_uniform_loss_is_zero_for_a_uniform_softmax_only():
    assert negatives.uniform_loss(torch.zeros(4, 10)).item() == pytest.approx(0, abs=1e-6)
    assert negatives.uniform_loss(torch.full((4, 10), 3.0)).item() == pytest.approx(0, abs=1e-6)
    confident = torch.zeros(4, 10)
    confident[:, 7] = 10
    assert negatives.uniform_loss(confident).item() > 2
    assert negatives.uniform_loss(confident).item() < 10 - math.log(10) + 1e-3


def test_outlines_are_closed_rings_of_one_stroke():
    """What makes them 0-like, and so worth showing the gate (`gate --outlines`): one piece of ink around one hole."""
    import cv2

    rng = np.random.default_rng(0)
    for _ in range(8):
        ink = (np.asarray(negatives.outline(rng)) < 128).astype(np.uint8)
        pieces = cv2.connectedComponents(ink, connectivity=8)[0] - 1
        paper = cv2.connectedComponents(1 - ink, connectivity=4)[0] - 1  # outside and the hole
        assert (pieces, paper) == (1, 2)

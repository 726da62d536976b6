"""Occlusion saliency: it finds the pixels a model depends on, costs one batched call, is in [0, 1], handles
blanks, and renders a heat-map PNG; with the real model, saliency sits on the ink."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitrec import load_model
from digitrec.inference.explain import explain, heatmap_image, occlusion
from digitrec.training.synth import render


class RegionModel:
    """Class 3's logit is 10x the ink in rows 5..9, columns 15..19; every other logit is 0. Counts calls."""

    calls = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = np.asarray(x, np.float32).reshape(-1, 28, 28)
        logits = np.zeros((len(x), 10))
        logits[:, 3] = 10 * x[:, 5:10, 15:20].mean(axis=(1, 2))
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def test_occlusion_finds_the_pixels_the_model_uses_in_one_call():
    image = np.zeros((28, 28), np.float32)
    image[3:25, 3:25] = 1.0  # ink everywhere the patches go; only one region matters
    m = RegionModel()
    digit, conf, sal = occlusion(m, image)
    assert m.calls == 1
    assert digit == 3 and conf > 0.9
    assert sal.shape == (28, 28) and sal.dtype == np.float32
    assert sal.min() >= 0 and sal.max() == pytest.approx(1.0)
    inside = sal[5:10, 15:20].mean()
    far = sal[18:26, 0:10].mean()
    assert inside > 0.5 and far == 0.0
    # The peak is in (or right next to) the region.
    r, c = np.unravel_index(sal.argmax(), sal.shape)
    assert 3 <= r <= 11 and 13 <= c <= 21


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_real_model_saliency_lies_on_the_ink(model):
    rng = np.random.default_rng(8)
    ratios = []
    for d in range(10):
        e = explain(model, render(d, rng, "canvas"))
        assert e.digit is not None and e.input is not None
        assert e.saliency.min() >= 0 and e.saliency.max() == pytest.approx(1.0)
        ink = e.input > 0.3
        ratios.append(e.saliency[ink].mean() / e.saliency[~ink].mean())
    # A round 0 or 8 spreads the model's attention (no single patch matters much), the others less so.
    assert min(ratios) > 1.5 and sum(r > 3 for r in ratios) >= 7, ratios


def test_explain_matches_the_prediction(model):
    im = render(7, np.random.default_rng(9), "scan")
    e = explain(model, im)
    p = model.predict_image(im)
    assert e.digit == p.digit and e.confidence == pytest.approx(p.confidence, rel=1e-4)


def test_blank_image_has_nothing_to_explain(model):
    e = explain(model, Image.new("L", (280, 280), 255))
    assert e.digit is None and not e.saliency.any()


def test_heatmap_is_an_enlarged_overlay():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1.0
    sal = np.zeros((28, 28), np.float32)
    sal[0, 0] = 1.0
    im = heatmap_image(image, sal, scale=10)
    assert im.size == (280, 280) and im.mode == "RGB"
    a = np.asarray(im).astype(int)
    assert a[5, 5, 0] > a[5, 5, 2] + 50  # the salient corner is warm-coloured
    assert tuple(a[140, 140]) == (255, 255, 255)  # ink without saliency stays white
    assert tuple(a[270, 270]) == (0, 0, 0)  # background stays black

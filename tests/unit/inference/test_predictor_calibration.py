"""The predictor applies the model card's calibration: temperature on the logits (predict_proba is
calibrated), and the "no digit" rules with a reason; without a calibration nothing but blank is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import load_model
from digitrec.inference.preprocess import to_mnist
from digitrec.paths import BUNDLED_DIR
from digitrec.training.calibrate import onnx_logits, softmax
from digitrec.training.synth import render


def with_calibration(tmp_path: Path, calibration: dict | None) -> Path:
    """A copy of the bundled model whose card holds `calibration` (or none)."""
    shutil.copy(BUNDLED_DIR / "model.onnx", tmp_path / "model.onnx")
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    card.pop("calibration", None)
    if calibration is not None:
        card["calibration"] = calibration
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    return tmp_path


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.stack([to_mnist(render(d, rng, "canvas")) for d in range(10)])


def test_temperature_divides_the_logits(tmp_path, images):
    (tmp_path / "raw").mkdir()
    raw = load_model(with_calibration(tmp_path / "raw", None))
    hot = load_model(with_calibration(tmp_path, {"temperature": 2.0}))
    assert raw.rules is None and hot.rules is not None
    logits = onnx_logits(BUNDLED_DIR / "model.onnx", images)
    assert np.allclose(raw.predict_proba(images), softmax(logits), atol=1e-5)
    assert np.allclose(hot.predict_proba(images), softmax(logits, 2.0), atol=1e-5)
    # T > 1 softens: same answers, lower confidence; no rule beyond T, so every digit is still answered.
    assert (hot.predict(images) == raw.predict(images)).all()
    preds = hot.predict_mnist(list(images))
    assert all(p.reason is None and p.digit is not None for p in preds)
    assert all(h.confidence < r.confidence for h, r in zip(preds, raw.predict_mnist(list(images)), strict=True))


def test_a_threshold_refuses_unsure_answers_with_their_probabilities(tmp_path, images):
    strict = load_model(with_calibration(tmp_path, {"temperature": 1.0, "reject_below": 0.999999}))
    p = strict.predict_mnist([images[0], None])
    assert p[0].digit is None and p[0].reason == "low_confidence" and not p[0].is_blank
    assert p[0].input is not None and abs(sum(p[0].probabilities) - 1) < 1e-5
    assert p[0].confidence == max(p[0].probabilities)
    assert p[1].reason == "blank" and p[1].is_blank and p[1].confidence == 0.0


def test_bundled_model_is_calibrated_and_refuses_non_digits():
    model = load_model()
    assert model.rules is not None and model.rules.temperature != 1.0
    dots = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(dots)
    for i in range(16):
        x, y = 30 + 60 * (i % 4), 30 + 60 * (i // 4)
        draw.ellipse((x, y, x + 20, y + 20), fill=0)
    assert model.predict_image(dots).reason == "not_digit_like"
    assert model.predict_image(Image.new("L", (280, 280), 255)).reason == "blank"
    rng = np.random.default_rng(3)
    answered = [model.predict_image(render(d, rng, "canvas")) for d in range(10)]
    assert sum(p.digit == d for d, p in enumerate(answered)) >= 9

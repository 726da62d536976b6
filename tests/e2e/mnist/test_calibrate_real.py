"""Calibration on the real data set (split from tests/unit/training/test_calibrate.py): a real model's rules
reject noise while answering MNIST digits, and writing them keeps the card's sha256 valid."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.training.calibrate import Rules


@pytest.mark.slow
def test_calibrating_a_real_model_on_the_validation_split(mnist_cache):
    from digitrec.inference.predictor import resolve_model_path
    from digitrec.training.calibrate import calibrate_model, onnx_logits
    from digitrec.training.data import load_mnist

    onnx = resolve_model_path(None)
    cal = calibrate_model(onnx, synthetic=100)
    assert 0.2 < cal["temperature"] < 5
    assert cal["ece_after"] <= cal["ece_before"] + 1e-3
    assert cal["val_rejected"] <= 0.015
    rules = Rules.from_calibration(cal)
    test = load_mnist().test_images[:2000].astype(np.float32) / 255
    reasons = rules.reasons(test, onnx_logits(onnx, test))
    assert np.mean([r is not None for r in reasons]) <= 0.02
    rng = np.random.default_rng(5)
    noise = rng.random((100, 28, 28)).astype(np.float32)
    assert np.mean([r is not None for r in rules.reasons(noise, onnx_logits(onnx, noise))]) >= 0.9


@pytest.mark.slow
def test_write_calibration_keeps_the_cards_sha256_valid(mnist_cache, tmp_path):
    import json
    import shutil

    from digitrec.fileio import sha256_file
    from digitrec.inference.predictor import load_model, resolve_model_path
    from digitrec.training.calibrate import write_calibration

    src = resolve_model_path(None)
    shutil.copy(src, tmp_path / "model.onnx")
    if (src.parent / "model_card.json").is_file():
        shutil.copy(src.parent / "model_card.json", tmp_path / "model_card.json")
    before = sha256_file(tmp_path / "model.onnx")
    card_path, cal = write_calibration(tmp_path, synthetic=0)
    card = json.loads(card_path.read_text())
    assert card["onnx_sha256"] == before == sha256_file(tmp_path / "model.onnx")
    assert card["calibration"]["temperature"] == cal["temperature"] > 0
    load_model(tmp_path)  # the card still matches its model

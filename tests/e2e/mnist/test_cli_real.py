"""The commands on the real data set (split from tests/unit/cli/test_cli.py and test_cli_insight.py): `digitrec
data` verifies a given folder and fills the cache; `digitrec calibrate` writes the card the predictor then uses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from digitrec.fileio import sha256_file
from digitrec.inference.predictor import load_model
from digitrec.paths import BUNDLED_DIR
from digitrec.testing.cli import digitrec
from digitrec.training.synth import render


@pytest.mark.slow
def test_data_command_verifies_a_given_folder_and_fills_the_cache(mnist_cache, tmp_path):
    import os
    import shutil

    given = tmp_path / "given"
    shutil.copytree(mnist_cache, given)
    env = {**os.environ, "DIGITREC_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    proc = digitrec("data", "--data-dir", given, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stdout
    assert len(list((tmp_path / "cache" / "mnist").iterdir())) == 4


@pytest.mark.slow
def test_calibrate_writes_the_card_and_the_predictor_uses_it(mnist_cache, tmp_path):
    """On a copy of the bundled model without its calibration: the command fits it, keeps the sha256
    valid, records itself, and the predictor then answers with calibrated probabilities."""
    shutil.copy(BUNDLED_DIR / "model.onnx", tmp_path / "model.onnx")
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    card.pop("calibration", None)
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    raw = load_model(tmp_path)
    assert raw.rules is None
    r = digitrec("calibrate", tmp_path, "--synthetic", "100", check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ECE (validation)" in r.stdout
    cal = json.loads((tmp_path / "model_card.json").read_text())["calibration"]
    assert cal["command"] == f"digitrec calibrate {tmp_path} --synthetic 100"
    # The temperature minimises the validation NLL, so it can only lower it; a model that is calibrated already
    # (the bundled student trains without label smoothing) keeps its small ECE rather than necessarily lowering it.
    assert cal["nll_after"] <= cal["nll_before"] and cal["ece_after"] < 0.01 and 0 < cal["reject_below"] < 1
    assert json.loads((tmp_path / "model_card.json").read_text())["onnx_sha256"] == sha256_file(
        tmp_path / "model.onnx")
    calibrated = load_model(tmp_path)  # the card still matches the file
    assert calibrated.rules is not None and calibrated.rules.temperature == pytest.approx(cal["temperature"])
    x = render(2, np.random.default_rng(0), "canvas")
    p_raw, p_cal = raw.predict_image(x), calibrated.predict_image(x)
    assert p_raw.digit == p_cal.digit == 2
    # T < 1 sharpens (the model trains with label smoothing): calibrated confidence is higher.
    assert (cal["temperature"] < 1) == (p_cal.confidence > p_raw.confidence)

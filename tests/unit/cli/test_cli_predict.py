"""`digitrec predict`, run as a user runs it: text and JSON lines, per-file errors, the exit code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec import load_model
from digitrec.training.synth import render


def digitrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    render(3, np.random.default_rng(3), "canvas").save(d / "three.png")
    render(8, np.random.default_rng(8), "scan").convert("RGB").save(d / "eight.jpg", quality=90)
    Image.new("L", (200, 200), 255).save(d / "blank.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return {p.stem: p for p in d.iterdir()}


def test_one_line_per_file_and_a_clear_error_for_the_unreadable_one(images):
    files = [
        images["three"],
        images["broken"],
        images["blank"],
        images["eight"],
        images["three"].with_name("gone.png"),
    ]
    r = digitrec("predict", *files)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 3  # the two good images and the blank one, in order
    model = load_model()
    for line, path in zip(lines, [images["three"], images["blank"], images["eight"]], strict=True):
        p = model.predict_image(path)
        expected = f"{path}: no digit" if p.digit is None else f"{path}: {p.digit} ({p.confidence:.1%})"
        assert line == expected
    assert lines[1] == f"{images['blank']}: no digit"
    assert re.match(rf"{re.escape(str(images['three']))}: \d \(\d+\.\d%\)$", lines[0])
    assert f"{images['broken']}: error:" in r.stderr and "gone.png: error:" in r.stderr
    assert "2 of 5" in r.stderr and "Traceback" not in r.stderr


def test_json_lines(images):
    r = digitrec("predict", "--json", images["three"], images["blank"])
    assert r.returncode == 0, r.stderr
    first, blank = (json.loads(line) for line in r.stdout.splitlines())
    assert first["file"] == str(images["three"]) and isinstance(first["digit"], int)
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert first["confidence"] == max(first["probabilities"])
    assert blank == {
        "file": str(images["blank"]),
        "digit": None,
        "confidence": 0.0,
        "probabilities": [0.0] * 10,
        "reason": "blank",
    }


def test_model_option_takes_a_run_folder_and_reports_a_bad_one(images, tmp_path):
    r = digitrec("predict", "--model", tmp_path / "nothing.onnx", images["three"])
    assert r.returncode == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    src = load_model().path
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.onnx").write_bytes(src.read_bytes())
    r = digitrec("predict", "--model", tmp_path / "run", images["three"])
    assert r.returncode == 0 and r.stdout.startswith(f"{images['three']}: ")

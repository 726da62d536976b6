"""benchmarks/tta.py on the bundled model: its plain test errors are the model card's, the five-view column is
counted on the same images, and the closing line gives the validation change."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests import ROOT

BUNDLED = ROOT / "src" / "digitrec" / "bundled"


@pytest.mark.slow
def test_plain_errors_match_the_card_and_the_validation_change_is_summed(mnist_cache):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tta.py"), str(BUNDLED / "model.onnx")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| all 1 |"))
    val_plain, val_tta, test_plain, test_tta = map(int, re.findall(r"\d+", row)[1:])
    assert test_plain == json.loads((BUNDLED / "model_card.json").read_text())["test_errors"]
    assert 0 < test_tta < 200 and 0 < val_tta < 200
    assert f"validation: {val_tta - val_plain:+d} errors over 6,000 images, for 5× the inference" in out.stdout

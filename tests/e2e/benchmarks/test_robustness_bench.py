"""A tiny run of benchmarks/robustness.py: every perturbation is in the table and the JSON, accuracies are
percentages, and a missing reference-recipe run is one clear line, not a traceback."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests import ROOT

BENCH = ROOT / "benchmarks" / "robustness.py"
ONNX = ROOT / "src" / "digitrec" / "bundled" / "model.onnx"
NAMES = ["clean", "shift 6 px", "rotate ±15°", "rotate ±30°", "scale x0.5", "scale x1.5", "thicker +2 px",
         "thinner -1 px", "inverted (ink on paper)"]


def bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_table_has_every_perturbation_with_accuracies_for_both_models(mnist_cache):
    out = bench("--n", "12", "--model", str(ONNX), "--baseline", str(ONNX))
    assert out.returncode == 0, out.stderr
    assert "command:" in out.stdout and "machine:" in out.stdout
    lines = out.stdout.splitlines()
    for name in NAMES:
        row = next(line for line in lines if line.startswith(name + " "))
        cells = [float(v) for v in re.findall(r"(-?\d+\.\d+)%", row)]
        assert len(cells) == 4, row  # model, baseline, raw model, raw baseline
        assert all(0 <= v <= 100 for v in cells), row
        assert cells[0] == cells[1], row  # the same model twice on the same images


@pytest.mark.slow
def test_json_has_every_perturbation_and_the_same_model_twice_agrees(mnist_cache):
    out = bench("--n", "12", "--model", str(ONNX), "--baseline", str(ONNX), "--json", "--seed", "3")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["n"] == 12 and result["seed"] == 3 and "robustness.py" in result["command"]
    assert list(result["conditions"]) == NAMES
    for name, r in result["conditions"].items():
        for key in ("model", "baseline", "raw_model", "raw_baseline"):
            assert 0 <= r[key] <= 1, (name, key)
        assert r["model"] == r["baseline"] and r["raw_model"] == r["raw_baseline"]
    assert result["conditions"]["clean"]["model"] >= 11 / 12


def test_missing_baseline_is_one_line_that_says_how_to_make_it(tmp_path):
    out = bench("--n", "5", "--baseline", str(tmp_path / "nope"))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "digitrec train --preset reference" in lines[0] and "nope" in lines[0], out.stderr

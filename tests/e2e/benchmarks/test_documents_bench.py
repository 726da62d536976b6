"""A tiny run of benchmarks/documents.py (split from tests/unit/inference/test_document.py): every condition's row
is in its table, with percentages, and the single digits pooled; --only keeps the conditions asked for."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import ROOT


def run(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run([sys.executable, "benchmarks/documents.py", "--no-photo-timing", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def row(out: str, name: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(name))
    assert all(0 <= float(v) <= 100 for v in line.split("%")[0].split()[-1:]), line
    return line


def test_documents_benchmark_runs_tiny():
    out = run("--n", "3")
    for name in ("tight crop", "boxed", "low-res scan, as sent", "canvas drawing (the page)", "number, comb field",
                 "number with a decimal point", "letters (handwritten)"):
        row(out, name)
    # The last single-digit row pools the seven conditions: each column is their mean (the same n each).
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("tight crop"))
    pooled = next(i for i, line in enumerate(lines) if line.startswith("all 21 of them"))
    values = [[float(v) for v in line[30:].split("%")[:-1]] for line in lines[start : pooled + 1]]
    assert pooled - start == 7 and all(len(v) == 6 for v in values)
    for col in range(6):
        assert abs(sum(v[col] for v in values[:-1]) / 7 - values[-1][col]) < 0.1


def test_only_runs_the_conditions_asked_for():
    out = run("--n", "10", "--only", "canvas", "letters")
    row(out, "canvas drawing (the page)")
    row(out, "letters (handwritten)")
    assert not any(line.startswith(("tight crop", "number, comb field", "symbols")) for line in out.splitlines())

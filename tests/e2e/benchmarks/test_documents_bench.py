"""A tiny run of benchmarks/documents.py (split from tests/unit/inference/test_document.py): every condition's row
is in its table, with percentages."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import ROOT


def test_documents_benchmark_runs_tiny():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run([sys.executable, "benchmarks/documents.py", "--n", "3", "--no-photo-timing"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for name in ("tight crop", "boxed", "low-res scan, as sent", "number, comb field", "number with a decimal point",
                 "letters (handwritten)"):
        row = next(line for line in out.stdout.splitlines() if line.startswith(name))
        assert all(0 <= float(v) <= 100 for v in row.split("%")[0].split()[-1:]), row

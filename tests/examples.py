"""What the example tests share (tests/unit/project/test_examples.py, tests/e2e/server/test_examples_http.py):
running a script of examples/ as a user would, and the image files they are given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from digitrec.training.synth import render
from tests import ROOT

EXAMPLES = ROOT / "examples"


def run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def example_images(folder: Path) -> list[Path]:
    """Drawn 2, 6 and 8 as PNG files, then a broken PNG."""
    rng = np.random.default_rng(21)
    paths = []
    for d in (2, 6, 8):
        paths.append(folder / f"digit{d}.png")
        render(d, rng, "canvas").save(paths[-1])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return paths + [folder / "broken.png"]

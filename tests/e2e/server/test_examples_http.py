"""examples/http_client.py against a real server on a free loopback port, as a user would run it (split from
tests/unit/project/test_examples.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digitrec.testing.servers import live_server
from digitrec.training.synth import render
from tests import ROOT

EXAMPLES = ROOT / "examples"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(21)
    paths = []
    for d in (2, 6, 8):
        paths.append(folder / f"digit{d}.png")
        render(d, rng, "canvas").save(paths[-1])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return paths + [folder / "broken.png"]


def test_http_client_against_a_live_server(images):
    with live_server() as url:
        r = _run(str(EXAMPLES / "http_client.py"), url, *map(str, images[:2]))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "server model:" in out
    assert "digit2.png (multipart): 2 (" in out and "digit6.png (base64 JSON): 6 (" in out
    assert "pixels (28x28 JSON): 2 (" in out
    assert "batch: [2, 6]" in out
    assert "garbage bytes: HTTP 400:" in out

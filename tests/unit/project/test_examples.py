"""The examples run as a user would run them, and say the right things: use_model.py on image files, and
http_client.py when no server answers (against a real one: tests/e2e/server/test_examples_http.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitrec.testing.servers import free_port
from tests.examples import example_images, run_example


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return example_images(tmp_path_factory.mktemp("images"))


def test_use_model_reads_files_batches_and_probabilities(images):
    r = run_example("use_model.py", *map(str, images))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for d in (2, 6, 8):
        assert f"digit{d}.png: {d} (" in out
    assert "broken.png: error:" in out and "Traceback" not in out + r.stderr
    assert "# batch of 3 -> [2, 6, 8]" in out
    probs = [line for line in out.splitlines() if line.startswith("  ") and ":" in line]
    assert len(probs) == 3 and all(line.count(",") == 2 for line in probs)


def test_use_model_makes_its_own_samples_without_arguments():
    r = run_example("use_model.py")
    assert r.returncode == 0, r.stderr
    assert "3_canvas.png: 3 (" in r.stdout and "# batch of 5" in r.stdout


def test_http_client_says_when_no_server_answers():
    r = run_example("http_client.py", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 1 and "cannot reach" in r.stderr and "Traceback" not in r.stderr

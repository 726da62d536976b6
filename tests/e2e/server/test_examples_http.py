"""examples/http_client.py against a real server on a free loopback port, as a user would run it (split from
tests/unit/project/test_examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitrec.testing.servers import live_server
from tests.examples import example_images, run_example


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return example_images(tmp_path_factory.mktemp("images"))


def test_http_client_against_a_live_server(images):
    with live_server() as url:
        r = run_example("http_client.py", url, *map(str, images[:2]))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "server model:" in out
    assert "digit2.png (multipart): 2 (" in out and "digit6.png (base64 JSON): 6 (" in out
    assert "pixels (28x28 JSON): 2 (" in out
    assert "batch: [2, 6]" in out
    assert "garbage bytes: HTTP 400:" in out

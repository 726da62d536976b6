"""Hostile inputs against a real server (split from tests/unit/inference/test_hostile.py, which fuzzes the
decoder): every small costly file is a 4xx or a correct answer, and the server answers /healthz after each.
Memory, CPU and /healthz latency under them are measured by benchmarks/hostile.py, not here."""

from __future__ import annotations

import httpx
import pytest

from digitrec.testing.hostile import CASES, files_for
from digitrec.testing.servers import live_server


@pytest.fixture(scope="module")
def client():
    with live_server({"DIGITREC_DB": "off"}) as url, httpx.Client(base_url=url, timeout=120) as c:
        yield c


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_file_is_handled_and_the_server_stays_up(client, case):
    r = client.post(case.route, files=files_for(case))
    assert r.status_code in case.ok, r.text
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, str) and detail
    assert client.get("/healthz").status_code == 200

"""Schemathesis fuzzes every operation in /openapi.json against a real server: no 5xx, documented status
codes and response schemas, and the server stays healthy. (Hypothesis fuzzes the preprocessing with
arbitrary bytes and arrays in tests/unit/inference/test_preprocess.py.) Bounded examples keep it well under two
minutes."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import checks as st_checks  # noqa: E402

from digitrec.testing.servers import live_server  # noqa: E402


@pytest.fixture(scope="module")
def server_url():
    with live_server(env={"DIGITREC_ACCESS_LOG": "0"}) as url:
        yield url


CALLS: dict[str, int] = {}


def operations(url: str):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_api_never_fails_and_answers_as_documented(server_url):
    """Each operation in turn (schemathesis's pytest plugin does not load on this pytest, so the strategies
    are driven by hypothesis directly; the checks are schemathesis's own)."""
    ops = operations(server_url)
    assert {op.path for op in ops} >= {"/api/predict", "/api/predict/batch", "/api/feedback", "/api/stats"}
    for op in ops:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            CALLS[case.operation.path] = CALLS.get(case.operation.path, 0) + 1
            case.call_and_validate(
                base_url=server_url,
                timeout=30,
                checks=[st_checks.not_a_server_error, st_checks.status_code_conformance,
                        st_checks.content_type_conformance, st_checks.response_schema_conformance],
            )

        fuzz()
    assert CALLS.keys() == {op.path for op in ops} and CALLS["/api/predict"] >= 20  # it really ran


def test_server_is_healthy_after_fuzzing(server_url):
    assert httpx.get(f"{server_url}/readyz").status_code == 200

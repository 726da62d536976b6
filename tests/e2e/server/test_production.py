"""The production features against a real `digitrec serve` on loopback: metrics, access logs, request ids,
rate limiting, security headers, CORS, admin, A/B routing and the page-independent feedback API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from digitrec.paths import BUNDLED_DIR
from digitrec.testing.servers import ONE_PIXELS, cli_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prod")
    with cli_server(tmp, "--db", f"sqlite:///{tmp / 'feedback.db'}") as s:
        yield s


def predict(url: str, **headers) -> httpx.Response:
    r = httpx.post(f"{url}/api/predict", json={"pixels": ONE_PIXELS}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_feedback_round_trip_and_stats(server):
    before = httpx.get(f"{server.url}/api/stats").json()
    answer = predict(server.url).json()
    r = httpx.post(f"{server.url}/api/feedback", json={"id": answer["id"], "label": 7})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": answer["id"], "label": 7, "digit": answer["digit"], "correct": answer["digit"] == 7,
                        "model": answer["model"]}
    after = httpx.get(f"{server.url}/api/stats").json()
    assert after["predictions"] == before["predictions"] + 1 and after["feedback"] == before["feedback"] + 1
    assert answer["model"] in after["by_model"]


@pytest.mark.parametrize("body,status", [
    ({"id": "0" * 32, "label": 3}, 404),
    ({"id": "x", "label": 10}, 422),
    ({"id": "x"}, 422),
    ({"id": "", "label": 1}, 422),
    ({"id": "x", "label": 1, "extra": 1}, 422),
])
def test_bad_feedback_is_a_clear_4xx(server, body, status):
    r = httpx.post(f"{server.url}/api/feedback", json=body)
    assert r.status_code == status and isinstance(r.json()["detail"], str)


def test_metrics_cover_requests_predictions_models_and_feedback(server):
    answer = predict(server.url).json()
    httpx.post(f"{server.url}/api/feedback", json={"id": answer["id"], "label": answer["digit"]})
    text = httpx.get(f"{server.url}/metrics").text
    for needle in [
        'digitrec_http_requests_total{method="POST",route="/api/predict",status="200"}',
        'digitrec_http_request_duration_seconds_bucket{le="0.01",method="POST",route="/api/predict"}',
        f'digitrec_predictions_total{{digit="{answer["digit"]}",model="{answer["model"]}"}}',
        "digitrec_prediction_confidence_bucket",
        "# TYPE digitrec_no_digit_total counter",
        'digitrec_model_info{name="digitrec-fast",role="primary"',
        f'digitrec_feedback_accuracy{{model="{answer["model"]}"}}',
    ]:
        assert needle in text, needle


def test_blank_images_count_as_no_digit(server):
    r = httpx.post(f"{server.url}/api/predict", json={"pixels": [[0.0] * 28] * 28})
    assert r.json()["digit"] is None
    line = next(x for x in httpx.get(f"{server.url}/metrics").text.splitlines()
                if x.startswith("digitrec_no_digit_total{"))
    assert float(line.split()[-1]) >= 1


def test_request_ids_and_json_access_log_without_image_data(server):
    r = predict(server.url, **{"X-Request-ID": "trace-abc.123"})
    assert r.headers["x-request-id"] == "trace-abc.123"
    assert r.headers["x-model"] == r.json()["model"]
    made = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert len(made) == 32 and " " not in made  # an unsafe id is replaced, not echoed
    logged = [json.loads(x) for x in server.log_lines() if x.startswith("{")]
    mine = [e for e in logged if e.get("request_id") == "trace-abc.123"]
    assert mine and mine[0]["route"] == "/api/predict" and mine[0]["status"] == 200
    assert {"duration_ms", "method", "path", "client", "model"} <= set(mine[0])
    text = server.log.read_text()
    assert "pixels" not in text and "0.0, 0.0" not in text and "iVBOR" not in text  # no image data


def test_security_headers_on_the_page_and_no_cors_by_default(server):
    r = httpx.get(server.url + "/", headers={"Origin": "https://evil.example"})
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(f"{server.url}/api/predict", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


def test_admin_is_disabled_without_a_token(server):
    r = httpx.post(f"{server.url}/api/admin/reload")
    assert r.status_code == 404 and "DIGITREC_ADMIN_TOKEN" in r.json()["detail"]


def test_rate_limit_429_with_retry_after_and_probes_never_limited(tmp_path):
    with cli_server(tmp_path, "--db", "off", "--rate-limit", "5/second") as s:
        codes = [httpx.get(f"{s.url}/api/model").status_code for _ in range(12)]
        assert codes[:5] == [200] * 5 and 429 in codes
        r = httpx.get(f"{s.url}/api/model")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 2 and "retry" in r.json()["detail"]
        for path in ("/healthz", "/readyz", "/metrics"):
            assert all(httpx.get(s.url + path).status_code == 200 for _ in range(20)), path
        assert "digitrec_rate_limited_total" in httpx.get(f"{s.url}/metrics").text


def test_cors_only_for_the_given_origin(tmp_path):
    with cli_server(tmp_path, "--db", "off", "--cors-origin", "https://app.example") as s:
        ok = httpx.options(f"{s.url}/api/predict", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(f"{s.url}/api/model", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def copy_model(tmp_path: Path, name: str) -> Path:
    """The bundled ONNX file without its card: a second model with another name (its folder's)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(BUNDLED_DIR / "model.onnx", folder / "model.onnx")
    return folder


def test_admin_reload_needs_the_bearer_token_and_keeps_the_old_model_on_error(tmp_path):
    other = copy_model(tmp_path, "other-model")
    env = {"DIGITREC_ADMIN_TOKEN": "s3cret", "DIGITREC_MODEL_DIRS": str(tmp_path)}
    with cli_server(tmp_path, "--db", "off", env=env) as s:
        url = f"{s.url}/api/admin/reload"
        assert httpx.post(url).status_code == 401
        r = httpx.post(url, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        auth = {"Authorization": "Bearer s3cret"}
        bad = httpx.post(url, json={"model": str(tmp_path / "missing.onnx")}, headers=auth, timeout=30)
        assert bad.status_code == 400 and "does not exist" in bad.json()["detail"]
        assert predict(s.url).json()["model"].startswith("digitrec-fast")
        r = httpx.post(url, json={"model": str(other)}, headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["model"] == "other-model unknown"
        assert predict(s.url).json()["model"] == "other-model unknown"


def test_ab_routing_is_stable_per_client_and_split_in_stats_and_metrics(tmp_path):
    candidate = copy_model(tmp_path, "candidate-b")
    db = f"sqlite:///{tmp_path / 'ab.db'}"
    with cli_server(tmp_path, "--db", db, "--candidate", str(candidate), "--candidate-share", "0.3") as s:
        seen = {}
        for i in range(60):
            first = predict(s.url, **{"X-Client-ID": f"user-{i}"}).json()["model"]
            again = predict(s.url, **{"X-Client-ID": f"user-{i}"})
            assert again.json()["model"] == first == again.headers["x-model"]  # the same client, the same model
            seen[i] = first
        share = sum(m == "candidate-b unknown" for m in seen.values()) / len(seen)
        assert 0.1 <= share <= 0.5, share
        stats = httpx.get(f"{s.url}/api/stats").json()["by_model"]
        assert set(stats) == set(seen.values()) and len(stats) == 2
        assert sum(v["predictions"] for v in stats.values()) == 120
        metrics = httpx.get(f"{s.url}/metrics").text
        assert 'digitrec_predictions_total{digit="1",model="candidate-b unknown"}' in metrics
        assert 'role="candidate"' in metrics

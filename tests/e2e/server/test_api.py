"""The HTTP API against a real uvicorn server on loopback: answers, formats, batch, limits, and that every
client mistake is a 4xx JSON `{"detail": ...}` after which the server still answers."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from digitrec import load_model
from digitrec.inference.preprocess import to_mnist
from digitrec.testing.servers import free_port, live_server, stop, wait_ready
from digitrec.training.synth import render


@pytest.fixture(scope="module")
def server():
    with live_server() as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def drawings() -> list[tuple[int, bytes]]:
    """One synthetic canvas drawing per digit, PNG-encoded as the page sends it."""
    rng = np.random.default_rng(7)
    return [(d, png(render(d, rng, "canvas"))) for d in range(10)]


def png(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_answer(body: dict) -> None:
    assert set(body) == {"id", "digit", "confidence", "probabilities", "model", "input", "reason", "box"}
    assert body["box"] is None or (len(body["box"]) == 4 and body["box"][2] > 0 and body["box"][3] > 0)
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert len(body["probabilities"]) == 10
    assert (body["reason"] is None) == (body["digit"] is not None)
    if body["reason"] == "blank":
        assert body["confidence"] == 0 and body["input"] is None
        return
    if body["digit"] is None:  # refused by the calibration rules: what the model saw is still shown
        assert body["reason"] in ("not_digit_like", "low_confidence") and body["input"] is not None
        return
    assert abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"]) == body["probabilities"][body["digit"]]
    x = np.asarray(body["input"])
    assert x.shape == (28, 28) and x.min() >= 0 and x.max() <= 1 and x.max() > 0.5


def test_multipart_upload_reads_drawn_digits(client, drawings):
    answers = []
    for _, data in drawings:
        r = client.post("/api/predict", files={"file": ("d.png", data, "image/png")})
        assert r.status_code == 200, r.text
        check_answer(r.json())
        answers.append(r.json())
    correct = sum(a["digit"] == d for (d, _), a in zip(drawings, answers, strict=True))
    assert correct >= 8, f"{correct}/10 drawings read correctly"
    assert len({a["id"] for a in answers}) == len(answers)
    model = client.get("/api/model").json()
    assert all(a["model"] == f"{model['name']} {model['version']}" for a in answers)


def test_base64_data_url_and_pixels_agree_with_the_upload(client, drawings):
    _, data = drawings[3]
    upload = client.post("/api/predict", files={"file": ("d.png", data, "image/png")}).json()
    for image in (b64(data), f"data:image/png;base64,{b64(data)}", b64(data)[:40] + "\n" + b64(data)[40:]):
        r = client.post("/api/predict", json={"image": image})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["probabilities"], upload["probabilities"], atol=1e-6)
    # The same 28x28 image sent as pixels skips preprocessing and must get the same answer as in Python.
    x = to_mnist(data)
    r = client.post("/api/predict", json={"pixels": x.tolist()})
    assert r.status_code == 200, r.text
    check_answer(r.json())
    assert r.json()["box"] is None and upload["box"] is not None  # pixels have no picture to point into
    expected = load_model().predict_proba(x[None])[0]
    np.testing.assert_allclose(r.json()["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(r.json()["input"], x, atol=1e-3)


def test_every_accepted_format_gives_the_png_answer(client, drawings):
    _, data = drawings[4]
    im = Image.open(io.BytesIO(data))
    ref = client.post("/api/predict", files={"file": ("d.png", data)}).json()["digit"]
    rgba = im.convert("RGBA")
    variants = {
        "jpeg": png(im.convert("RGB"), "JPEG", quality=90),
        "webp": png(im, "WEBP", quality=90),
        "bmp": png(im, "BMP"),
        "gif": png(im, "GIF"),
        "rgba-png": png(rgba),
    }
    for name, blob in variants.items():
        r = client.post("/api/predict", files={"file": (f"d.{name}", blob, "application/octet-stream")})
        assert r.status_code == 200, (name, r.text)
        assert r.json()["digit"] == ref, name


def test_blank_images_and_blank_pixels_are_no_digit(client):
    for body in (
        {"files": {"file": ("b.png", png(Image.new("L", (280, 280), 255)))}},
        {"json": {"image": b64(png(Image.new("RGB", (50, 50), (0, 0, 0))))}},
        {"json": {"pixels": [[0.0] * 28] * 28}},
    ):
        r = client.post("/api/predict", **body)
        assert r.status_code == 200, r.text
        check_answer(r.json())
        assert r.json()["digit"] is None and r.json()["probabilities"] == [0.0] * 10
        assert r.json()["reason"] == "blank"


def test_batch_answers_in_order_for_multipart_and_json(client, drawings):
    files = [("files", (f"{d}.png", data, "image/png")) for d, data in drawings]
    r = client.post("/api/predict/batch", files=files)
    assert r.status_code == 200, r.text
    multipart = r.json()["results"]
    assert len(multipart) == 10
    singles = [client.post("/api/predict", files={"file": ("d.png", data)}).json() for _, data in drawings]
    assert [a["digit"] for a in multipart] == [a["digit"] for a in singles]

    blank = [[0.0] * 28] * 28
    data_url = f"data:image/png;base64,{b64(drawings[1][1])}"
    images = [b64(drawings[0][1]), {"image": data_url}, {"pixels": blank}]
    r = client.post("/api/predict/batch", json={"images": images})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [a["digit"] for a in results] == [singles[0]["digit"], singles[1]["digit"], None]
    for a in results:
        check_answer(a)


TRUNCATED = "truncated"
BOMB = "bomb"


def bad_requests(drawing: bytes) -> dict[str, tuple[dict, int, str]]:
    """name -> (httpx request kwargs, expected status, a phrase the detail must contain)."""
    j = {"content-type": "application/json"}
    nan = json.dumps({"pixels": [[float("nan")] * 28] * 28}).encode()  # Python writes NaN literals
    inf = json.dumps({"pixels": [[0.0] * 27 + [float("inf")]] * 28}).encode()
    bomb = png(Image.new("1", (8000, 8000)))  # ~10 KB file that would decode to 64 megapixels
    return {
        "garbage bytes": ({"files": {"file": ("x.png", os.urandom(2000))}}, 400, "not a readable"),
        "empty file": ({"files": {"file": ("x.png", b"")}}, 400, "empty"),
        "truncated png": ({"files": {"file": ("x.png", drawing[: len(drawing) // 2])}}, 400, TRUNCATED),
        "tiff": ({"files": {"file": ("x.tif", png(Image.new("L", (30, 30)), "TIFF"))}}, 415, "TIFF"),
        "png bomb": ({"files": {"file": ("x.png", bomb)}}, 413, "pixels"),
        "text field not file": (
            {"data": {"file": "hello"}, "files": {"other": ("a", b"b")}},
            422,
            "file upload",
        ),
        "no file field": ({"files": {"image": ("x.png", drawing)}}, 422, "'file'"),
        "bad base64": ({"json": {"image": "%%%not base64%%%"}}, 400, "base64"),
        "base64 of garbage": ({"json": {"image": b64(b"hello world")}}, 400, "not a readable"),
        "data url not base64": ({"json": {"image": "data:image/png,abc"}}, 400, "base64"),
        "empty base64": ({"json": {"image": ""}}, 400, "empty"),
        "invalid json": ({"content": b"{'image': 1", "headers": j}, 400, "not valid JSON"),
        "empty json body": ({"content": b"", "headers": j}, 400, "empty"),
        "json array": ({"json": [1, 2, 3]}, 422, "dictionary"),
        "unknown field": ({"json": {"picture": "abc"}}, 422, "picture"),
        "image and pixels": ({"json": {"image": "abc", "pixels": [[0] * 28] * 28}}, 422, "exactly one"),
        "image not a string": ({"json": {"image": 42}}, 422, "image"),
        "pixels 27 wide": ({"json": {"pixels": [[0.0] * 27] * 28}}, 422, "28 rows of 28"),
        "pixels flat": ({"json": {"pixels": [0.0] * 784}}, 422, "pixels"),
        "pixels NaN": ({"content": nan, "headers": j}, 422, "NaN"),
        "pixels infinity": ({"content": inf, "headers": j}, 422, "NaN or infinity"),
        "pixels 0..255": ({"json": {"pixels": [[255.0] * 28] * 28}}, 422, "[0, 1]"),
        "pixels strings": ({"json": {"pixels": [["a"] * 28] * 28}}, 422, "pixels"),
        "text/plain": ({"content": b"7", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
        "no content-type": ({"content": b"7"}, 415, "Content-Type"),
        "body over 10 MB": ({"content": b"0" * (10 * 2**20 + 1), "headers": j}, 413, "limit"),
        "chunked over 10 MB": ({"content": iter([b"0" * 2**16] * 161), "headers": j}, 413, "limit"),
    }


@pytest.fixture(scope="module")
def bad_cases(drawings):
    return bad_requests(drawings[0][1])


@pytest.mark.parametrize("name", list(bad_requests(png(Image.new("L", (8, 8))))))
def test_client_mistakes_are_4xx_json_and_the_server_stays_healthy(client, bad_cases, name):
    kwargs, status, phrase = bad_cases[name]
    assert_client_error(client, client.post("/api/predict", **kwargs), status, phrase)


def assert_client_error(client: httpx.Client, r: httpx.Response, status: int, phrase: str) -> None:
    """A 4xx with a readable JSON `detail` that says what was wrong, and a server that still answers."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    if phrase == TRUNCATED:
        assert "truncated" in detail or "not a readable" in detail or "decoded" in detail, detail
    else:
        assert phrase in detail, detail
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        ({"images": []}, 422, "empty"),
        ({"images": ["x"] * 257}, 413, "at most 256 images"),
        ({"images": [42]}, 422, "images[0]"),
        ({"images": [{"pixels": [[0.0] * 28] * 28}, {"pixels": [[2.0] * 28] * 28}]}, 422, "images[1]"),
        ({"images": ["%%%"]}, 400, "images[0] is not valid base64"),
        ({"pictures": []}, 422, "images"),
    ],
)
def test_batch_mistakes_name_the_bad_item(client, body, status, phrase):
    r = client.post("/api/predict/batch", json=body)
    assert r.status_code == status, r.text
    assert phrase in r.json()["detail"]


def test_too_many_multipart_files_is_413(client):
    for n in (257, 300):
        r = client.post("/api/predict/batch", files=[("files", ("a.png", b"x"))] * n)
        assert r.status_code == 413 and "at most 256 images" in r.json()["detail"]
    for n in (2, 5):
        r = client.post("/api/predict", files=[("file", ("a.png", b"x"))] * n)
        assert r.status_code == 413 and "/api/predict/batch" in r.json()["detail"]


def test_oversized_content_length_is_refused_before_the_body_is_sent(server):
    """A client announcing 100 MB gets 413 at once, without the server waiting for (or reading) it."""
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n{"
        )
        started = time.monotonic()
        reply = b""
        while chunk := s.recv(4096):  # the server answers, then closes the connection
            reply += chunk
        assert time.monotonic() - started < 5
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert b'"detail"' in reply


def test_model_health_and_readiness(client):
    info = client.get("/api/model").json()
    bundled = load_model()
    assert info["name"] == bundled.name and info["version"] == bundled.version
    assert info["sha256"] == bundled.sha256 and info["test_accuracy"] == bundled.test_accuracy
    assert info["input"]["shape"][1:] == [1, 28, 28] and set(info["formats"]) == {
        "PNG",
        "JPEG",
        "WebP",
        "BMP",
        "GIF",
    }
    assert info["limits"] == {"max_body_bytes": 10 * 2**20, "max_image_pixels": 4096 * 4096, "max_batch": 256,
                              "max_batch_pixels": 32 * 2**20}
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/predict/batch", "/api/model", "/healthz", "/readyz"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_page_is_served_with_local_assets_only(client):
    html = client.get("/").text
    assert '<canvas id="canvas"' in html and 'id="probabilities"' in html
    # A later CSP forbids inline code: every script has a src, no inline handlers or style attributes.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=|\sstyle=", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text


def test_parallel_requests_all_succeed(client, drawings):
    def one(i: int) -> int:
        d, data = drawings[i % 10]
        return client.post("/api/predict", files={"file": ("d.png", data)}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(32))) == {200}


def test_serve_command_with_two_workers(drawings):
    """`digitrec serve --workers 2` hands the model to worker processes through the environment."""
    port = free_port()
    cmd = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        r = httpx.post(f"{url}/api/predict", files={"file": ("d.png", drawings[1][1])}, timeout=30)
        assert r.status_code == 200 and r.json()["model"].startswith(load_model().name)
    finally:
        stop(proc)


def test_serve_command_refuses_a_missing_model(tmp_path):
    cmd = [sys.executable, "-m", "digitrec", "serve", "--model", str(tmp_path / "none.onnx")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_limits_are_configurable(drawings):
    """Settings come from the environment (DIGITREC_MAX_*), which is also how worker processes get them."""
    env = {"DIGITREC_MAX_BODY_BYTES": "20000", "DIGITREC_MAX_IMAGE_PIXELS": "10000"}
    env |= {"DIGITREC_MAX_BATCH": "2", "DIGITREC_MAX_BATCH_PIXELS": "10000"}
    with live_server(env) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/model").json()["limits"] == {
            "max_body_bytes": 20000,
            "max_image_pixels": 10000,
            "max_batch": 2,
            "max_batch_pixels": 10000,
        }
        small = png(Image.open(io.BytesIO(drawings[2][1])).resize((90, 90)))  # 8100 pixels: allowed
        assert c.post("/api/predict", files={"file": ("d.png", small)}).status_code == 200
        r = c.post("/api/predict", files={"file": ("d.png", drawings[2][1])})  # 280x280
        assert r.status_code == 413 and "10,000 pixels" in r.json()["detail"]
        r = c.post("/api/predict", content=b"0" * 20001, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "19.5 KiB" in r.json()["detail"]
        r = c.post("/api/predict/batch", json={"images": [{"pixels": [[0.0] * 28] * 28}] * 3})
        assert r.status_code == 413 and "at most 2" in r.json()["detail"]
        r = c.post("/api/predict/batch", files=[("files", ("d.png", small)), ("files", ("d.png", small))])
        assert r.status_code == 413 and "16,200 pixels, over the limit of 10,000" in r.json()["detail"]
        r = c.post("/api/predict/batch", files=[("files", ("d.png", small))])
        assert r.status_code == 200


def test_openapi_docs_work_offline_from_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert client.get(asset).status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_box_points_at_the_digit_in_the_sent_image_even_when_exif_rotates_it(client):
    """A 4 drawn at a known place on a wide sheet: the box is its ink, in the sent image's pixels; the same
    sheet saved rotated with an EXIF orientation tag (as phones do) gives the box in the upright picture."""
    rng = np.random.default_rng(3)
    digit = render(4, rng, "canvas", size=200)
    sheet = Image.new("L", (900, 500), 255)
    sheet.paste(digit, (550, 180))
    ink = np.argwhere(np.asarray(sheet) < 128)
    (y0, x0), (y1, x1) = ink.min(0), ink.max(0)
    r = client.post("/api/predict", files={"file": ("s.png", png(sheet), "image/png")})
    body = r.json()
    check_answer(body)
    assert body["digit"] == 4
    x, y, w, h = body["box"]
    assert abs(x - x0) <= 6 and abs(y - y0) <= 6 and abs(x + w - x1) <= 6 and abs(y + h - y1) <= 6
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": stored sideways
    stored = sheet.transpose(Image.Transpose.ROTATE_90)
    rotated = client.post("/api/predict", files={"file": ("s.jpg", png(stored, "JPEG", quality=95, exif=exif),
                                                          "image/jpeg")}).json()
    assert rotated["digit"] == 4
    assert np.abs(np.subtract(rotated["box"], body["box"])).max() <= 8

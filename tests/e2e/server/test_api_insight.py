"""POST /api/predict/number and POST /api/explain against a real uvicorn server, plus the calibrated "no digit"
answers of /api/predict: numbers read with their boxes, saliency on the ink, and every client mistake a 4xx
JSON `{"detail": ...}` after which the server still answers."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.testing.handwriting import draw_number
from digitrec.testing.servers import live_server
from digitrec.training.synth import render
from tests.e2e.server.test_api import assert_client_error, b64, bad_requests, png


@pytest.fixture(scope="module")
def client():
    with live_server() as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


NUMBERS = [("2024", 1), ("31415", 2), ("7", 3), ("86", 4)]


@pytest.mark.parametrize(("number", "seed"), NUMBERS)
def test_number_is_read_with_one_box_per_digit_left_to_right(client, number, seed):
    im = draw_number(number, seed)
    data = png(im)
    r = client.post("/api/predict/number", files={"file": ("n.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"number", "digits", "confidence"}
    assert body["number"] == number
    assert "".join(str(d["digit"]) for d in body["digits"]) == number
    xs = [d["box"][0] for d in body["digits"]]
    assert xs == sorted(xs)
    for d in body["digits"]:
        x, y, w, h = d["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= im.width and y + h <= im.height
        assert abs(sum(d["probabilities"]) - 1) < 1e-4 and d["probabilities"][d["digit"]] == d["confidence"]
        x28 = np.asarray(d["input"])  # what the model saw for this digit, for the page to show
        assert x28.shape == (28, 28) and x28.min() >= 0 and x28.max() == pytest.approx(1, abs=1e-3)
    assert body["confidence"] == pytest.approx(math.prod(d["confidence"] for d in body["digits"]), abs=1e-5)
    # The same image as a JSON data URL gives the same answer.
    r2 = client.post("/api/predict/number", json={"image": "data:image/png;base64," + b64(data)})
    assert r2.status_code == 200 and r2.json() == body


def test_blank_number_is_empty(client):
    r = client.post("/api/predict/number", files={"file": ("b.png", png(Image.new("L", (600, 200), 255)))})
    assert r.status_code == 200, r.text
    assert r.json() == {"number": "", "digits": [], "confidence": 0.0}


def test_explain_gives_saliency_on_the_ink_of_the_predicted_digit(client):
    rng = np.random.default_rng(5)
    for digit in (3, 7):
        data = png(render(digit, rng, "canvas"))
        predicted = client.post("/api/predict", files={"file": ("d.png", data)}).json()
        r = client.post("/api/explain", files={"file": ("d.png", data)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"digit", "confidence", "reason", "saliency", "input"}
        assert body["digit"] == predicted["digit"] == digit and body["reason"] is None
        assert body["confidence"] == pytest.approx(predicted["confidence"], abs=1e-5)
        sal, x = np.asarray(body["saliency"]), np.asarray(body["input"])
        assert sal.shape == (28, 28) and sal.min() >= 0 and sal.max() == pytest.approx(1.0)
        assert np.allclose(x, predicted["input"], atol=1e-3)
        # What mattered lies on and around the strokes, not in the empty corners.
        near_ink = np.asarray(Image.fromarray(np.uint8(x > 0.3) * 255).resize((28, 28))) > 0
        assert sal[near_ink].mean() > 3 * sal[~near_ink].mean()


def test_explain_pixels_and_blank(client):
    blank = client.post("/api/explain", json={"pixels": [[0.0] * 28] * 28})
    assert blank.status_code == 200, blank.text
    assert blank.json()["digit"] is None and blank.json()["reason"] == "blank"
    assert np.asarray(blank.json()["saliency"]).shape == (28, 28) and blank.json()["input"] is None
    one = np.zeros((28, 28))
    one[4:24, 13:16] = 1.0  # a vertical bar: a 1
    r = client.post("/api/explain", json={"pixels": one.tolist()})
    assert r.status_code == 200 and r.json()["digit"] == 1
    assert np.asarray(r.json()["saliency"])[4:24, 12:17].mean() > np.asarray(r.json()["saliency"]).mean()


def test_noise_is_refused_as_not_digit_like_with_what_the_model_saw(client):
    noise = Image.new("L", (280, 280), 255)  # 16 dots: far more ink pieces than any digit has
    draw = ImageDraw.Draw(noise)
    for i in range(16):
        x, y = 30 + 60 * (i % 4), 30 + 60 * (i // 4)
        draw.ellipse((x, y, x + 20, y + 20), fill=0)
    r = client.post("/api/predict", files={"file": ("n.png", png(noise))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["digit"] is None and body["reason"] == "not_digit_like"
    assert np.asarray(body["input"]).shape == (28, 28) and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert client.post("/api/explain", files={"file": ("n.png", png(noise))}).json()["reason"] == "not_digit_like"


def test_pixels_are_not_a_number(client):
    r = client.post("/api/predict/number", json={"pixels": [[0.0] * 28] * 28})
    assert r.status_code == 422 and "whole image" in r.json()["detail"]


NUMBER_PNG = png(draw_number("42", 0))


@pytest.mark.parametrize("name", list(bad_requests(NUMBER_PNG)))
@pytest.mark.parametrize("endpoint", ["/api/predict/number", "/api/explain"])
def test_client_mistakes_are_4xx_json(client, endpoint, name):
    kwargs, status, phrase = bad_requests(NUMBER_PNG)[name]  # fresh: a chunked body is read only once
    assert_client_error(client, client.post(endpoint, **kwargs), status, phrase)


def test_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/predict/number", "/api/explain"):
        assert "multipart/form-data" in paths[path]["post"]["requestBody"]["content"]
        assert "422" in paths[path]["post"]["responses"]

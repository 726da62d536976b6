"""The request-reading fast paths of web/inputs.py and routes/predict.py: an upload opened once for its header
check decodes exactly as its bytes do, and one small image is answered on the event loop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitrec.inference.images import Header, ImageError, open_image
from digitrec.inference.preprocess import to_mnist
from digitrec.training.synth import render


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    (im.convert("RGB") if fmt == "JPEG" else im).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_an_opened_header_decodes_as_its_bytes(fmt: str):
    rng = np.random.default_rng(0)
    for im in (render(3, rng, "canvas", size=280), render(5, rng, "photo", size=900).convert("RGB")):
        data = _encode(im, fmt)
        header = Header(Image.open(io.BytesIO(data)))  # what inputs.check_image hands on
        a, b = open_image(data, draft=(384, 384)), open_image(header, draft=(384, 384))
        assert (a.mode, a.size) == (b.mode, b.size) and np.array_equal(np.asarray(a), np.asarray(b))
        assert np.array_equal(to_mnist(data), to_mnist(Header(Image.open(io.BytesIO(data)))))
    cut = _encode(render(1, rng, "canvas", size=280), fmt)[:150]
    with pytest.raises(ImageError) as from_bytes:
        open_image(cut)
    try:
        header = Header(Image.open(io.BytesIO(cut)))
    except Exception:
        return  # cut inside the header: the web layer refuses it before decoding
    with pytest.raises(ImageError) as from_header:
        open_image(header)
    assert str(from_header.value) == str(from_bytes.value)


def test_one_small_image_is_answered_on_the_event_loop_a_big_one_on_the_thread_pool(monkeypatch):
    from fastapi.testclient import TestClient

    from digitrec.web.app import create_app
    from digitrec.web.routes import predict as routes
    from digitrec.web.settings import ServeSettings

    hops = []
    real = routes.run_in_threadpool

    async def counting(fn, *args, **kwargs):
        hops.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(routes, "run_in_threadpool", counting)
    canvas = render(7, np.random.default_rng(0), "canvas", size=280)
    with TestClient(create_app(settings=ServeSettings(db="off"))) as client:
        small = client.post("/api/predict", files={"file": ("d.png", _encode(canvas, "PNG"))})
        assert small.status_code == 200 and hops == []
        big = client.post("/api/predict", files={"file": ("d.png", _encode(canvas.resize((800, 800)), "PNG"))})
        assert big.status_code == 200 and hops == ["_predict_one"]
        assert big.json()["digit"] == small.json()["digit"] == 7
        bad = client.post("/api/predict", files={"file": ("d.png", _encode(canvas, "PNG")[:100])})
        assert bad.status_code == 400 and hops == ["_predict_one"]  # refused on the loop, from the header

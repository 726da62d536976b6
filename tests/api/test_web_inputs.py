"""The request-reading fast paths of web/inputs.py, against what they replace: the multipart reader answers
exactly as starlette's form parser did (same parts, same 4xx and messages, on valid and damaged bodies), and
an upload opened once for its header check decodes exactly as its bytes do."""

from __future__ import annotations

import asyncio
import io
import random

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from digitrec.inference.images import Header, ImageError, open_image
from digitrec.inference.preprocess import to_mnist
from digitrec.training.synth import render
from digitrec.web import inputs


def _request(body: bytes, content_type: str) -> Request:
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode("latin-1"))]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b"",
                    "app": object()}, receive)


async def _starlette_uploads(request: Request, field: str, limit: int) -> list[inputs.Item]:
    """inputs._uploads as it was, on starlette's Request.form()."""
    too_many = f"send at most {limit} images in one request" + (
        "; use /api/predict/batch for several." if limit == 1 else "."
    )
    try:
        form = await request.form(max_files=limit + 1, max_fields=limit + 10)
    except HTTPException as exc:
        if exc.status_code == 400 and "Too many files" in str(exc.detail):
            raise HTTPException(413, too_many) from exc
        raise
    try:
        values = form.getlist(field)
        if not values:
            raise HTTPException(422, f"the multipart body has no '{field}' field; put the image(s) there.")
        items = []
        for i, value in enumerate(values):
            where = field if len(values) == 1 and field == "file" else f"{field}[{i}]"
            if not isinstance(value, UploadFile):
                raise HTTPException(422, f"{where} must be a file upload, not a text field.")
            items.append(inputs.Item(where, data=await value.read()))
        return items
    finally:
        await form.close()


def _outcome(read, body: bytes, content_type: str, field: str, limit: int):
    try:
        items = asyncio.run(read(_request(body, content_type), field, limit))
    except HTTPException as exc:
        return exc.status_code, exc.detail
    return [(item.where, item.data) for item in items]


def _bodies():
    rng = random.Random(0)
    for n_files in range(5):
        for n_text in range(3):
            files = [(rng.choice(["file", "files", "other"]),
                      (f"a{i}.png", rng.randbytes(rng.randrange(50)), "image/png")) for i in range(n_files)]
            data = {f"t{j}": "x" * rng.randrange(5) for j in range(n_text)}
            if rng.random() < 0.3:
                data["file"] = "text, not a file"
            if files:
                r = httpx.Request("POST", "http://x/", files=files, data=data or None)
                yield r.read(), r.headers["content-type"]
    r = httpx.Request("POST", "http://x/", files={"file": ("d.png", b"\x89PNG" + bytes(range(256)))})
    body, ctype = r.read(), r.headers["content-type"]
    yield body, ctype
    yield body, "multipart/form-data"  # no boundary
    yield body, ctype + "; charset=latin-1"
    yield body, ctype + "; charset=no-such-codec"
    yield body[: len(body) // 2], ctype
    yield body.replace(b'name="file"; ', b""), ctype  # no name
    yield body.replace(b"Content-Disposition", b"X-Other"), ctype
    yield b"", ctype
    yield body.replace(b"\r\n", b"\n"), ctype
    for _ in range(150):  # damaged bodies
        damaged = bytearray(body)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(damaged))
            op = rng.random()
            if op < 0.4:
                damaged[i] = rng.randrange(256)
            elif op < 0.7:
                del damaged[i : i + rng.randrange(1, 10)]
            else:
                damaged[i:i] = rng.randbytes(rng.randrange(1, 5))
        yield bytes(damaged), ctype
    big = httpx.Request("POST", "http://x/", data={"t": "y" * (1024 * 1024 + 1)}, files={"file": ("a", b"x")})
    yield big.read(), big.headers["content-type"]  # a text part over starlette's 1 MiB
    many = httpx.Request("POST", "http://x/", data={f"t{i}": "1" for i in range(20)}, files={"file": ("a", b"x")})
    yield many.read(), many.headers["content-type"]


def test_multipart_reader_answers_as_starlettes_form_parser():
    cases = 0
    for body, ctype in _bodies():
        for field, limit in (("file", 1), ("files", 3)):
            expected = _outcome(_starlette_uploads, body, ctype, field, limit)
            assert _outcome(inputs._uploads, body, ctype, field, limit) == expected, (body[:200], ctype)
            cases += 1
    assert cases > 300


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

    from digitrec.web import routes
    from digitrec.web.app import create_app
    from digitrec.web.production import ServeOptions

    hops = []
    real = routes.run_in_threadpool

    async def counting(fn, *args, **kwargs):
        hops.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(routes, "run_in_threadpool", counting)
    canvas = render(7, np.random.default_rng(0), "canvas", size=280)
    with TestClient(create_app(options=ServeOptions(db="off"))) as client:
        small = client.post("/api/predict", files={"file": ("d.png", _encode(canvas, "PNG"))})
        assert small.status_code == 200 and hops == []
        big = client.post("/api/predict", files={"file": ("d.png", _encode(canvas.resize((800, 800)), "PNG"))})
        assert big.status_code == 200 and hops == ["_predict_one"]
        assert big.json()["digit"] == small.json()["digit"] == 7
        bad = client.post("/api/predict", files={"file": ("d.png", _encode(canvas, "PNG")[:100])})
        assert bad.status_code == 400 and hops == ["_predict_one"]  # refused on the loop, from the header

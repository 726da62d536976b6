"""Request bodies -> MNIST-form images: multipart or JSON, base64 or pixels, checked before decoding.

Bodies are read by async FastAPI dependencies (`single_body`, `batch_body`, chosen by Content-Type), which
do no CPU work; `to_model_input` decodes and preprocesses, and runs inside the plain `def` routes, i.e. on the
thread pool. Every mistake a client can make raises an HTTPException with a 4xx status and one sentence.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitrec.errors import DigitrecError
from digitrec.web.app import Settings
from digitrec.web.schemas import ImageIn, PixelsIn, PredictIn

log = logging.getLogger("digitrec.web")

# Pillow's names for the formats we accept (MPO is how Pillow sees many phone-camera JPEGs).
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "BMP": "BMP", "GIF": "GIF"}
FORMATS_TEXT = "PNG, JPEG, WebP, BMP or GIF"
# Pixels sent as MNIST arrays skip preprocessing, so they get their own "is anything drawn?" test:
# fewer than this many clearly-inked pixels is blank, reported as no digit rather than guessed.
MIN_INK_PIXELS = 4
INK_LEVEL = 0.25
T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """One image from a request: encoded bytes, or an MNIST-form array. `where` names it in errors."""

    where: str
    data: bytes | None = None
    pixels: np.ndarray | None = None


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


# -- reading bodies -------------------------------------------------------------------------------------


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported_media(ctype: str, field: str) -> HTTPException:
    got = f"Content-Type {ctype!r}" if ctype else "no Content-Type"
    return HTTPException(
        415,
        f"got {got}; send multipart/form-data with a '{field}' field, or application/json "
        "(see /docs for the JSON forms).",
    )


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        raise HTTPException(400, "the request body is empty; send a JSON object.")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not valid JSON ({exc}).") from exc


async def _uploads(request: Request, field: str, limit: int) -> list[Item]:
    """The uploads in `field` of a multipart body; more than `limit` files is a 413."""
    too_many = f"send at most {limit} images in one request" + (
        "; use /api/predict/batch for several." if limit == 1 else "."
    )
    try:
        # One file over the limit may be parsed, so that the count check below gives the answer.
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
            items.append(Item(where, data=await value.read()))
        return items
    finally:
        await form.close()


def _decode_base64(text: str, where: str) -> bytes:
    s = text.strip()
    if s.startswith("data:"):
        head, sep, s = s.partition(",")
        if not sep or not head.endswith(";base64"):
            raise HTTPException(400, f"{where}: a data URL must be base64 (data:image/png;base64,...).")
    s = "".join(s.split()).replace("-", "+").replace("_", "/")  # tolerate line breaks and URL-safe base64
    s += "=" * (-len(s) % 4)
    try:
        data = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(400, f"{where} is not valid base64.") from exc
    return data


def _pixels(raw: Any, where: str) -> np.ndarray:
    try:
        rows = PixelsIn.model_validate(raw).pixels
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise HTTPException(422, f"{where}: {msg}.") from exc
    return np.asarray(rows, dtype=np.float32)


async def single_body(request: Request) -> Item:
    """POST /api/predict: multipart `file`, or JSON {"image": ...} / {"pixels": ...}."""
    ctype = _content_type(request)
    if ctype == "multipart/form-data":
        items = await _uploads(request, "file", limit=1)
        if len(items) != 1:
            raise HTTPException(413, "send one 'file'; use /api/predict/batch for several images.")
        return items[0]
    if ctype == "application/json" or ctype.endswith("+json"):
        raw = await _json(request)
        try:
            body = PredictIn.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc
        if body.pixels is not None:
            return Item("pixels", pixels=_pixels({"pixels": body.pixels}, "pixels"))
        return Item("image", data=_decode_base64(body.image or "", "image"))
    raise _unsupported_media(ctype, "file")


async def batch_body(request: Request) -> list[Item]:
    """POST /api/predict/batch: multipart `files` (repeated), or JSON {"images": [...]}; each JSON item is
    a base64/data-URL string, {"image": ...} or {"pixels": ...}."""
    limit = settings_of(request).max_batch
    ctype = _content_type(request)
    if ctype == "multipart/form-data":
        items = await _uploads(request, "files", limit=limit)
    elif ctype == "application/json" or ctype.endswith("+json"):
        raw = await _json(request)
        if not isinstance(raw, dict) or set(raw) != {"images"} or not isinstance(raw["images"], list):
            raise HTTPException(422, 'send a JSON object {"images": [...]} and nothing else.')
        if len(raw["images"]) > limit:
            n = len(raw["images"])
            raise HTTPException(413, f"send at most {limit} images in one request, got {n}.")
        items = []
        for i, entry in enumerate(raw["images"]):
            where = f"images[{i}]"
            if isinstance(entry, str):
                items.append(Item(where, data=_decode_base64(entry, where)))
            elif isinstance(entry, dict) and "pixels" in entry:
                items.append(Item(where, pixels=_pixels(entry, where)))
            elif isinstance(entry, dict) and "image" in entry:
                try:
                    text = ImageIn.model_validate(entry).image
                except ValidationError as exc:
                    raise HTTPException(422, f"{where}: 'image' must be a base64 string, alone.") from exc
                items.append(Item(where, data=_decode_base64(text, where)))
            else:
                raise HTTPException(
                    422, f'{where} must be a base64 string, {{"image": "..."}} or {{"pixels": [[...]]}}.'
                )
    else:
        raise _unsupported_media(ctype, "files")
    if not items:
        raise HTTPException(422, "the batch is empty; send at least one image.")
    if len(items) > limit:
        raise HTTPException(413, f"send at most {limit} images in one request, got {len(items)}.")
    return items


# -- decoding -------------------------------------------------------------------------------------------


def to_model_input(item: Item, settings: Settings) -> np.ndarray | None:
    """One item -> the (28, 28) MNIST-form image the model will see, or None when blank."""
    if item.pixels is not None:
        return None if int((item.pixels > INK_LEVEL).sum()) < MIN_INK_PIXELS else item.pixels
    from digitrec.preprocess import to_mnist

    return decode(item, settings, to_mnist)


def decode(item: Item, settings: Settings, read: Callable[..., T]) -> T:
    """Check an encoded item's header, then `read(data, max_pixels=...)` it (to_mnist, read_number, ...),
    turning any decoder failure into a 400."""
    data = check_image(item, settings)
    try:
        return read(data, max_pixels=settings.max_image_pixels)
    except DigitrecError as exc:
        raise HTTPException(400, f"{item.where}: {exc}") from exc
    except Exception as exc:
        # Untrusted bytes reach Pillow's decoders, which can fail in surprising ways on crafted files; the
        # client gets a 4xx and we keep the traceback in the log.
        log.warning("could not decode %s", item.where, exc_info=True)
        detail = f"{item.where} could not be decoded as an image ({type(exc).__name__})."
        raise HTTPException(400, detail) from exc


def check_image(item: Item, settings: Settings) -> bytes:
    """An encoded item's bytes, once its header says it is an accepted format within the pixel limit (no
    pixel decoded yet). Every route that decodes an upload goes through here first."""
    data = item.data or b""
    if not data:
        raise HTTPException(400, f"{item.where} is empty; send a {FORMATS_TEXT} image.")
    # Image.open reads only the header: format and size are known before any pixel is decoded, so a
    # decompression bomb (a tiny PNG claiming 100k x 100k pixels) is refused without costing memory.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = im.format, im.size
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"{item.where} has too many pixels; the limit is 4096×4096.") from exc
    except Exception as exc:  # Pillow raises many types on garbage (OSError, SyntaxError, ValueError, ...)
        raise HTTPException(400, f"{item.where} is not a readable {FORMATS_TEXT} image.") from exc
    if fmt not in FORMATS:
        raise HTTPException(415, f"{item.where} is a {fmt} image; send {FORMATS_TEXT}.")
    if width * height > settings.max_image_pixels:
        raise HTTPException(
            413,
            f"{item.where} is {width}×{height} pixels, over the limit of {settings.max_image_pixels:,} "
            "pixels; send a smaller image.",
        )
    return data

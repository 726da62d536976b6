"""Request bodies -> MNIST-form images: multipart or JSON, base64 or pixels, checked before decoding.

Bodies are read by async functions (`single_body`, `batch_body`, chosen by Content-Type; FastAPI dependencies
or called by the route), which do no CPU work beyond parsing; `to_model_input` decodes and preprocesses, and
runs inside the plain `def` routes, i.e. on the thread pool (or on the event loop for one small image:
routes/predict.py, INLINE_MAX_PIXELS). Every mistake a client can make raises an HTTPException with a 4xx
status and one sentence.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitrec.errors import DigitrecError
from digitrec.inference.images import FORMATS_TEXT, Header, ImageError, ImageTooLarge, UnsupportedImage, read_header
from digitrec.web.deps import SettingsDep
from digitrec.web.schemas import ImageIn, PixelsIn, PredictIn
from digitrec.web.settings import ServeSettings

log = logging.getLogger("digitrec.web")

# The formats we accept, as /api/model lists them (images.PILLOW_FORMATS are Pillow's names for them).
FORMATS = ("BMP", "GIF", "JPEG", "PNG", "WebP")
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
    header: Header | None = None  # set by `checked`: `data` opened, format and size accepted


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
    """The uploads in `field` of a multipart body; more than `limit` files is a 413.

    Starlette's form parser (python-multipart) rather than the private parser over the body in memory that
    was here: that one saved about 0.03 ms on a multipart canvas request (the app called in process, best
    batch of 25, three runs each while other jobs loaded the machine: 0.52-0.59 ms over the preprocessing and
    inference with it, 0.57-0.61 ms with request.form()), which is not worth a parser of our own to keep in
    step with Starlette's. The page sends JSON, whose latency is the goal (benchmarks/serve_latency.py)."""
    too_many = f"send at most {limit} images in one request" + (
        "; use /api/predict/batch for several." if limit == 1 else "."
    )
    try:
        # One file over the limit may be parsed, so that the count check of the caller gives the answer.
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


async def batch_body(request: Request, settings: SettingsDep) -> list[Item]:
    """POST /api/predict/batch: multipart `files` (repeated), or JSON {"images": [...]}; each JSON item is
    a base64/data-URL string, {"image": ...} or {"pixels": ...}."""
    limit = settings.max_batch
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


def to_model_input(item: Item, settings: ServeSettings) -> np.ndarray | None:
    """One item -> the (28, 28) MNIST-form image the model will see, or None when blank."""
    if item.pixels is not None:
        return None if int((item.pixels > INK_LEVEL).sum()) < MIN_INK_PIXELS else item.pixels
    from digitrec.inference.preprocess import to_mnist

    return decode(item, settings, to_mnist)


def decode(item: Item, settings: ServeSettings, read: Callable[..., T]) -> T:
    """Check an encoded item's header, then `read(header, max_pixels=...)` it (to_mnist, read_number, ...:
    anything that decodes through images.open_image), turning any decoder failure into a 400."""
    header = item.header or check_image(item, settings)
    try:
        return read(header, max_pixels=settings.max_image_pixels)
    except DigitrecError as exc:
        raise HTTPException(400, f"{item.where}: {exc}") from exc
    except Exception as exc:
        # Untrusted bytes reach Pillow's decoders, which can fail in surprising ways on crafted files; the
        # client gets a 4xx and we keep the traceback in the log.
        log.warning("could not decode %s", item.where, exc_info=True)
        detail = f"{item.where} could not be decoded as an image ({type(exc).__name__})."
        raise HTTPException(400, detail) from exc
    finally:
        header.image.close()  # the decoded pixels go now, not when the request ends (a batch holds many)


def checked(item: Item, settings: ServeSettings) -> Item:
    """The item with its header checked (`check_image`) and kept, for a caller that wants the image's size
    before decoding it; pixels pass as they are."""
    if item.pixels is not None or item.header is not None:
        return item
    return replace(item, header=check_image(item, settings))


def check_image(item: Item, settings: ServeSettings) -> Header:
    """An encoded item, opened, once its header says it is an accepted format within the pixel limit and
    cheap to decode (images.read_header; no pixel decoded yet: images.open_image decodes the Header as it
    would the bytes, without parsing the file a second time). Every route that decodes an upload goes
    through here first."""
    data = item.data or b""
    if not data:
        raise HTTPException(400, f"{item.where} is empty; send a {FORMATS_TEXT} image.")
    try:
        header = read_header(data, max_pixels=settings.max_image_pixels)
    except ImageTooLarge as exc:
        size = f"{exc.size[0]}×{exc.size[1]}" if exc.size else "too many"
        raise HTTPException(
            413,
            f"{item.where} is {size} pixels, over the limit of {settings.max_image_pixels:,} pixels; send a "
            "smaller image.",
        ) from exc
    except UnsupportedImage as exc:
        raise HTTPException(415, f"{item.where}: {exc}") from exc
    except ImageError as exc:
        raise HTTPException(400, f"{item.where} is not a readable {FORMATS_TEXT} image.") from exc
    return header

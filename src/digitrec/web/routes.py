"""HTTP routes: the JSON API (one router) and the drawing page (another).

Bodies are read by async dependencies (see inputs.py); decoding, preprocessing and inference are CPU-bound
and run in plain `def` routes, i.e. on the thread pool, off the event loop, except for one small image sent
to /api/predict (see INLINE_MAX_PIXELS). Every mistake a client can make ends as a 4xx JSON
`{"detail": "..."}`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digitrec.inference.predictor import Prediction, Predictor
from digitrec.inference.preprocess import locate
from digitrec.web.inputs import (
    FORMATS,
    Item,
    batch_body,
    checked,
    decode,
    settings_of,
    single_body,
    to_model_input,
)
from digitrec.web.schemas import (
    BatchOut,
    HealthOut,
    ImageIn,
    LimitsOut,
    ModelOut,
    PixelsIn,
    PredictIn,
    PredictionOut,
    ReadyOut,
    error_responses,
)
from digitrec.web.settings import STATIC_DIR

log = logging.getLogger("digitrec.web")
api_router = APIRouter()
page_router = APIRouter()
# /api/predict answers one small image on the event loop: at most INLINE_MAX_BYTES encoded (the page sends a
# 280x280 PNG of a few KB; 28x28 `pixels` always qualify), whose header then says at most INLINE_MAX_PIXELS:
# ~0.8 ms of work for a drawing, ~9 ms for the worst 320x320 content measured (noise as a PNG). The hop to the
# thread pool and back costs two thread wake-ups, which on a 2-vCPU VM made a canvas answer 2.2 ms instead of
# 1.8 (benchmarks/serve_latency.py), and under 32 concurrent clients gave 310 req/s instead of 490
# (benchmarks/serve_load.py): the GIL serialises this work anyway. The header is parsed on the loop only for
# small bodies, and images.read_header refuses the costly encodings before decoding; anything bigger, header
# check included, goes to the thread pool, so the loop is never held for long (benchmarks/hostile.py).
INLINE_MAX_BYTES = 64 * 1024
INLINE_MAX_PIXELS = 320 * 320


def _predictor(request: Request) -> Predictor:
    choose = getattr(request.app.state, "choose_predictor", None)  # A/B routing (web/feedback.py)
    predictor = choose(request) if choose else request.app.state.predictor
    if predictor is None:
        raise HTTPException(503, "the model is not loaded yet; retry in a moment.")
    return predictor


def _answer(p: Prediction, model: str, box: tuple[int, int, int, int] | None = None) -> PredictionOut:
    # model_construct: every field is built here with its exact type, so pydantic's validation (a pass over
    # the 784 input values) would only check what this function guarantees. The JSON is the same bytes.
    return PredictionOut.model_construct(
        id=uuid.uuid4().hex,
        digit=p.digit,
        confidence=round(p.confidence, 6),
        probabilities=[round(v, 6) for v in p.probabilities],
        model=model,
        input=None if p.input is None else np.round(p.input, 3).tolist(),
        reason=p.reason,
        box=None if box is None or p.input is None else list(box),
    )


def _json_response(body: BatchOut | PredictionOut) -> Response:
    """Serialise with pydantic-core here, where the answer was made. Returning the model instead would make
    FastAPI validate it again (and, from a `def` route, serialise it in a second thread-pool hop)."""
    return Response(body.model_dump_json(), media_type="application/json")


def _run(items: list[Item], request: Request) -> list[PredictionOut]:
    predictor = _predictor(request)
    settings = settings_of(request)
    # Uploaded images are located (preprocess.locate: the 28x28 and the ink's box, from the same pass);
    # `pixels` are already 28x28 and have no box.
    found = [(to_model_input(item, settings), None) if item.pixels is not None else decode(item, settings, locate)
             for item in items]
    label = f"{predictor.name} {predictor.version}"
    predictions = predictor.predict_mnist([x for x, _ in found])
    answers = [_answer(p, label, box) for p, (_, box) in zip(predictions, found, strict=True)]
    for hook in getattr(request.app.state, "prediction_hooks", ()):  # metrics, feedback store
        hook(request, predictor, predictions, answers)
    return answers


# -- the API --------------------------------------------------------------------------------------------

ERRORS = error_responses(
    {
        400: "unreadable image, bad base64 or malformed JSON",
        413: "body, image or batch over the limits",
        415: "unsupported Content-Type or image format",
        422: "JSON of the wrong shape (e.g. pixels not 28×28 in [0, 1])",
    }
)
_FILE = {"type": "string", "format": "binary"}


def _body_doc(json_schema: dict[str, Any], multipart: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


_BATCH_JSON = {
    "type": "object",
    "required": ["images"],
    "properties": {
        "images": {
            "type": "array",
            "maxItems": 256,
            "items": {
                "anyOf": [{"type": "string"}, ImageIn.model_json_schema(), PixelsIn.model_json_schema()]
            },
        }
    },
}


@api_router.post(
    "/api/predict",
    response_model=PredictionOut,
    responses=ERRORS,
    summary="Recognise one digit",
    openapi_extra=_body_doc(
        PredictIn.model_json_schema(),
        {"type": "object", "required": ["file"], "properties": {"file": _FILE}},
    ),
)
async def predict(request: Request) -> Response:
    """One image: multipart field `file`, or JSON `{"image": base64 or data URL}` or `{"pixels": 28×28}`."""
    # The body is read here rather than through Depends(single_body): the same code without FastAPI's
    # dependency machinery, ~20 µs a request (the OpenAPI body is described by openapi_extra either way).
    item = await single_body(request)
    request.state.after_answer = after = []  # work the prediction hooks leave for after the answer
    if item.pixels is None and len(item.data or b"") <= INLINE_MAX_BYTES:
        item = checked(item, settings_of(request))  # the header only: no pixel decoded
    if item.pixels is not None or (item.header is not None and item.header.pixels <= INLINE_MAX_PIXELS):
        response = _predict_one(item, request)
    else:
        response = await run_in_threadpool(_predict_one, item, request)
    if after:
        response.background = BackgroundTask(_run_after, after)  # run by the response, once it is sent
    return response


async def _run_after(tasks: list[Callable[[], Awaitable[None]]]) -> None:
    for task in tasks:
        await task()


def _predict_one(item: Item, request: Request) -> Response:
    return _json_response(_run([item], request)[0])


@api_router.post(
    "/api/predict/batch",
    response_model=BatchOut,
    responses=ERRORS,
    summary="Recognise up to 256 digits in one call",
    openapi_extra=_body_doc(
        _BATCH_JSON,
        {"type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": _FILE}}},
    ),
)
def predict_batch(request: Request, items: list[Item] = Depends(batch_body)) -> Response:
    """Several images (multipart `files`, or JSON `{"images": [...]}`), answered in request order."""
    settings = settings_of(request)
    items = [checked(item, settings) for item in items]  # every header first: nothing decoded yet
    pixels = sum(item.header.pixels for item in items if item.header is not None)
    if pixels > settings.max_batch_pixels:
        raise HTTPException(
            413,
            f"the batch holds {pixels:,} pixels, over the limit of {settings.max_batch_pixels:,}; send fewer or "
            "smaller images.",
        )
    return _json_response(BatchOut(results=_run(items, request)))


@api_router.get("/api/model", response_model=ModelOut, summary="The model that answers, and the limits")
def model_info(request: Request) -> ModelOut:
    predictor, settings = _predictor(request), settings_of(request)
    return ModelOut(
        name=predictor.name,
        version=predictor.version,
        sha256=predictor.sha256,
        test_accuracy=predictor.test_accuracy,
        input=predictor.input_spec,
        formats=list(FORMATS),
        limits=LimitsOut(
            max_body_bytes=settings.max_body_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_batch=settings.max_batch,
            max_batch_pixels=settings.max_batch_pixels,
        ),
    )


@api_router.get("/healthz", response_model=HealthOut, summary="Liveness: the process answers")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@api_router.get(
    "/readyz",
    response_model=ReadyOut,
    responses=error_responses({503: "model not loaded or not answering"}),
    summary="Readiness: the model is loaded and answers a tiny inference",
)
def readyz(request: Request) -> ReadyOut | JSONResponse:
    predictor = request.app.state.predictor
    if predictor is None:
        return JSONResponse({"detail": "model not loaded"}, status_code=503)
    try:
        probs = predictor.predict_proba(np.zeros((1, 28, 28), np.float32))
        if probs.shape != (1, 10) or not np.isfinite(probs).all():
            raise RuntimeError(f"bad output {probs.shape}")
    except Exception as exc:  # readiness must report, not crash
        log.error("readiness inference failed: %s", exc)
        return JSONResponse({"detail": f"model is not answering: {exc}"}, status_code=503)
    return ReadyOut(status="ready", model=f"{predictor.name} {predictor.version}")


# -- the page -------------------------------------------------------------------------------------------


@page_router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

"""POST /api/predict and /api/predict/batch: one digit per image.

Bodies are read by inputs.py; decoding, preprocessing and inference are CPU-bound and run on the thread pool,
off the event loop, except for one small image sent to /api/predict (see INLINE_MAX_PIXELS). Every mistake a
client can make ends as a 4xx JSON `{"detail": "..."}`.
"""

from __future__ import annotations

import uuid

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digitrec.feedback.store import FeedbackStore
from digitrec.inference.predictor import Prediction, Predictor
from digitrec.inference.preprocess import locate
from digitrec.web.deps import (
    OptionalStoreDep,
    PredictorDep,
    SettingsDep,
    get_predictor,
    get_settings,
    get_store_or_none,
    label_of,
)
from digitrec.web.inputs import Item, batch_body, checked, decode, single_body, to_model_input
from digitrec.web.recording import Later, record_predictions
from digitrec.web.schemas import BatchOut, ImageIn, PixelsIn, PredictIn, PredictionOut, error_responses, image_body
from digitrec.web.settings import ServeSettings

router = APIRouter()
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
ERRORS = error_responses(
    {
        400: "unreadable image, bad base64 or malformed JSON",
        413: "body, image or batch over the limits",
        415: "unsupported Content-Type or image format",
        422: "JSON of the wrong shape (e.g. pixels not 28×28 in [0, 1])",
    }
)
# The JSON batch body, by hand: a pydantic model's schema would point at ImageIn and PixelsIn through $defs,
# which a request body inlined in the OpenAPI document cannot resolve. One bad item rejects the whole batch
# with its index in `detail` (inputs.batch_body).
_BATCH_JSON = {
    "type": "object",
    "required": ["images"],
    "properties": {
        "images": {
            "type": "array",
            "maxItems": 256,
            "items": {"anyOf": [{"type": "string"}, ImageIn.model_json_schema(), PixelsIn.model_json_schema()]},
        }
    },
}


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


def _run(items: list[Item], request: Request, predictor: Predictor, settings: ServeSettings,
         store: FeedbackStore | None, later: list[Later] | None = None) -> list[PredictionOut]:
    # Uploaded images are located (preprocess.locate: the 28x28 and the ink's box, from the same pass);
    # `pixels` are already 28x28 and have no box.
    found = [(to_model_input(item, settings), None) if item.pixels is not None else decode(item, settings, locate)
             for item in items]
    predictions = predictor.predict_mnist([x for x, _ in found])
    label = label_of(predictor)
    answers = [_answer(p, label, box) for p, (_, box) in zip(predictions, found, strict=True)]
    record_predictions(request, predictor, store, predictions, answers, later)
    return answers


@router.post(
    "/api/predict",
    response_model=PredictionOut,
    responses=ERRORS,
    summary="Recognise one digit",
    openapi_extra=image_body(PredictIn.model_json_schema()),
)
async def predict(request: Request) -> Response:
    """One image: multipart field `file`, or JSON `{"image": base64 or data URL}` or `{"pixels": 28×28}`."""
    # The dependencies and the body are read by calling deps.py and inputs.py here, not through Depends(): the
    # same functions (so the same A/B routing) without FastAPI's dependency machinery, which cost ~35 µs a
    # request for the three (best batch of 25, app called in process; the OpenAPI body is openapi_extra anyway).
    predictor, settings = await get_predictor(request), await get_settings(request)
    store = await get_store_or_none(request)
    item = await single_body(request)
    later: list[Later] = []  # the store write, for after the answer
    if item.pixels is None and len(item.data or b"") <= INLINE_MAX_BYTES:
        item = checked(item, settings)  # the header only: no pixel decoded
    args = (item, request, predictor, settings, store, later)
    if item.pixels is not None or (item.header is not None and item.header.pixels <= INLINE_MAX_PIXELS):
        response = _predict_one(*args)
    else:
        response = await run_in_threadpool(_predict_one, *args)
    if later:
        response.background = BackgroundTask(_run_after, later)  # run by the response, once it is sent
    return response


def _predict_one(item: Item, request: Request, predictor: Predictor, settings: ServeSettings,
                 store: FeedbackStore | None, later: list[Later]) -> Response:
    return _json_response(_run([item], request, predictor, settings, store, later)[0])


async def _run_after(tasks: list[Later]) -> None:
    for task in tasks:
        await task()


@router.post(
    "/api/predict/batch",
    response_model=BatchOut,
    responses=ERRORS,
    summary="Recognise up to 256 digits in one call",
    openapi_extra=image_body(_BATCH_JSON, field="files", many=True),
)
def predict_batch(request: Request, predictor: PredictorDep, settings: SettingsDep, store: OptionalStoreDep,
                  items: list[Item] = Depends(batch_body)) -> Response:
    """Several images (multipart `files`, or JSON `{"images": [...]}`), answered in request order."""
    items = [checked(item, settings) for item in items]  # every header first: nothing decoded yet
    pixels = sum(item.header.pixels for item in items if item.header is not None)
    if pixels > settings.max_batch_pixels:
        raise HTTPException(
            413,
            f"the batch holds {pixels:,} pixels, over the limit of {settings.max_batch_pixels:,}; send fewer or "
            "smaller images.",
        )
    return _json_response(BatchOut(results=_run(items, request, predictor, settings, store)))

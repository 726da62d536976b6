"""HTTP routes: the JSON API (one router) and the drawing page (another).

Bodies are read by async dependencies (see inputs.py); decoding, preprocessing and inference are CPU-bound
and run in plain `def` routes, i.e. on the thread pool, off the event loop. Every mistake a client can make
ends as a 4xx JSON `{"detail": "..."}`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from digitrec.predictor import Prediction, Predictor
from digitrec.web.app import STATIC_DIR
from digitrec.web.inputs import FORMATS, Item, batch_body, settings_of, single_body, to_model_input
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

log = logging.getLogger("digitrec.web")
api_router = APIRouter()
page_router = APIRouter()


def _predictor(request: Request) -> Predictor:
    choose = getattr(request.app.state, "choose_predictor", None)  # A/B routing (web/feedback.py)
    predictor = choose(request) if choose else request.app.state.predictor
    if predictor is None:
        raise HTTPException(503, "the model is not loaded yet; retry in a moment.")
    return predictor


def _answer(p: Prediction, model: str) -> PredictionOut:
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
    )


def _json_response(body: BatchOut | PredictionOut) -> Response:
    """Serialise with pydantic-core here, in the worker thread. Returning the model instead would make
    FastAPI validate it again and serialise it in a second thread-pool hop: ~0.3 ms of a ~2 ms request."""
    return Response(body.model_dump_json(), media_type="application/json")


def _run(items: list[Item], request: Request) -> list[PredictionOut]:
    predictor = _predictor(request)
    settings = settings_of(request)
    images = [to_model_input(item, settings) for item in items]
    label = f"{predictor.name} {predictor.version}"
    predictions = predictor.predict_mnist(images)
    answers = [_answer(p, label) for p in predictions]
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
def predict(request: Request, item: Item = Depends(single_body)) -> Response:
    """One image: multipart field `file`, or JSON `{"image": base64 or data URL}` or `{"pixels": 28×28}`."""
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
        formats=sorted(set(FORMATS.values())),
        limits=LimitsOut(
            max_body_bytes=settings.max_body_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_batch=settings.max_batch,
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

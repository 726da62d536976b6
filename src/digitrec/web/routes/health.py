"""Probes, the model's description and the drawing page: GET /healthz, /readyz, /api/model and /."""

from __future__ import annotations

import logging

import numpy as np
from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from digitrec.web.deps import ModelsDep, PredictorDep, SettingsDep
from digitrec.web.inputs import FORMATS
from digitrec.web.schemas import HealthOut, LimitsOut, ModelOut, ReadyOut, error_responses
from digitrec.web.settings import STATIC_DIR

log = logging.getLogger("digitrec.web")
router = APIRouter()
page_router = APIRouter()


@router.get("/api/model", response_model=ModelOut, summary="The model that answers, and the limits")
def model_info(predictor: PredictorDep, settings: SettingsDep) -> ModelOut:
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


@router.get("/healthz", response_model=HealthOut, summary="Liveness: the process answers")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses=error_responses({503: "model not loaded or not answering"}),
    summary="Readiness: the model is loaded and answers a tiny inference",
)
def readyz(models: ModelsDep) -> ReadyOut | JSONResponse:
    predictor = models.primary
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


@page_router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

"""Feedback, stats, admin and A/B routing: the routes and hooks behind the feedback store.

Every answered prediction goes to the store (id, time, model, the 28x28 input, digit, confidence) through
`record_predictions`, a hook routes.py calls; a database failure there is logged and counted, never turned
into a failed prediction. /api/predict has it written just after its answer is sent (`write_later`), so no
answer waits for a commit. Feedback and stats do need the database: 503 while it is down.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from digitrec.feedback.store import Record, StoreUnavailable, UnknownPrediction
from digitrec.web.model_paths import allowed_model_path
from digitrec.web.observability import STORE_ERRORS, observe_predictions, set_model_info
from digitrec.web.protection import require_admin
from digitrec.web.schemas import error_responses

log = logging.getLogger("digitrec.web")
router = APIRouter()


# -- A/B -------------------------------------------------------------------------------------------------


def client_key(request: Request) -> str:
    """Who the client is for A/B: its X-Client-ID header, else its IP address."""
    given = request.headers.get("x-client-id", "").strip()
    if given:
        return given[:256]
    return request.client.host if request.client else "unknown"


def client_address(request: Request) -> str:
    """Who sent a prediction, for reviewing feedback per client: the IP (the proxy's forwarded one where
    uvicorn trusts it), not X-Client-ID, which a client picks freely and could change on every request."""
    return request.client.host if request.client else "unknown"


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a client: the same client always lands on the same model."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:8], "big") / 2.0**64


def choose_predictor(request: Request) -> Any:
    state = request.app.state
    candidate = getattr(state, "candidate", None)
    if candidate is not None and bucket(client_key(request)) < state.candidate_share:
        return candidate
    return state.predictor


def label_of(predictor: Any) -> str:
    return f"{predictor.name} {predictor.version}"


# -- the prediction hook ---------------------------------------------------------------------------------


def record_predictions(request: Request, predictor: Any, predictions: list[Any], answers: list[Any]) -> None:
    """Count the answers in the metrics and store them; the model's name goes out as the X-Model header."""
    label = label_of(predictor)
    request.state.model = label
    observe_predictions(label, [p.digit for p in predictions], [p.confidence for p in predictions])
    store = getattr(request.app.state, "store", None)
    if store is None:
        return
    client = store.client_hash(client_address(request))
    records = [Record(a.id, label, p.digit, p.confidence, p.input, client=client)
               for p, a in zip(predictions, answers, strict=True)]
    after_answer: list[Callable[[], Awaitable[None]]] | None = getattr(request.state, "after_answer", None)
    if after_answer is not None:  # the route runs these once its answer has been sent (routes.predict)
        after_answer.append(partial(write_later, store, records))
    else:
        write(store, records)


def write(store: Any, records: Sequence[Record]) -> None:
    try:
        store.record(records)
    except StoreUnavailable as exc:
        STORE_ERRORS.labels("record").inc()
        log.warning("prediction not stored: %s", exc)


async def write_later(store: Any, records: Sequence[Record]) -> None:
    """Store the predictions of an answer that has just been sent. SQLite, a local WAL append (~50 µs),
    right here on the event loop: nothing else runs in between, so by the time the client can send feedback
    the row is committed. PostgreSQL, a network round trip (or a reconnect while the database is down), in
    the thread pool, so that the loop never waits on the network."""
    if store.kind == "sqlite":
        write(store, records)
    else:
        await run_in_threadpool(write, store, records)


def _store(request: Request) -> Any:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, "the feedback store is off on this server (started with --db off).")
    return store


# -- routes ----------------------------------------------------------------------------------------------


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, description="the `id` /api/predict returned")
    label: int = Field(ge=0, le=9, description="the digit the image really shows")


class FeedbackOut(BaseModel):
    id: str
    label: int
    digit: int | None = Field(description="what the model answered")
    correct: bool = Field(description="label == digit")
    model: str


class ModelStats(BaseModel):
    predictions: int
    feedback: int
    feedback_accuracy: float | None = Field(description="share of feedback that agreed; null without feedback")


class RetentionOut(BaseModel):
    retain: str = Field(description="the --retain policy: an age such as 30d, a row count, or forever")
    max_age_s: float | None
    max_rows: int | None
    pruned: int = Field(description="predictions this worker pruned since it started")
    last_pruned_at: float | None = Field(description="Unix time of this worker's last pruning pass")


class StatsOut(ModelStats):
    by_model: dict[str, ModelStats]
    retention: RetentionOut


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, description="new primary model (path); omitted: reload the current one")
    candidate: str | None = Field(default=None, description="new candidate model (path); omitted: keep")
    candidate_share: float | None = Field(default=None, ge=0.0, le=1.0)


class ReloadOut(BaseModel):
    model: str
    candidate: str | None
    candidate_share: float


_STORE_ERRORS = error_responses({503: "the feedback database is unavailable"})
UNKNOWN_RETRY_S = 0.05


@router.post(
    "/api/feedback",
    response_model=FeedbackOut,
    responses={**error_responses({404: "unknown prediction id", 422: "not {id, label 0-9}"}), **_STORE_ERRORS},
    summary="Tell the server what a prediction should have been",
)
def feedback(body: FeedbackIn, request: Request) -> FeedbackOut:
    """Stored and committed before the answer: an acknowledged label survives a crash of the server."""
    store = _store(request)
    try:
        try:
            record = store.add_feedback(body.id, body.label)
        except UnknownPrediction:
            # A prediction is written just after its answer is sent (write_later): on PostgreSQL, or from
            # another worker process, that write may still be on its way. Look once more before the 404.
            time.sleep(UNKNOWN_RETRY_S)
            record = store.add_feedback(body.id, body.label)
    except StoreUnavailable:
        STORE_ERRORS.labels("feedback").inc()
        raise
    return FeedbackOut(id=body.id, label=body.label, digit=record.digit, correct=record.digit == body.label,
                       model=record.model)


@router.get("/api/stats", response_model=StatsOut, responses=_STORE_ERRORS, summary="Predictions and feedback")
def stats(request: Request) -> StatsOut:
    pruner = getattr(request.app.state, "pruner", None)
    retention = pruner.summary() if pruner else {"retain": "forever", "max_age_s": None, "max_rows": None,
                                                 "pruned": 0, "last_pruned_at": None}
    try:
        return StatsOut(**_store(request).stats(), retention=RetentionOut(**retention))
    except StoreUnavailable:
        STORE_ERRORS.labels("stats").inc()
        raise


@router.post(
    "/api/admin/reload",
    response_model=ReloadOut,
    responses=error_responses({401: "missing or wrong bearer token",
                               404: "admin disabled (no DIGITREC_ADMIN_TOKEN)",
                               400: "not a model file, or it could not be loaded; the old one keeps serving",
                               403: "the path is outside the model folders ($DIGITREC_MODEL_DIRS)"}),
    dependencies=[Depends(require_admin)],
    summary="Reload or switch the models (bearer token)",
)
def reload_models(request: Request, body: ReloadIn | None = None) -> ReloadOut:
    """Load first, swap after: a bad file leaves the serving models untouched. Affects this worker only.
    Only model files under the model folders are opened (model_paths.py)."""
    from digitrec.inference.predictor import load_model

    state, body = request.app.state, body or ReloadIn()
    folders = state.model_dirs
    primary = load_model(allowed_model_path(body.model, folders) if body.model else state.predictor.path)
    candidate = (load_model(allowed_model_path(body.candidate, folders)) if body.candidate
                 else getattr(state, "candidate", None))
    state.predictor, state.candidate = primary, candidate
    if body.candidate_share is not None:
        state.candidate_share = body.candidate_share
    set_model_info("primary", primary)
    if candidate is not None:
        set_model_info("candidate", candidate)
    log.warning("admin reload: primary %s, candidate %s", primary, candidate)
    return ReloadOut(model=label_of(primary), candidate=label_of(candidate) if candidate else None,
                     candidate_share=state.candidate_share)

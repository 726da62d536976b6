"""POST /api/feedback and GET /api/stats: what users say the digits were, and how often the model agreed.

Both need the database (deps.StoreDep): 503 while it is down or off. The predictions they refer to are
written by recording.py.
"""

from __future__ import annotations

import time

from fastapi import APIRouter

from digitrec.feedback.store import StoreUnavailable, UnknownPrediction
from digitrec.web.deps import PrunerDep, StoreDep
from digitrec.web.observability import STORE_ERRORS
from digitrec.web.schemas import FeedbackIn, FeedbackOut, RetentionOut, StatsOut, error_responses

router = APIRouter()
STORE_DOWN = error_responses({503: "the feedback database is unavailable"})
UNKNOWN_RETRY_S = 0.05
FOREVER = {"retain": "forever", "max_age_s": None, "max_rows": None, "pruned": 0, "last_pruned_at": None}


@router.post(
    "/api/feedback",
    response_model=FeedbackOut,
    responses={**error_responses({404: "unknown prediction id", 422: "not {id, label 0-9}"}), **STORE_DOWN},
    summary="Tell the server what a prediction should have been",
)
def feedback(body: FeedbackIn, store: StoreDep) -> FeedbackOut:
    """Stored and committed before the answer: an acknowledged label survives a crash of the server."""
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


@router.get("/api/stats", response_model=StatsOut, responses=STORE_DOWN, summary="Predictions and feedback")
def stats(store: StoreDep, pruner: PrunerDep) -> StatsOut:
    retention = pruner.summary() if pruner else FOREVER
    try:
        return StatsOut(**store.stats(), retention=RetentionOut(**retention))
    except StoreUnavailable:
        STORE_ERRORS.labels("stats").inc()
        raise

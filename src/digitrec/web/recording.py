"""Every answered prediction is counted in the metrics and written to the feedback store (id, time, model,
the 28x28 input, digit, confidence). A database failure here is logged and counted, never turned into a failed
prediction; /api/predict has the write done just after its answer is sent (`write_later`), so no answer waits
for a commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from digitrec.feedback.store import FeedbackStore, Record, StoreUnavailable
from digitrec.inference.predictor import Prediction, Predictor
from digitrec.web.deps import label_of
from digitrec.web.observability import STORE_ERRORS, observe_predictions

log = logging.getLogger("digitrec.web")
Later = Callable[[], Awaitable[None]]


def client_address(request: Request) -> str:
    """Who sent a prediction, for reviewing feedback per client: the IP (the proxy's forwarded one where
    uvicorn trusts it), not X-Client-ID, which a client picks freely and could change on every request."""
    return request.client.host if request.client else "unknown"


def record_predictions(request: Request, predictor: Predictor, store: FeedbackStore | None,
                       predictions: list[Prediction], answers: list[Any], later: list[Later] | None = None) -> None:
    """Count the answers and store them: now, or, given `later`, as a task the route runs after its answer."""
    label = label_of(predictor)
    observe_predictions(label, [p.digit for p in predictions], [p.confidence for p in predictions])
    if store is None:
        return
    client = store.client_hash(client_address(request))
    records = [Record(a.id, label, p.digit, p.confidence, p.input, client=client)
               for p, a in zip(predictions, answers, strict=True)]
    if later is not None:
        later.append(partial(write_later, store, records))
    else:
        write(store, records)


def write(store: FeedbackStore, records: Sequence[Record]) -> None:
    try:
        store.record(records)
    except StoreUnavailable as exc:
        STORE_ERRORS.labels("record").inc()
        log.warning("prediction not stored: %s", exc)


async def write_later(store: FeedbackStore, records: Sequence[Record]) -> None:
    """Store the predictions of an answer that has just been sent. SQLite, a local WAL append (~50 µs),
    right here on the event loop: nothing else runs in between, so by the time the client can send feedback
    the row is committed. PostgreSQL, a network round trip (or a reconnect while the database is down), in
    the thread pool, so that the loop never waits on the network."""
    if store.kind == "sqlite":
        write(store, records)
    else:
        await run_in_threadpool(write, store, records)

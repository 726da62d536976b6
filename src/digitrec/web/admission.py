"""Admission control: at most `limit` heavy requests (decode + inference) in flight per worker process.

A request beyond the limit waits up to `wait` seconds for a slot, before a byte of its body is read (so a
waiting request costs a connection, not memory), then gets a fast 503 JSON with `Retry-After`. Everything
else (/healthz, /readyz, /metrics, the page, /api/model) never waits here, so liveness answers however many
heavy requests arrive. The wait absorbs the ordinary queue of a busy worker (32 clients of 3 ms requests);
only a pile-up of slow ones is turned away.
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from digitrec.web.observability import ADMISSION_REJECTED

HEAVY = frozenset({"/api/predict", "/api/predict/batch", "/api/predict/number", "/api/explain"})
DEFAULT_LIMIT = 8
DEFAULT_WAIT_S = 1.0
RETRY_AFTER_S = 1


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, limit: int = DEFAULT_LIMIT, wait: float = DEFAULT_WAIT_S) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self.slots = asyncio.Semaphore(limit)  # bound to the server's loop on first use
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in HEAVY or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not await self._acquire():
            ADMISSION_REJECTED.inc()
            detail = (f"the server is busy ({self.limit} heavy requests in progress on this worker); "
                      f"retry in {RETRY_AFTER_S} s.")
            busy = JSONResponse({"detail": detail}, 503, headers={"Retry-After": str(RETRY_AFTER_S)})
            await busy(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.slots.release()

    async def _acquire(self) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # a free slot: returns at once
            return True
        if self.wait <= 0:
            return False
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait)
        except asyncio.TimeoutError:  # (the builtin TimeoutError from Python 3.11)
            return False
        return True

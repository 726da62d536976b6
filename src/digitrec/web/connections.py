"""Slow clients: deadlines for a request's headers (a uvicorn protocol) and for its body (ASGI middleware).

uvicorn arms its keep-alive timer only after a response, and any byte that arrives cancels it: a client that
connects and sends nothing, or sends half its headers a byte at a time, holds its connection (and a slot of
`limit_concurrency`) for as long as it likes. The protocols here give every request a deadline for its header
block, counted from the connection (first request) or from its first byte (later requests on a keep-alive
connection), and close the connection when it passes; idle keep-alive connections keep uvicorn's own timer.

The body is the app's side: `BodyTimeoutMiddleware` gives the whole body one deadline from the start of the
request, so a trickle (a byte a second, each one in time) ends with a 408 and a closed connection too.

`serve()` passes one of these as uvicorn's `http=` (with TCP_NODELAY, see nodelay.py); uvicorn's worker
processes import it by name, so the deadline travels in $DIGITREC_HEADER_TIMEOUT (web/settings.py), read once
per process.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from digitrec.web.nodelay import set_nodelay

DEFAULT_BODY_TIMEOUT = 30.0


@functools.cache
def header_timeout() -> float:
    """The settings' header deadline, from the environment once: uvicorn makes the protocols, not the app."""
    from digitrec.web.settings import ServeSettings

    return ServeSettings.from_env().header_timeout


class HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol (h11 or httptools): both keep the request being answered in
    `self.cycle` and replace it when a new request's headers are complete: a deadline waits for that change."""

    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None
    _waiting_after: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(OneWritePerResponse(transport, self.loop))  # type: ignore[misc]
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        self.transport.flush()  # the head and the body in one segment, before any background task runs
        super().on_response_complete()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        between = self.cycle is None or self.cycle.response_complete
        if between and self._header_timer is None:  # the first byte of a next request
            self._arm_header_deadline()
        super().data_received(data)  # type: ignore[misc]
        if self._header_timer is not None and self.cycle is not self._waiting_after:
            self._cancel_header_deadline()  # the headers are in: the body has its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._waiting_after = self.cycle
        self._header_timer = self.loop.call_later(header_timeout(), self._on_header_deadline)

    def _cancel_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_deadline(self) -> None:
        self._header_timer = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()


class OneWritePerResponse:
    """The connection's transport, with the writes of one event-loop step sent together.

    uvicorn writes a response's head and body separately (h11: head, body, end), and with TCP_NODELAY each
    write is a send() and a segment of its own: the client wakes for the head, then again for the body, and
    on a busy machine the server may lose the CPU to the woken client between the two. The protocol flushes
    when a response is complete (before its background task runs); anything else (100 Continue, a streamed
    chunk) goes out when the loop step ends. Measured (benchmarks/serve_latency.py and the same requests to
    two servers side by side, on the shared two-core machine): /healthz 1.09-1.21 -> 0.92-1.01 ms and the
    canvas POST /api/predict 2.50-2.92 -> 2.50-2.69 ms at a load average of 3; with other jobs at 7-8, one
    series of three alternating runs gave 7.6-8.6 -> 2.5-6.7 ms for the canvas, two more at 6-7 and at 4 no
    difference beyond the noise (docs/results.md)."""

    def __init__(self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, lines: list[bytes]) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():  # closed or aborted meanwhile: nobody to send to
            self._transport.write(data)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class GuardedH11Protocol(HeaderDeadline, H11Protocol):  # type: ignore[misc]
    """h11 (pure Python) with the header deadline and TCP_NODELAY."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed (it comes with uvicorn[standard])
    GuardedHttpToolsProtocol: type | None = None
else:

    class GuardedHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):  # type: ignore[misc, no-redef]
        """httptools (llhttp, C) with the header deadline and TCP_NODELAY."""


def protocol_for(http: str) -> type:
    """'auto' (httptools when installed, else h11), 'h11' or 'httptools' -> the guarded protocol class."""
    from digitrec.errors import DigitrecError

    if http == "h11" or (http == "auto" and GuardedHttpToolsProtocol is None):
        return GuardedH11Protocol
    if http in ("httptools", "auto"):
        if GuardedHttpToolsProtocol is None:
            raise DigitrecError("--http httptools needs httptools: pip install 'uvicorn[standard]'.")
        return GuardedHttpToolsProtocol
    raise DigitrecError(f"--http must be auto, h11 or httptools, not {http!r}.")  # settings.check says so first


if sys.version_info >= (3, 11):

    async def _receive_by(receive: Receive, deadline: float) -> Message:
        async with asyncio.timeout_at(deadline):  # a timer on this task: no extra task per read
            return await receive()

else:  # Python 3.10

    async def _receive_by(receive: Receive, deadline: float) -> Message:
        return await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))


class BodyTimeoutMiddleware:
    """408 (and Connection: close) when a request's body is not complete `timeout` seconds after it began."""

    def __init__(self, app: ASGIApp, timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # after the body (e.g. waiting for a disconnect): no deadline
                return await receive()
            try:
                message = await _receive_by(receive, deadline)
            except asyncio.TimeoutError:
                raise HTTPException(
                    408, f"the request body did not arrive within {self.timeout:g} s; send it faster or "
                         "send a smaller image.", headers={"Connection": "close"}) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed_receive, send)

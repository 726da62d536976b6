"""TCP_NODELAY on every connection, set by the HTTP protocols of connections.py (`serve()` passes one as
uvicorn's `http=`).

asyncio turns Nagle's algorithm off only on accepted sockets whose Python object says proto=IPPROTO_TCP.
With `workers > 1` (also `--reload`), uvicorn binds the listening socket itself with `socket.socket(family)`,
proto 0, so the connections the workers accept keep Nagle on: an answer written as headers then body waits
for the client's delayed ACK, ~40 ms per request. Setting the option here works whatever made the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # e.g. a connection already reset: not a reason to fail it here
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

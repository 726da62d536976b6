"""`digitrec serve` turns Nagle's algorithm off on every connection, with one worker or several.

With `--workers N` uvicorn binds the listening socket itself (`Config.bind_socket()`: proto 0, not TCP) and each
worker runs `Server.run(sockets=[that socket])`; asyncio then leaves Nagle on for the connections it accepts, and
each answer waited ~40 ms for the client's delayed ACK. These tests run that same path (and the one-worker path)
in this process with the options `serve()` gives uvicorn, and read TCP_NODELAY off the accepted sockets: no timing.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn

from digitrec.web.server import uvicorn_options

pytestmark = pytest.mark.timeout(60)


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _accepted_nodelay(host: str, workers_path: bool) -> list[int]:
    """TCP_NODELAY of the server side of one keep-alive connection, after one request on it."""
    config = uvicorn.Config(_ok, **{**uvicorn_options(host, 0), "lifespan": "off", "log_level": "warning"})
    server = uvicorn.Server(config)
    sockets = [config.bind_socket()] if workers_path else None  # what uvicorn.run does when workers > 1
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        while not server.started:
            assert not task.done(), "the server stopped before it started"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/")).text == "ok"
            transports = [conn.transport for conn in server.server_state.connections]
            return [t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for t in transports]
    finally:
        server.should_exit = True
        await task


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6"))]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("workers_path", [True, False], ids=["workers>1", "workers=1"])
def test_connections_have_tcp_nodelay(host: str, workers_path: bool):
    nodelay = asyncio.run(_accepted_nodelay(host, workers_path))
    assert len(nodelay) == 1 and nodelay[0] != 0, nodelay


class _Recorder:
    """A transport that keeps what reaches it, write by write."""

    def __init__(self, transport) -> None:
        self.transport, self.writes = transport, []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


async def _writes_per_response(http: str, monkeypatch) -> list[list[bytes]]:
    from digitrec.web import connections

    recorders = []
    real_init = connections.OneWritePerResponse.__init__

    def recording_init(self, transport, loop) -> None:
        recorders.append(_Recorder(transport))
        real_init(self, recorders[-1], loop)

    monkeypatch.setattr(connections.OneWritePerResponse, "__init__", recording_init)
    options = {**uvicorn_options("127.0.0.1", 0), "http": connections.protocol_for(http)}
    config = uvicorn.Config(_ok, **{**options, "lifespan": "off", "log_level": "warning"})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server stopped before it started"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        seen = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # one keep-alive connection
                assert (await client.get("/")).text == "ok"
                seen.append(list(recorders[0].writes))
                recorders[0].writes.clear()
        return seen
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_each_response_goes_out_in_one_write(http: str, monkeypatch):
    """uvicorn writes the head and the body apart; the guarded protocols send them as one segment."""
    pytest.importorskip(http)
    for writes in asyncio.run(_writes_per_response(http, monkeypatch)):
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"ok"), writes

"""What admission control and the body deadline add to one heavy request, in process (no HTTP, no model).

Calls a trivial ASGI app that reads its body and answers, bare and wrapped in AdmissionMiddleware +
BodyTimeoutMiddleware, for the path of a heavy route, and prints the best-of-5 mean per call. The header
deadline (web/connections.py) is one timer per connection and is not in this figure.

    python benchmarks/middleware_cost.py [--n 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from digitrec.web.admission import AdmissionMiddleware
from digitrec.web.connections import BodyTimeoutMiddleware


async def app(scope, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})


async def receive() -> dict:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def send(message: dict) -> None:
    pass


async def per_call_us(asgi, n: int) -> float:
    scope = {"type": "http", "path": "/api/predict", "method": "POST", "headers": []}
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            await asgi(scope, receive, send)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


async def main(n: int) -> None:
    bare = await per_call_us(app, n)
    guarded = await per_call_us(AdmissionMiddleware(BodyTimeoutMiddleware(app, 30.0), limit=8), n)
    print(f"bare app {bare:.2f} µs/call; with admission + body deadline {guarded:.2f} µs/call: "
          f"+{guarded - bare:.2f} µs per heavy request")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50000, help="calls per timing")
    asyncio.run(main(ap.parse_args().n))

"""Call a running digitrec server over HTTP (start one with `digitrec serve`).

    python examples/http_client.py http://127.0.0.1:8000 [IMAGE ...]

Shows each way to send an image: a multipart upload, base64 JSON, MNIST-form pixels, and a batch.
Errors come back as a 4xx status with a JSON {"detail": "..."} that says what to fix.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

import requests


def demo_image() -> bytes:
    """A handwritten-looking 5 as PNG bytes, when no image is given."""
    import numpy as np

    from digitrec.training.synth import render

    buf = io.BytesIO()
    render(5, np.random.default_rng(0), "canvas").save(buf, "PNG")
    return buf.getvalue()


def show(label: str, r: requests.Response) -> None:
    if r.ok:
        body = r.json()
        digit = body.get("digit")
        print(f"{label}: {'no digit' if digit is None else digit} ({body.get('confidence', 0):.1%})")
    else:
        print(f"{label}: HTTP {r.status_code}: {r.json().get('detail')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", help="base URL of the server, e.g. http://127.0.0.1:8000")
    ap.add_argument("images", nargs="*", type=Path)
    args = ap.parse_args()
    base = args.url.rstrip("/")
    s = requests.Session()
    try:
        info = s.get(f"{base}/api/model", timeout=10).json()
    except requests.RequestException as exc:
        reason = type(exc).__name__
        print(f"error: cannot reach {base} ({reason}); is `digitrec serve` running?", file=sys.stderr)
        return 1
    print(f"server model: {info['name']} {info['version']}, limits {info['limits']}")
    files = [(p.name, p.read_bytes()) for p in args.images] or [("demo.png", demo_image())]

    for name, data in files:
        # 1. multipart upload, the way a browser form sends a file
        show(f"{name} (multipart)", s.post(f"{base}/api/predict", files={"file": (name, data)}, timeout=30))
        # 2. JSON with base64 (a data URL works too)
        b64 = base64.b64encode(data).decode()
        show(f"{name} (base64 JSON)", s.post(f"{base}/api/predict", json={"image": b64}, timeout=30))

    # 3. pixels already in MNIST form: 28x28 floats in [0, 1], white on black. The server echoes the 28x28
    #    image it saw, so reuse that.
    seen = s.post(f"{base}/api/predict", files={"file": files[0]}, timeout=30).json()["input"]
    if seen is not None:
        show("pixels (28x28 JSON)", s.post(f"{base}/api/predict", json={"pixels": seen}, timeout=30))

    # 4. a batch in one request
    batch = [base64.b64encode(data).decode() for _, data in files]
    r = s.post(f"{base}/api/predict/batch", json={"images": batch}, timeout=60)
    print("batch:", [res["digit"] for res in r.json()["results"]] if r.ok else r.json()["detail"])

    # 5. a mistake: the server answers 4xx with a reason, never a crash
    garbage = {"file": ("x.png", b"not an image")}
    show("garbage bytes", s.post(f"{base}/api/predict", files=garbage, timeout=30))
    return 0


if __name__ == "__main__":
    sys.exit(main())

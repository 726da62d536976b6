"""Every route that answers with a model gets it from deps.get_predictor: A/B routing covers /api/explain and
/api/predict/number as it does /api/predict, and the model that answered goes out as X-Model."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digitrec.paths import BUNDLED_DIR
from digitrec.testing.servers import ONE_PIXELS
from digitrec.training.synth import render
from digitrec.web.app import create_app
from digitrec.web.settings import ServeSettings


def _canvas_png(digit: int) -> bytes:
    buf = io.BytesIO()
    render(digit, np.random.default_rng(0), "canvas", size=280).save(buf, "PNG")
    return buf.getvalue()


def _requests(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """The X-Model of each route that uses a model, for one client."""
    png = _canvas_png(4)
    answers = {
        "predict": client.post("/api/predict", json={"pixels": ONE_PIXELS}, headers=headers),
        "batch": client.post("/api/predict/batch", json={"images": [{"pixels": ONE_PIXELS}]}, headers=headers),
        "explain": client.post("/api/explain", json={"pixels": ONE_PIXELS}, headers=headers),
        "number": client.post("/api/predict/number", files={"file": ("n.png", png, "image/png")}, headers=headers),
        "model": client.get("/api/model", headers=headers),
    }
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text)
    return {name: r.headers["x-model"] for name, r in answers.items()}


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_every_model_route_takes_part_in_ab_routing(tmp_path: Path, share: float):
    folder = tmp_path / "candidate-b"
    folder.mkdir()
    shutil.copy(BUNDLED_DIR / "model.onnx", folder / "model.onnx")
    settings = ServeSettings(db="off", candidate=str(folder), candidate_share=share)
    with TestClient(create_app(settings=settings)) as client:
        seen = _requests(client, {"X-Client-ID": "user-1"})
        primary = client.get("/readyz").json()["model"]
    expected = "candidate-b unknown" if share == 1.0 else primary
    assert set(seen.values()) == {expected}, seen


def test_one_client_gets_one_model_on_every_route(tmp_path: Path):
    folder = tmp_path / "candidate-b"
    folder.mkdir()
    shutil.copy(BUNDLED_DIR / "model.onnx", folder / "model.onnx")
    settings = ServeSettings(db="off", candidate=str(folder), candidate_share=0.5)
    with TestClient(create_app(settings=settings)) as client:
        models = [set(_requests(client, {"X-Client-ID": f"user-{i}"}).values()) for i in range(8)]
    assert all(len(m) == 1 for m in models)  # the same client, the same model, whatever the route
    assert len(set.union(*models)) == 2  # and both models answer someone

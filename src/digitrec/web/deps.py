"""Typed dependencies: what a route needs from the app, declared in its signature (`predictor: PredictorDep`)
rather than read from `app.state`. Every route that answers with a model gets it from `get_predictor`, so
A/B routing covers all of them alike.

The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def` dependency on the thread
pool, a hop that would cost more than the lookup itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from digitrec.feedback.retention import Pruner
from digitrec.feedback.store import FeedbackStore
from digitrec.inference.predictor import Predictor
from digitrec.web.settings import ServeSettings


@dataclass
class Models:
    """The models one worker serves (`app.state.models`). Admin reload loads new ones, then swaps them."""

    primary: Predictor | None = None  # None until the lifespan has loaded it
    candidate: Predictor | None = None  # A/B: answers `candidate_share` of the clients
    candidate_share: float = 0.1
    folders: tuple[Path, ...] = ()  # where admin reload may load from (model_paths.py)


def label_of(predictor: Predictor) -> str:
    return f"{predictor.name} {predictor.version}"


def client_key(request: Request) -> str:
    """Who the client is for A/B: its X-Client-ID header, else its IP address."""
    given = request.headers.get("x-client-id", "").strip()
    if given:
        return given[:256]
    return request.client.host if request.client else "unknown"


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a client: the same client always lands on the same model."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:8], "big") / 2.0**64


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_models(request: Request) -> Models:
    return request.app.state.models


async def get_predictor(request: Request) -> Predictor:
    """The model that answers this client (the candidate for its A/B share); its name goes out as X-Model."""
    models: Models = request.app.state.models
    predictor = models.primary
    if models.candidate is not None and bucket(client_key(request)) < models.candidate_share:
        predictor = models.candidate
    if predictor is None:
        raise HTTPException(503, "the model is not loaded yet; retry in a moment.")
    request.state.model = label_of(predictor)  # observability.py writes the X-Model header from it
    return predictor


async def get_store_or_none(request: Request) -> FeedbackStore | None:
    return request.app.state.store


async def get_store(request: Request) -> FeedbackStore:
    store = request.app.state.store
    if store is None:
        raise HTTPException(503, "the feedback store is off on this server (started with --db off).")
    return store


async def get_pruner(request: Request) -> Pruner | None:
    """This worker's retention pruner; None when predictions are kept for ever (or there is no store)."""
    return request.app.state.pruner


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
ModelsDep = Annotated[Models, Depends(get_models)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StoreDep = Annotated[FeedbackStore, Depends(get_store)]
OptionalStoreDep = Annotated[FeedbackStore | None, Depends(get_store_or_none)]
PrunerDep = Annotated[Pruner | None, Depends(get_pruner)]

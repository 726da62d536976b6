"""POST /api/admin/reload: swap the models of a running worker, behind a bearer token.

The token is the settings' admin_token ($DIGITREC_ADMIN_TOKEN); without one the admin API does not exist
(404). Only model files under the model folders are opened (model_paths.py).
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException

from digitrec.web.deps import ModelsDep, SettingsDep, label_of
from digitrec.web.model_paths import MODEL_DIRS_ENV, allowed_model_path
from digitrec.web.observability import set_model_info
from digitrec.web.schemas import ReloadIn, ReloadOut, error_responses

log = logging.getLogger("digitrec.web")
router = APIRouter()
ADMIN_TOKEN_ENV = "DIGITREC_ADMIN_TOKEN"


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """404 when admin is off, 401 without the right `Authorization: Bearer` token."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not token:
        raise HTTPException(404, f"the admin API is disabled; set {ADMIN_TOKEN_ENV} on the server to enable it.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "send the admin token as 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})


@router.post(
    "/api/admin/reload",
    response_model=ReloadOut,
    responses=error_responses({401: "missing or wrong bearer token",
                               404: f"admin disabled (no {ADMIN_TOKEN_ENV})",
                               400: "not a model file, or it could not be loaded; the old one keeps serving",
                               403: f"the path is outside the model folders (${MODEL_DIRS_ENV})"}),
    dependencies=[Depends(require_admin)],
    summary="Reload or switch the models (bearer token)",
)
def reload_models(models: ModelsDep, body: ReloadIn | None = None) -> ReloadOut:
    """Load first, swap after: a bad file leaves the serving models untouched. Affects this worker only.
    Only model files under the model folders are opened (model_paths.py)."""
    from digitrec.inference.predictor import load_model

    body = body or ReloadIn()
    current = models.primary.path if models.primary is not None else None
    primary = load_model(allowed_model_path(body.model, models.folders) if body.model else current)
    candidate = load_model(allowed_model_path(body.candidate, models.folders)) if body.candidate else models.candidate
    models.primary, models.candidate = primary, candidate
    if body.candidate_share is not None:
        models.candidate_share = body.candidate_share
    set_model_info("primary", primary)
    if candidate is not None:
        set_model_info("candidate", candidate)
    log.warning("admin reload: primary %s, candidate %s", primary, candidate)
    return ReloadOut(model=label_of(primary), candidate=label_of(candidate) if candidate else None,
                     candidate_share=models.candidate_share)


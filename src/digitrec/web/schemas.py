"""Pydantic models for every request and response body of the HTTP API (they are also the OpenAPI docs)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PIXELS_DOC = "28×28 nested list of floats in [0, 1], white ink on black (MNIST polarity), already centred"
IMAGE_DOC = "an image (PNG, JPEG, WebP, BMP or GIF) as base64, or as a data URL (data:image/png;base64,...)"


class PixelsIn(BaseModel):
    """An image already in MNIST form: it goes to the model as is, without preprocessing."""

    model_config = ConfigDict(extra="forbid")
    pixels: list[list[float]] = Field(description=PIXELS_DOC)

    @field_validator("pixels")
    @classmethod
    def _check_pixels(cls, rows: list[list[float]]) -> list[list[float]]:
        if len(rows) != 28 or any(len(r) != 28 for r in rows):
            shape = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})}" if rows else "no rows"
            raise ValueError(f"pixels must be 28 rows of 28 numbers, got {shape}")
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for r in rows for v in r):
            raise ValueError("pixels must be finite numbers in [0, 1] (no NaN or infinity)")
        return rows


class PredictIn(BaseModel):
    """JSON body of POST /api/predict: exactly one of `image` or `pixels`."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(default=None, description=IMAGE_DOC)
    pixels: list[list[float]] | None = Field(default=None, description=PIXELS_DOC)

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictIn:
        if (self.image is None) == (self.pixels is None):
            raise ValueError("send exactly one of 'image' (base64 or data URL) or 'pixels' (28×28 floats)")
        if self.pixels is not None:
            PixelsIn(pixels=self.pixels)
        return self


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description=IMAGE_DOC)


class PredictionOut(BaseModel):
    id: str = Field(description="uuid4 hex identifying this prediction (feedback refers to it)")
    digit: int | None = Field(description="0-9, or null when there is no digit (see `reason`): we never guess")
    confidence: float = Field(
        description="calibrated probability of `digit` (0 when blank; when refused, of the top digit)"
    )
    probabilities: list[float] = Field(
        description="10 calibrated softmax probabilities, index = digit (zeros if blank)"
    )
    model: str = Field(description="name and version of the model that answered")
    input: list[list[float]] | None = Field(
        description="the 28×28 image the model saw, white on black in [0, 1]; null when blank"
    )
    reason: str | None = Field(
        default=None,
        description='why `digit` is null: "blank", "not_digit_like" or "low_confidence" (null with a digit)',
    )
    box: list[int] | None = Field(
        default=None,
        description="[x, y, width, height] of the digit's ink in the sent image's pixels (after EXIF rotation);"
        " null for `pixels` input or when blank. With several digits, the one nearest the centre is read",
    )


class BatchOut(BaseModel):
    results: list[PredictionOut]


class LimitsOut(BaseModel):
    max_body_bytes: int
    max_image_pixels: int
    max_batch: int
    max_batch_pixels: int


class ModelOut(BaseModel):
    name: str
    version: str
    sha256: str
    test_accuracy: float | None
    input: dict[str, Any] = Field(description="the model's input contract (dtype, shape, range, polarity)")
    formats: list[str] = Field(description="image formats the API accepts")
    limits: LimitsOut


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: str


class ErrorOut(BaseModel):
    detail: str


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for client errors: each status answers an ErrorOut, described in words."""
    return {code: {"model": ErrorOut, "description": text} for code, text in descriptions.items()}


def image_body(json_schema: dict[str, Any], field: str = "file", many: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a body sent as JSON or as multipart uploads in `field`. FastAPI generates a
    request body from parameters for one content type only; these routes take two (inputs.py reads both)."""
    upload: dict[str, Any] = {"type": "string", "format": "binary"}
    multipart = {"type": "object", "required": [field],
                 "properties": {field: {"type": "array", "items": upload} if many else upload}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": json_schema}, "multipart/form-data": {"schema": multipart}}}}


# -- numbers and explanations (web/insight.py) ----------------------------------------------------------


class NumberDigitOut(BaseModel):
    digit: int = Field(description="0-9")
    confidence: float = Field(description="calibrated probability of `digit`")
    box: list[int] = Field(description="[x, y, width, height] of the digit's ink, in the sent image's pixels")
    probabilities: list[float] = Field(description="10 calibrated softmax probabilities, index = digit")
    input: list[list[float]] | None = Field(default=None, description="the 28×28 image the model saw for it")


class NumberOut(BaseModel):
    number: str = Field(
        description='the digits read left to right, "." where a decimal point was found ("" when none was)'
    )
    digits: list[NumberDigitOut]
    confidence: float = Field(description="product of the digits' confidences (0 when none was found)")


class ExplainOut(BaseModel):
    digit: int | None = Field(description="the digit the saliency explains (the model's top one); null if blank")
    confidence: float = Field(description="calibrated probability of `digit` (0 when blank)")
    reason: str | None = Field(
        description="why /api/predict would answer no digit for this image (null when it answers one)"
    )
    saliency: list[list[float]] = Field(
        description="28×28 occlusion saliency in [0, 1] over the image the model saw (1 = mattered most)"
    )
    input: list[list[float]] | None = Field(description="the 28×28 image the model saw; null when blank")


# -- feedback, stats and admin (web/routes/feedback.py, admin.py) ----------------------------------------


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, description="the `id` /api/predict returned")
    label: int = Field(ge=0, le=9, description="the digit the image really shows")


class FeedbackOut(BaseModel):
    id: str
    label: int
    digit: int | None = Field(description="what the model answered")
    correct: bool = Field(description="label == digit")
    model: str


class ModelStats(BaseModel):
    predictions: int
    feedback: int
    feedback_accuracy: float | None = Field(description="share of feedback that agreed; null without feedback")


class RetentionOut(BaseModel):
    retain: str = Field(description="the --retain policy: an age such as 30d, a row count, or forever")
    max_age_s: float | None
    max_rows: int | None
    pruned: int = Field(description="predictions this worker pruned since it started")
    last_pruned_at: float | None = Field(description="Unix time of this worker's last pruning pass")


class StatsOut(ModelStats):
    by_model: dict[str, ModelStats]
    retention: RetentionOut


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, description="new primary model (path); omitted: reload the current one")
    candidate: str | None = Field(default=None, description="new candidate model (path); omitted: keep")
    candidate_share: float | None = Field(default=None, ge=0.0, le=1.0)


class ReloadOut(BaseModel):
    model: str
    candidate: str | None
    candidate_share: float

"""HTTP routes beyond one digit: a multi-digit number (`POST /api/predict/number`) and an explanation of one
digit (`POST /api/explain`).

Same bodies as `/api/predict` (inputs.py reads and checks them), the same model for the same client (A/B:
deps.get_predictor), same rule: CPU work in plain `def` routes, every client mistake a 4xx JSON
`{"detail": ...}`. The library does the work (segment.read_number, explain.occlusion); these routes only
translate.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from digitrec.web.deps import PredictorDep, SettingsDep
from digitrec.web.inputs import Item, decode, single_body, to_model_input
from digitrec.web.schemas import ExplainOut, NumberOut, PredictIn, error_responses, image_body

router = APIRouter()

ERRORS = error_responses(
    {
        400: "unreadable image, bad base64 or malformed JSON",
        413: "body or image over the limits",
        415: "unsupported Content-Type or image format",
        422: "JSON of the wrong shape",
    }
)


def _json(body: NumberOut | ExplainOut) -> Response:
    return Response(body.model_dump_json(), media_type="application/json")


@router.post(
    "/api/predict/number",
    response_model=NumberOut,
    responses=ERRORS,
    summary="Read a handwritten number (several digits, left to right)",
    openapi_extra=image_body({"type": "object", "required": ["image"], "properties": {
        "image": PredictIn.model_json_schema()["properties"]["image"]}}),
)
def predict_number(predictor: PredictorDep, settings: SettingsDep, item: Item = Depends(single_body)) -> Response:
    """One image of a number: multipart field `file`, or JSON `{"image": base64 or data URL}`. Each digit
    comes with its box in the image's pixels; pieces the model refuses (not digit-like) are left out."""
    from digitrec.inference.segment import read_number

    if item.pixels is not None:
        raise HTTPException(422, "pixels: a number needs a whole image ('file' or 'image'), not 28×28 pixels.")
    result = decode(item, settings, lambda data, **kw: read_number(predictor, data, **kw))
    return _json(NumberOut.model_validate(result.to_dict()))


@router.post(
    "/api/explain",
    response_model=ExplainOut,
    responses=ERRORS,
    summary="Which pixels made the model answer what it did (occlusion saliency)",
    openapi_extra=image_body(PredictIn.model_json_schema()),
)
def explain_digit(predictor: PredictorDep, settings: SettingsDep, item: Item = Depends(single_body)) -> Response:
    """One digit, as for `/api/predict`: the 28×28 saliency of the model's top digit over the image it saw."""
    from digitrec.inference.explain import occlusion

    x = to_model_input(item, settings)
    p = predictor.predict_mnist([x])[0]
    if x is None or p.input is None:
        return _json(ExplainOut(digit=None, confidence=0.0, reason=p.reason,
                                saliency=np.zeros((28, 28)).tolist(), input=None))
    digit, confidence, saliency = occlusion(predictor, p.input)
    return _json(ExplainOut(digit=digit, confidence=round(confidence, 6), reason=p.reason,
                            saliency=np.round(saliency, 4).tolist(), input=np.round(p.input, 3).tolist()))

"""POST /v1/classifications: texts or feature records -> a label, its calibrated confidence, an
out-of-scope flag and the class probabilities for each.

``confidence`` and ``out_of_scope`` are what the predictor decided (temperature-calibrated top
probability; a threshold chosen on validation data). A predictor that reports neither (an older
run) is read as confidence = its top score and never out of scope, so every answer has one shape.
"""

from __future__ import annotations

from typing import Any, Mapping

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response, new_id
from guimo.serve.errors import ApiError
from guimo.serve.registry import ListJob
from guimo.serve.schemas import ClassificationRequest, ClassificationResponse
from guimo.serve.service import admit, record, resolve_model, run_jobs

router = APIRouter(tags=["classifications"])


@router.post("/v1/classifications", response_model=ClassificationResponse, responses=ERRORS)
async def create_classifications(body: ClassificationRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_count(len(body.input), state.settings.max_inputs, "input")
    model = resolve_model(state, principal, body.model, "classifications")
    if getattr(model.predictor, "input_kind", None) == "text":
        check_texts(body.input)
    n = len(body.input)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="classifications", tokens=n)
    try:
        (results,) = await run_jobs(adm, [ListJob(body.input)])
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [public(i, r, body.top_k) for i, r in enumerate(results)]
    out = ClassificationResponse(id=new_id("cls"), model=body.model, data=data, usage={"inputs": n})
    return json_response(out, adm.headers)


def check_texts(inputs: list) -> None:
    """A text classifier's inputs are non-empty strings: a 400 here, not a failed batch that would
    also fail the other requests batched with this one."""
    for i, x in enumerate(inputs):
        if not isinstance(x, str):
            raise ApiError(400, f"input[{i}]: this model classifies texts, got a {type(x).__name__}.", code="invalid_value", param=f"input[{i}]")
        if not x.strip():
            raise ApiError(400, f"input[{i}] is empty.", code="invalid_value", param=f"input[{i}]")


def public(index: int, result: Mapping[str, Any], top_k: int | None) -> dict:
    """One predictor result as the API's ``Classification``: scores sorted, most probable first, cut to ``top_k``."""
    scores = sorted(((str(k), float(v)) for k, v in result["scores"].items()), key=lambda kv: -kv[1])
    label = str(result["label"])
    confidence = result.get("confidence")
    if confidence is None:
        confidence = dict(scores).get(label, scores[0][1] if scores else 0.0)
    return {"index": index, "label": label, "confidence": float(confidence), "out_of_scope": bool(result.get("out_of_scope", False)),
            "scores": dict(scores[:top_k] if top_k else scores)}

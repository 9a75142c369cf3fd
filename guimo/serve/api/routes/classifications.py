"""POST /v1/classifications: texts or feature records -> a label, its calibrated confidence, an
out-of-scope flag and the class probabilities for each.

``confidence`` and ``out_of_scope`` are what the predictor decided (temperature-calibrated top
probability; a threshold chosen on validation data). A predictor that reports neither (an older
run) is read as confidence = its top score and never out of scope, so every answer has one shape.

A tabular run (a predictor of records) takes rows as objects of column: value. They are checked before batching
(every feature column present, no column the model does not know, numbers where numbers belong: a 400 naming the
row and the column), and ``"explain": true`` adds each row's ``explanation`` (``guimo.explain.rows``: the
transformer's Integrated Gradients beside the LightGBM baseline's TreeSHAP), computed in a worker thread. Without
``explain`` the answer has no ``explanation`` field, so text classifiers answer exactly as before.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from fastapi import APIRouter, Response

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
    kind = getattr(model.predictor, "input_kind", None)
    if kind == "text":
        check_texts(body.input)
    elif kind == "records":
        check_records(model.predictor, body.input)
    if body.explain and kind != "records":
        raise ApiError(400, "explain: only tabular runs (rows of columns) are explained; this model classifies texts.",
                       code="invalid_value", param="explain")
    n = len(body.input)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="classifications", tokens=n)
    try:
        (results,) = await run_jobs(adm, [ListJob(body.input)])
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [public(i, r, body.top_k) for i, r in enumerate(results)]
    if body.explain:
        from guimo.explain.rows import explain_records

        explanations = await asyncio.to_thread(explain_records, model.predictor, body.input, top=body.explain_top)
        for d, e in zip(data, explanations):
            d["explanation"] = e
    out = ClassificationResponse(id=new_id("cls"), model=body.model, data=data, usage={"inputs": n})
    if body.explain:
        return json_response(out, adm.headers)
    return Response(out.model_dump_json(exclude={"data": {"__all__": {"explanation"}}}), media_type="application/json", headers=adm.headers)


def check_texts(inputs: list) -> None:
    """A text classifier's inputs are non-empty strings: a 400 here, not a failed batch that would
    also fail the other requests batched with this one."""
    for i, x in enumerate(inputs):
        if not isinstance(x, str):
            raise ApiError(400, f"input[{i}]: this model classifies texts, got a {type(x).__name__}.", code="invalid_value", param=f"input[{i}]")
        if not x.strip():
            raise ApiError(400, f"input[{i}] is empty.", code="invalid_value", param=f"input[{i}]")


def check_records(predictor, inputs: list) -> None:
    """A tabular run's inputs are rows it can encode: a 400 naming the row here, not a failed batch."""
    from guimo.errors import GuimoError
    from guimo.explain.rows import check_columns, rows_frame

    if getattr(predictor, "task", None) == "regression":
        raise ApiError(400, "This model is a regression run: it has no labels to classify with; score its rows with "
                            "guimo predict RUN --batch rows.csv.", code="invalid_value", param="model")
    for i, x in enumerate(inputs):
        if not isinstance(x, dict):
            raise ApiError(400, f"input[{i}]: this model scores rows (objects of column: value), got a {type(x).__name__}.",
                           code="invalid_value", param=f"input[{i}]")
        try:
            check_columns(predictor.encoder, x)
        except GuimoError as e:
            raise ApiError(400, f"input[{i}]: {e}", code="invalid_value", param=f"input[{i}]") from None
    try:
        predictor.encode(rows_frame(inputs))  # every value encodable (numbers where numbers belong), all rows at once
    except GuimoError as whole:
        for i, x in enumerate(inputs):  # the first row that fails, to name it
            try:
                predictor.encode(rows_frame([x]))
            except GuimoError as e:
                raise ApiError(400, f"input[{i}]: {e}", code="invalid_value", param=f"input[{i}]") from None
        raise ApiError(400, str(whole), code="invalid_value", param="input") from None


def public(index: int, result: Mapping[str, Any], top_k: int | None) -> dict:
    """One predictor result as the API's ``Classification``: scores sorted, most probable first, cut to ``top_k``."""
    scores = sorted(((str(k), float(v)) for k, v in result["scores"].items()), key=lambda kv: -kv[1])
    label = str(result["label"])
    confidence = result.get("confidence")
    if confidence is None:
        confidence = dict(scores).get(label, scores[0][1] if scores else 0.0)
    return {"index": index, "label": label, "confidence": float(confidence), "out_of_scope": bool(result.get("out_of_scope", False)),
            "scores": dict(scores[:top_k] if top_k else scores)}

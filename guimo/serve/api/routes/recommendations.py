"""POST /v1/recommendations: histories of item ids -> the top-k next items for each.

Item ids that are not in the model's catalogue are never dropped silently: each answer lists them
under ``unknown_items`` and the response's ``hint`` says what known ids look like. A history with
items but none of them known is a 400 (code ``unknown_items``) before anything is queued or
billed, unless the request sets ``allow_unknown`` (then that history gets the popular items).
"""

from __future__ import annotations

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response, new_id
from guimo.serve.errors import ApiError
from guimo.serve.registry import ListJob
from guimo.serve.schemas import RecommendationRequest, RecommendationResponse
from guimo.serve.service import admit, record, resolve_model, run_jobs

router = APIRouter(tags=["recommendations"])


@router.post("/v1/recommendations", response_model=RecommendationResponse, responses=ERRORS)
async def create_recommendations(body: RecommendationRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_count(len(body.histories), state.settings.max_inputs, "histories")
    hint = unknown_hint(resolve_model(state, principal, body.model, "recommendations").predictor, body.histories, body.allow_unknown)
    n = len(body.histories)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="recommendations", tokens=n)
    try:
        (recs,) = await run_jobs(adm, [ListJob(body.histories, (body.k, body.exclude_seen))])
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [{"index": i, "items": [str(x) for x in r["items"]], "scores": [float(x) for x in r["scores"]],
             "unknown_items": list(r.get("unknown_items", []))} for i, r in enumerate(recs)]
    out = RecommendationResponse(id=new_id("rec"), model=body.model, data=data, usage={"inputs": n}, hint=hint)
    return json_response(out, adm.headers)


def unknown_hint(predictor, histories: list[list[str]], allow_unknown: bool) -> str | None:
    """None when every id is known; else what known ids look like. Raises the 400 for a history with
    items but none known (unless ``allow_unknown``): answering it with the popular items would hide a
    wrong id scheme (``12`` for ``i00012``) behind a plausible-looking answer."""
    first = None
    for i, history in enumerate(histories):
        unknown = predictor.unknown(history)
        if not unknown:
            continue
        if len(unknown) == len(set(history)) and not allow_unknown:
            raise ApiError(400, f"histories[{i}]: none of its items is known: {predictor.unknown_message(unknown, len(history))}. "
                                "Send ids from the catalogue, or set allow_unknown to get the most popular items.",
                           code="unknown_items", param=f"histories[{i}]")
        first = first or unknown
    if first is None:
        return None
    return f"some item ids are not in the catalogue of this model and were left out (see unknown_items); known item ids look like {', '.join(predictor.id_examples())}"

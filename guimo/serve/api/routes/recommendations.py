"""POST /v1/recommendations: histories of item ids -> the top-k next items for each."""

from __future__ import annotations

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response, new_id
from guimo.serve.registry import ListJob
from guimo.serve.schemas import RecommendationRequest, RecommendationResponse
from guimo.serve.service import admit, record, run_jobs

router = APIRouter(tags=["recommendations"])


@router.post("/v1/recommendations", response_model=RecommendationResponse, responses=ERRORS)
async def create_recommendations(body: RecommendationRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_count(len(body.histories), state.settings.max_inputs, "histories")
    n = len(body.histories)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="recommendations", tokens=n)
    try:
        (recs,) = await run_jobs(adm, [ListJob(body.histories, (body.k, body.exclude_seen))])
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [{"index": i, "items": [str(x) for x in r["items"]], "scores": [float(x) for x in r["scores"]]} for i, r in enumerate(recs)]
    out = RecommendationResponse(id=new_id("rec"), model=body.model, data=data, usage={"inputs": n})
    return json_response(out, adm.headers)

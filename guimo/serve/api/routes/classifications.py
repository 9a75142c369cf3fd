"""POST /v1/classifications: texts or feature records -> a label and class scores for each."""

from __future__ import annotations

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response, new_id
from guimo.serve.registry import ListJob
from guimo.serve.schemas import ClassificationRequest, ClassificationResponse
from guimo.serve.service import admit, record, run_jobs

router = APIRouter(tags=["classifications"])


@router.post("/v1/classifications", response_model=ClassificationResponse, responses=ERRORS)
async def create_classifications(body: ClassificationRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_count(len(body.input), state.settings.max_inputs, "input")
    n = len(body.input)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="classifications", tokens=n)
    try:
        (results,) = await run_jobs(adm, [ListJob(body.input)])
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [{"index": i, "label": str(r["label"]), "scores": {str(k): float(v) for k, v in r["scores"].items()}} for i, r in enumerate(results)]
    out = ClassificationResponse(id=new_id("cls"), model=body.model, data=data, usage={"inputs": n})
    return json_response(out, adm.headers)

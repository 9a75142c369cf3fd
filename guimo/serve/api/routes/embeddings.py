"""POST /v1/embeddings: one vector per input from any model whose predictor can embed.

``encoding_format="base64"`` (the openai client's default) sends little-endian float32 bytes.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response
from guimo.serve.registry import ListJob
from guimo.serve.schemas import EmbeddingRequest, EmbeddingResponse
from guimo.serve.service import admit, record, resolve_model, run_jobs

router = APIRouter(tags=["embeddings"])


@router.post("/v1/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
async def create_embeddings(body: EmbeddingRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    check_count(len(texts), state.settings.max_inputs, "input")
    model = resolve_model(state, principal, body.model, "embeddings")
    estimate = sum(model.predictor.count_tokens(t) for t in texts) if hasattr(model.predictor, "count_tokens") else len(texts)
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="embeddings", tokens=estimate)
    try:
        (pairs,) = await run_jobs(adm, [ListJob(texts)])
        tokens = sum(int(n) for _, n in pairs)
        await record(state, adm, prompt_tokens=tokens, completion_tokens=0, units=tokens)
        rs["units"] = tokens
    finally:
        adm.release()
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)} for i, (v, _) in enumerate(pairs)]
    out = EmbeddingResponse(data=data, model=body.model, usage={"prompt_tokens": tokens, "total_tokens": tokens})
    return json_response(out, adm.headers)


def _encode(vector, fmt: str):
    if fmt == "float":
        return [float(x) for x in vector]
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()

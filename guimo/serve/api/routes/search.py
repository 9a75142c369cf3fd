"""POST /v1/search: one query or many against one of the tenant's collections.

``{"collection", "query" | "queries": [...], "k", "mode": bm25|dense|hybrid, "filter": {field: value},
"include_text"}`` -> per query, hits with id, score and metadata (and text when asked). An empty
query is a 400, more queries than ``max_inputs`` a 413, a filter on a field no document has a
400 naming it. Metered under the collection's name, endpoint ``search``, one unit per query.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.collections import RESPONSES, check_batch
from guimo.serve.api.routes.common import new_id
from guimo.serve.collections import metered_as
from guimo.serve.errors import ApiError
from guimo.serve.schemas import SearchRequest, SearchResponse
from guimo.serve.service import admit, record

router = APIRouter(tags=["search"])


@router.post("/v1/search", response_model=SearchResponse, responses=RESPONSES)
async def search(body: SearchRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    queries = check_queries(body, state.settings.max_inputs)
    store = state.collections
    handle = await asyncio.to_thread(store.get, principal.tenant_id, body.collection)
    dense = handle.collection.has_dense
    mode = body.mode or ("hybrid" if dense else "bm25")
    if mode != "bm25" and not dense:
        raise ApiError(400, f"The collection '{body.collection}' is keyword-only (created with dense false); it answers mode 'bm25'.",
                       code="invalid_value", param="mode")
    n = len(queries)
    adm = await admit(state, principal, rs, model_name=body.collection, endpoint="search", tokens=n, model=metered_as(body.collection))
    try:
        results = await asyncio.to_thread(store.search, handle, queries, k=body.k, mode=mode, filters=body.filter,
                                          include_text=body.include_text)
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=n)
        rs["units"] = n
    finally:
        adm.release()
    data = [{"index": i, "hits": hits} for i, hits in enumerate(results)]
    out = SearchResponse(id=new_id("srch"), collection=body.collection, mode=mode, data=data, usage={"inputs": n})
    # hits carry "text" only when asked (exclude_none drops None fields of models, never a metadata value)
    return Response(out.model_dump_json(exclude_none=True), media_type="application/json", headers=adm.headers)


def check_queries(body: SearchRequest, limit: int) -> list[str]:
    """Exactly one of ``query`` and ``queries``; none empty; at most ``limit`` (else 413)."""
    if (body.query is None) == (body.queries is None):
        raise ApiError(400, "Give either 'query' (one string) or 'queries' (a list of strings), not both and not neither.",
                       code="invalid_value", param="query")
    if body.query is not None:
        if not body.query.strip():
            raise ApiError(400, "'query' is empty.", code="empty_query", param="query")
        return [body.query]
    if not body.queries:
        raise ApiError(400, "'queries' is empty.", code="empty_query", param="queries")
    check_batch(len(body.queries), limit, "queries")
    for i, q in enumerate(body.queries):
        if not q.strip():
            raise ApiError(400, f"queries[{i}] is empty.", code="empty_query", param=f"queries[{i}]")
    return list(body.queries)

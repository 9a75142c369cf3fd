"""GET /v1/usage: the calling tenant's usage and bill; a key never sees another tenant's."""

from __future__ import annotations

import re

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from guimo.serve import ledger
from guimo.serve.api.deps import PrincipalDep, StateDep
from guimo.serve.api.routes.common import ERRORS
from guimo.serve.billing import price_lines
from guimo.serve.errors import ApiError
from guimo.serve.schemas import UsageReport

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", response_model=UsageReport, responses={k: ERRORS[k] for k in (400, 401, 422)})
async def get_usage(state: StateDep, principal: PrincipalDep, month: str | None = Query(None, description="YYYY-MM; all months when absent")) -> UsageReport:
    if month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ApiError(400, f"month must look like 2026-05, got '{month}'.", code="invalid_value", param="month")
    rows = await run_in_threadpool(ledger.usage, state.engine, tenant_id=principal.tenant_id, month=month)
    lines = price_lines(rows, state.prices)
    data = [{"model": ln.row.model, "endpoint": ln.row.endpoint, "requests": ln.row.requests, "prompt_tokens": ln.row.prompt_tokens,
             "completion_tokens": ln.row.completion_tokens, "units": ln.row.units, "cost": round(ln.total, 6)} for ln in lines]
    return UsageReport(tenant=principal.tenant, month=month, currency=state.prices.currency, data=data,
                       total_cost=round(sum(ln.total for ln in lines), 6))

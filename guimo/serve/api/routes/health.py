"""Liveness and readiness: /healthz answers while the process runs; /readyz only when the models
are loaded, the ledger answers and the server is not shutting down (load balancers stop routing)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from guimo.serve.api.deps import StateDep
from guimo.serve.db import ping

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
async def readyz(state: StateDep):
    if not state.ready:
        return JSONResponse({"status": "not ready", "reason": "starting or shutting down"}, status_code=503)
    try:
        await run_in_threadpool(ping, state.engine)
    except Exception as e:
        return JSONResponse({"status": "not ready", "reason": f"ledger: {type(e).__name__}"}, status_code=503)
    return {"status": "ready", "models": sorted(state.models)}

"""Admission and metering around every model request, shared by all routes.

``admit``: the model exists and is granted to the key, the request id is new for this tenant,
the monthly quota is not spent, and the rate limits allow it. ``record``: one usage event, handed
to the ledger writer thread, which decides the quota and appends the event in one transaction
with the other events waiting at that moment (see ``ledger_writer``). ``run_jobs``: queue jobs on the
model's batcher, turning load shedding into 503 + Retry-After.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from guimo.serve import ledger
from guimo.serve.batching import Overloaded
from guimo.serve.errors import ApiError, retry_headers
from guimo.serve.keys import Principal
from guimo.serve.limits import Grant, RateLimited
from guimo.serve.models import utcnow
from guimo.serve.registry import ServedModel
from guimo.serve.state import AppState


@dataclass
class Admitted:
    principal: Principal
    model: ServedModel
    endpoint: str
    request_id: str
    grant: Grant
    started_at: dt.datetime

    @property
    def headers(self) -> dict[str, str]:
        return self.grant.headers

    def release(self) -> None:
        self.grant.release()


def resolve_model(state: AppState, principal: Principal, name: str, endpoint: str) -> ServedModel:
    model = state.models.get(name)
    if model is None or not principal.may_use(name):
        if model is not None:
            raise ApiError(403, f"Your API key is not allowed to use the model '{name}'.", code="model_not_granted", param="model")
        raise ApiError(404, f"The model '{name}' does not exist.", code="model_not_found", param="model")
    if endpoint not in model.endpoints:
        raise ApiError(400, f"The model '{name}' ({model.kind}) does not serve /v1/{endpoint}; it serves "
                            f"{', '.join('/v1/' + e for e in model.endpoints)}.", code="unsupported_endpoint", param="model")
    return model


async def admit(state: AppState, principal: Principal, request_state: dict, *, model_name: str, endpoint: str, tokens: int,
                model: ServedModel | None = None) -> Admitted:
    """``model``: what the event is metered as when it is not a served model (a tenant's search collection)."""
    model = model or resolve_model(state, principal, model_name, endpoint)
    rid = request_state["request_id"]
    request_state.update(tenant=principal.tenant, key=principal.prefix, model=model_name)
    if request_state.get("client_request_id") and await run_in_threadpool(ledger.already_recorded, state.engine, principal.tenant_id, rid):
        raise duplicate(rid)
    started_at = utcnow()  # one reading: the quota's month is the month the event is recorded in, even at midnight
    if principal.monthly_quota is not None:
        used = await run_in_threadpool(ledger.used_units, state.engine, principal.key_family, ledger.month_of(started_at))
        if used >= principal.monthly_quota:
            raise quota_error(used, principal.monthly_quota)
    try:
        grant = state.limiter.admit(key_id=principal.key_id, model=model_name, rpm=principal.rpm, tpm=principal.tpm,
                                    max_concurrent=principal.max_concurrent, tokens=tokens)
    except RateLimited as e:
        raise ApiError(429, str(e), code="rate_limit_exceeded", headers=retry_headers(e.retry_after, e.headers)) from None
    return Admitted(principal, model, endpoint, rid, grant, started_at)


async def record(state: AppState, adm: Admitted, *, prompt_tokens: int, completion_tokens: int, units: int,
                 status: str = "ok", enforce: bool = True) -> None:
    """Write the usage event (the response must not be sent before this returns)."""
    p = adm.principal
    event = ledger.Event(request_id=adm.request_id, tenant_id=p.tenant_id, key_id=p.key_id, key_family=p.key_family,
                         key_prefix=p.prefix, model=adm.model.name, scenario=adm.model.scenario, endpoint=adm.endpoint,
                         status=status, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, units=units,
                         started_at=adm.started_at, finished_at=utcnow())
    adm.grant.settle(prompt_tokens + completion_tokens)
    try:
        await state.writer.record(ledger.Write(event, p.monthly_quota, enforce))
    except ledger.QuotaExceeded as e:
        raise quota_error(e.used, e.quota) from None
    except ledger.DuplicateRequest:
        raise duplicate(adm.request_id) from None
    if prompt_tokens:
        state.metrics.child(state.metrics.tokens, adm.model.name, "prompt").inc(prompt_tokens)
    if completion_tokens:
        state.metrics.child(state.metrics.tokens, adm.model.name, "completion").inc(completion_tokens)


def enqueue(adm: Admitted, jobs: list) -> list[asyncio.Future]:
    """Queue every job or none (a full queue cancels the ones already queued)."""
    batcher = adm.model.batchers[adm.endpoint]
    futures: list[asyncio.Future] = []
    try:
        for job in jobs:
            futures.append(batcher.enqueue(job))
    except Overloaded as e:
        for f in futures:
            f.cancel()
        raise ApiError(503, str(e), code="overloaded", headers=retry_headers(e.retry_after)) from None
    return futures


async def run_jobs(adm: Admitted, jobs: list) -> list:
    futures = enqueue(adm, jobs)
    try:
        return await asyncio.gather(*futures)
    except ApiError:
        raise
    except Exception as e:  # the batch this request was in failed; other batches are unaffected
        raise ApiError(500, f"The model failed on this request: {type(e).__name__}: {e}", code="model_error") from None


def quota_error(used: int, quota: int) -> ApiError:
    return ApiError(429, f"You exceeded your monthly quota of {quota} units ({used} used this month).",
                    code="insufficient_quota", type="insufficient_quota", headers=retry_headers(_seconds_to_next_month()))


def duplicate(rid: str) -> ApiError:
    return ApiError(409, f"Request id '{rid}' was already served and billed once; send a new X-Request-ID to run it again.",
                    code="duplicate_request_id", param="X-Request-ID")


def _seconds_to_next_month() -> float:
    now = utcnow()
    nxt = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (nxt - now).total_seconds()

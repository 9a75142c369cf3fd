"""Dependencies as ``Annotated`` aliases: a route says ``principal: PrincipalDep`` and gets it.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a
thread hand-off per dependency per request that cost ~15% of the event loop's time under load.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from guimo.serve.errors import ApiError
from guimo.serve.keys import AuthError, Principal, authenticate, hash_key
from guimo.serve.state import AppState

bearer = HTTPBearer(auto_error=False, description="an API key from `guimo keys create`")


async def get_state(request: Request) -> AppState:
    return request.app.state.guimo


StateDep = Annotated[AppState, Depends(get_state)]


async def get_request_state(request: Request) -> dict:
    """The per-request dict the middleware created (request id; the log line reads it back)."""
    return request.scope.setdefault("state", {})


RequestStateDep = Annotated[dict, Depends(get_request_state)]


async def get_principal(state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer gm-...'.", code="missing_api_key")
    key = credentials.credentials
    digest = hash_key(key)
    cached = state.key_cache.get(digest)
    if cached is not None and time.monotonic() - cached[0] < state.settings.key_cache_s:
        return cached[1]
    # One ledger lookup per key at a time: when a busy key's cache entry expires, its concurrent
    # requests all wait for the same lookup instead of each sending its own (64 at concurrency 64).
    check = state.key_checks.get(digest)
    if check is None:
        check = state.key_checks[digest] = asyncio.ensure_future(run_in_threadpool(authenticate, state.engine, key))
        check.add_done_callback(lambda _: state.key_checks.pop(digest, None))
    try:
        principal = await asyncio.shield(check)
    except AuthError as e:
        state.key_cache.pop(digest, None)
        raise ApiError(401, str(e), code=e.code) from None
    if state.settings.key_cache_s > 0:
        if len(state.key_cache) > 10_000:
            state.key_cache.clear()
        state.key_cache[digest] = (time.monotonic(), principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]

"""/v1/collections: a tenant's search collections and their documents.

- ``POST /v1/collections`` creates one (name, text_field, id_field, dense, encoder);
  ``GET /v1/collections`` lists the key's tenant's collections; ``GET`` and ``DELETE
  /v1/collections/{name}`` read and remove one.
- ``POST /v1/collections/{name}/documents`` adds records (an id already there is replaced);
  ``POST /v1/collections/{name}/documents/delete`` deletes by ids. Deleting is a POST with a
  body, not a DELETE with one: many HTTP clients and OpenAPI generators drop a DELETE's body.

Every call is metered in the ledger under the collection's name, endpoint ``collections``:
units are the documents added or deleted (0 for the others). Writes run in a worker thread, one
writer per collection, while searches go on answering.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Mapping, TypeVar

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, json_response
from guimo.serve.collections import Handle, metered_as
from guimo.serve.errors import ApiError
from guimo.serve.keys import Principal
from guimo.serve.schemas import (CollectionCreate, CollectionDeleted, CollectionList, CollectionPublic, DocumentsAdd,
                                 DocumentsDelete, DocumentsResult)
from guimo.serve.service import admit, record
from guimo.serve.state import AppState

T = TypeVar("T")
router = APIRouter(tags=["collections"])
ENDPOINT = "collections"
RESPONSES = {**ERRORS, 404: {**ERRORS[404], "description": "unknown collection (another tenant's answers the same)"},
             409: {**ERRORS[409], "description": "a collection of this name exists, or the request id was already served"},
             413: {**ERRORS[413], "description": "body too large, or more documents than the server takes per call"}}


def public(store, handle: Handle) -> CollectionPublic:
    c = handle.collection
    return CollectionPublic(name=handle.name, documents=len(c), text_field=c.text_field, id_field=c.id_field, dense=c.has_dense,
                            encoder=store.encoder_name(handle), modes=c.info()["modes"])


async def metered(state: AppState, principal: Principal, rs: dict, name: str, units: int,
                  work: Callable[[], T] | None = None, *, write: bool = False) -> tuple[T | None, dict[str, str]]:
    """Admit (quota, limits), run ``work()`` in a thread (``write``: the store's writer threads; it may
    embed and save), record the event: the pattern of every call here. Returns ``work``'s result and
    the rate-limit headers."""
    adm = await admit(state, principal, rs, model_name=name, endpoint=ENDPOINT, tokens=units, model=metered_as(name))
    try:
        out = None
        if work is not None:
            pool = state.collections.writer if write else None  # None: the loop's default threads
            out = await asyncio.get_running_loop().run_in_executor(pool, work)
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=units)
        rs["units"] = units
    finally:
        adm.release()
    return out, adm.headers


@router.post("/v1/collections", response_model=CollectionPublic, responses=RESPONSES)
async def create_collection(body: CollectionCreate, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    store = state.collections
    handle, headers = await metered(state, principal, rs, body.name, 0, lambda: store.create(
        principal.tenant_id, body.name, text_field=body.text_field, id_field=body.id_field, dense=body.dense, encoder=body.encoder),
        write=True)
    return json_response(public(state.collections, handle), headers)


@router.get("/v1/collections", response_model=CollectionList, responses=RESPONSES)
async def list_collections(state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    handles, headers = await metered(state, principal, rs, "(all)", 0, lambda: state.collections.list(principal.tenant_id))
    return json_response(CollectionList(data=[public(state.collections, h) for h in handles]), headers)


@router.get("/v1/collections/{name}", response_model=CollectionPublic, responses=RESPONSES)
async def get_collection(name: str, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    handle = await asyncio.to_thread(state.collections.get, principal.tenant_id, name)  # 404 before anything is metered
    _, headers = await metered(state, principal, rs, name, 0)
    return json_response(public(state.collections, handle), headers)


@router.delete("/v1/collections/{name}", response_model=CollectionDeleted, responses=RESPONSES)
async def delete_collection(name: str, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    await asyncio.to_thread(state.collections.get, principal.tenant_id, name)
    _, headers = await metered(state, principal, rs, name, 0, lambda: state.collections.drop(principal.tenant_id, name),
                               write=True)
    return json_response(CollectionDeleted(name=name), headers)


@router.post("/v1/collections/{name}/documents", response_model=DocumentsResult, responses=RESPONSES)
async def add_documents(name: str, body: DocumentsAdd, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_batch(len(body.records), state.settings.max_documents, "records")
    handle = await asyncio.to_thread(state.collections.get, principal.tenant_id, name)
    for i, r in enumerate(body.records):
        check_record(i, r, text_field=handle.collection.text_field, id_field=handle.collection.id_field)
    n = len(body.records)
    (added, total), headers = await metered(state, principal, rs, name, n, lambda: state.collections.add(handle, body.records),
                                            write=True)
    return json_response(DocumentsResult(collection=name, added=added, documents=total, usage={"inputs": n}), headers)


@router.post("/v1/collections/{name}/documents/delete", response_model=DocumentsResult, responses=RESPONSES)
async def delete_documents(name: str, body: DocumentsDelete, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    check_batch(len(body.ids), state.settings.max_documents, "ids")
    handle = await asyncio.to_thread(state.collections.get, principal.tenant_id, name)
    n = len(body.ids)
    (deleted, total), headers = await metered(state, principal, rs, name, n,
                                              lambda: state.collections.delete(handle, [str(i) for i in body.ids]),
                                              write=True)
    return json_response(DocumentsResult(collection=name, deleted=deleted, documents=total, usage={"inputs": n}), headers)


def check_batch(n: int, limit: int, param: str) -> None:
    """More entries than the server takes per call: 413, the status of a body that is too large."""
    if n > limit:
        raise ApiError(413, f"'{param}' has {n} entries; this server takes at most {limit} per request (send them in several calls).",
                       code="too_many_inputs", param=param)


def check_record(i: int, record: Mapping[str, Any], *, text_field: str, id_field: str) -> None:
    """A record without the collection's text or id field, or with one of the wrong type: 400 naming it."""
    for field_name in (id_field, text_field):
        if field_name not in record:
            present = ", ".join(map(repr, record)) or "none"
            raise ApiError(400, f"records[{i}] has no field '{field_name}' (the collection's {'id' if field_name == id_field else 'text'}"
                                f"_field); its fields: {present}.", code="missing_field", param=f"records[{i}].{field_name}")
    if not isinstance(record[text_field], str):
        raise ApiError(400, f"records[{i}].{text_field} must be a string, got {type(record[text_field]).__name__}.",
                       code="invalid_value", param=f"records[{i}].{text_field}")
    doc_id = record[id_field]
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        raise ApiError(400, f"records[{i}].{id_field} must be a non-empty string or an integer, got {doc_id!r}.",
                       code="invalid_value", param=f"records[{i}].{id_field}")

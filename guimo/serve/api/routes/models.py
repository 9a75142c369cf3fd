"""GET /v1/models: the models this key may use (another tenant's grants stay invisible)."""

from __future__ import annotations

from fastapi import APIRouter

from guimo.serve.api.deps import PrincipalDep, StateDep
from guimo.serve.errors import ApiError
from guimo.serve.schemas import ModelList, ModelPublic

router = APIRouter(tags=["models"])


def _public(m, owner: str) -> ModelPublic:
    return ModelPublic(id=m.name, created=m.created, owned_by=owner, serve_kind=m.kind, endpoints=list(m.endpoints))


@router.get("/v1/models", response_model=ModelList)
async def list_models(state: StateDep, principal: PrincipalDep) -> ModelList:
    return ModelList(data=[_public(m, "guimo") for name, m in sorted(state.models.items()) if principal.may_use(name)])


@router.get("/v1/models/{model}", response_model=ModelPublic)
async def get_model(model: str, state: StateDep, principal: PrincipalDep) -> ModelPublic:
    m = state.models.get(model)
    if m is None or not principal.may_use(model):
        raise ApiError(404, f"The model '{model}' does not exist.", code="model_not_found", param="model")
    return _public(m, "guimo")

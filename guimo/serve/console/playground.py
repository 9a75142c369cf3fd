"""The playground's calls: the signed-in tenant's requests to the real API routes, made by the server.

The page never holds an API key (the session cookie is HttpOnly and the page's JavaScript sees no key),
so it posts to ``/console/playground/{endpoint}`` and the server calls the very route function that
answers ``/v1/{endpoint}`` with the session's principal: the same validation, admission, rate limits,
quota, batching, metering (the event is billed to the tenant and the key it signed in with) and answer,
streamed completions included. The page (static/console.js) shows the equivalent curl line, with
``$GUIMO_API_KEY`` in place of the key.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import Request
from pydantic import BaseModel, ValidationError

from guimo.serve.errors import ApiError
from guimo.serve.keys import Principal
from guimo.serve.state import AppState

Handler = Callable[[Request, Any, AppState, Principal, dict], Awaitable[Any]]


def _json_route(schema: type[BaseModel], call: Callable[..., Awaitable[Any]]) -> Handler:
    async def handle(request: Request, body: Any, state: AppState, principal: Principal, rs: dict):
        try:
            parsed = schema.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            param = ".".join(str(x) for x in first.get("loc", ())) or None
            raise ApiError(422, f"{param + ': ' if param else ''}{first['msg']}", code="invalid_value", param=param) from None
        return await call(parsed, state, principal, rs)

    return handle


def handlers() -> dict[str, Handler]:
    """endpoint -> how the playground calls its route (imported here: the routes are serving code, never training)."""
    from guimo.serve.api.routes import classifications, completions, embeddings, recommendations, search
    from guimo.serve.schemas import (ClassificationRequest, CompletionRequest, EmbeddingRequest, RecommendationRequest,
                                     SearchRequest)

    out: dict[str, Handler] = {
        "completions": _json_route(CompletionRequest, completions.create_completion),
        "recommendations": _json_route(RecommendationRequest, recommendations.create_recommendations),
        "classifications": _json_route(ClassificationRequest, classifications.create_classifications),
        "embeddings": _json_route(EmbeddingRequest, embeddings.create_embeddings),
        "search": _json_route(SearchRequest, search.search),
    }

    async def assistant_turn(request: Request, body: Any, state: AppState, principal: Principal, rs: dict):
        from guimo.serve.api.routes import assistant

        return await assistant.create_turn(request, state, principal, rs)  # it reads the (cached) JSON body itself

    out["assistant"] = assistant_turn
    return out


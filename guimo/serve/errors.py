"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``.

Every failure the API can produce goes through here, including FastAPI's own validation errors
(malformed JSON -> 400, wrong types or missing fields -> 422), unknown routes (404), wrong
methods (405), oversized bodies (413) and anything unexpected (500, logged with its request id).
"""

from __future__ import annotations

import json
import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("guimo.serve")

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "overloaded_error",
}


class ApiError(Exception):
    """Raise anywhere in a route or dependency to answer with this status and error body."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.type = type or TYPES.get(status, "invalid_request_error")
        self.headers = headers or {}


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None, type: str | None = None) -> dict:
    return {"error": {"message": message, "type": type or TYPES.get(status, "invalid_request_error"), "param": param, "code": code}}


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(error_body(e.status, e.message, code=e.code, param=e.param, type=e.type), status_code=e.status, headers=e.headers)


def retry_headers(seconds: float, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds))), **(extra or {})}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        message = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        if e.status_code == 404 and message == "Not Found":
            message = f"Unknown URL: {request.method} {request.url.path}"
        return error_response(ApiError(e.status_code, message, code=codes.get(e.status_code), headers=dict(e.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        first = errors[0] if errors else {"msg": "invalid request", "loc": (), "type": "value_error"}
        if first.get("type") == "json_invalid":
            return error_response(ApiError(400, f"We could not parse the JSON body of your request: {first.get('ctx', {}).get('error', first['msg'])}",
                                           code="invalid_json"))
        if tuple(first.get("loc", ())) == ("body",) and "json" not in request.headers.get("content-type", ""):
            # curl -d without -H 'Content-Type: application/json' (or --json): say so, not "a valid dictionary"
            return error_response(ApiError(400, "the request body must be JSON with the header 'Content-Type: application/json' "
                                                "(curl: --json '{...}')", code="invalid_json"))
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = f"{param + ': ' if param else ''}{first['msg']}{more}"
        code = "missing_field" if first.get("type") == "missing" else "invalid_value"
        return error_response(ApiError(422, message, code=code, param=param))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        rid = request.scope.get("state", {}).get("request_id")
        log.exception("unhandled error", extra={"request_id": rid})
        return error_response(ApiError(500, f"The server had an error processing request {rid}.", code="internal_error"))

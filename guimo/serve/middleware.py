"""Per-request plumbing as plain ASGI middleware (safe with streaming responses):

request id (the client's ``X-Request-ID`` when valid, else generated; echoed on every response),
request body size limit (413 before the route reads it), one JSON log line and the request
metrics. The route stores tenant/model/units in ``scope["state"]`` for the log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid

from starlette.exceptions import HTTPException

from guimo.serve.errors import error_body

log = logging.getLogger("guimo.serve")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContext:
    def __init__(self, app, *, max_body_bytes: int, metrics, log_requests: bool = True, echo_request_id: bool = True) -> None:
        self.app, self.max_body, self.metrics, self.log_requests = app, max_body_bytes, metrics, log_requests
        self.echo_request_id = echo_request_id

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if given and REQUEST_ID.match(given) else "req_" + uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["client_request_id"] = rid == given  # generated ids are fresh; only the client's can repeat
        status = {"code": 500}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if self.echo_request_id:
                    message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            if given and not REQUEST_ID.match(given):
                return await _reply(send_with_id, 400, "X-Request-ID must be 1-128 characters of A-Z a-z 0-9 . _ : -", "invalid_request_id", "X-Request-ID")
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                return await _reply(send_with_id, 413, f"Request body is larger than the limit of {self.max_body} bytes.", "request_too_large", None)
            seen = 0

            async def limited_receive():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > self.max_body:  # chunked bodies have no Content-Length to check up front
                        raise HTTPException(413, f"Request body is larger than the limit of {self.max_body} bytes.")
                return message

            await self.app(scope, limited_receive, send_with_id)
        finally:
            seconds = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.child(self.metrics.requests, route, str(status["code"])).inc()
            self.metrics.child(self.metrics.latency, route).observe(seconds)
            if self.log_requests and route not in ("/metrics", "/healthz", "/readyz"):
                log.info("request", extra={"request_id": rid, "method": scope["method"], "path": scope["path"], "status": status["code"],
                                           "ms": round(seconds * 1000, 2), "worker": os.getpid(),
                                           **{k: state[k] for k in ("tenant", "key", "model", "units") if k in state}})


async def _reply(send, status: int, message: str, code: str, param: str | None) -> None:
    body = json.dumps(error_body(status, message, code=code, param=param)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

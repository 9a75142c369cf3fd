"""POST /v1/completions: OpenAI's text completions, plain or streamed as server-sent events.

A stream's chunks share one id; ``stream_options.include_usage`` adds a final chunk with the
usage and no choices; ``data: [DONE]`` ends it. A completed stream is recorded in the ledger
before ``[DONE]``; a stream the client leaves stops generating at the next token and is
recorded in the background with the tokens actually produced.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, check_count, json_response, new_id, now
from guimo.serve.errors import ApiError, error_body
from guimo.serve.registry import CompletionJob
from guimo.serve.schemas import CompletionRequest, CompletionResponse
from guimo.serve.service import Admitted, admit, enqueue, record, resolve_model, run_jobs

router = APIRouter(tags=["completions"])
log = logging.getLogger("guimo.serve")
DONE = object()


@router.post("/v1/completions", response_model=CompletionResponse, responses=ERRORS)
async def create_completion(body: CompletionRequest, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    s = state.settings
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    check_count(len(prompts), s.max_inputs, "prompt")
    if body.max_tokens > s.max_tokens_limit:
        raise ApiError(400, f"max_tokens is {body.max_tokens}; this server generates at most {s.max_tokens_limit} tokens per choice.",
                       code="max_tokens_too_large", param="max_tokens")
    if body.n > s.max_n:
        raise ApiError(400, f"n is {body.n}; this server returns at most {s.max_n} choices per prompt.", code="invalid_value", param="n")
    stop = [body.stop] if isinstance(body.stop, str) else (body.stop or None)
    if stop is not None and (len(stop) > 4 or any(not x for x in stop)):
        raise ApiError(400, "stop takes at most 4 non-empty strings.", code="invalid_value", param="stop")
    model = resolve_model(state, principal, body.model, "completions")
    prompt_counts = [model.predictor.count_tokens(p) for p in prompts]
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="completions",
                      tokens=sum(prompt_counts) + body.max_tokens * body.n * len(prompts))

    def params(j: int) -> dict:
        seed = None if body.seed is None else (body.seed + j) % 2**63
        return dict(max_tokens=body.max_tokens, temperature=body.temperature, top_k=body.top_k, top_p=body.top_p, seed=seed, stop=stop)

    jobs = [CompletionJob(p, params(j)) for p in prompts for j in range(body.n)]
    cid, created = new_id("cmpl"), now()
    if body.stream:
        try:
            return _stream(state, adm, jobs, cid, created, sum(prompt_counts), bool(body.stream_options and body.stream_options.include_usage))
        except BaseException:
            adm.release()
            raise
    try:
        results = await run_jobs(adm, jobs)
        prompt_tokens = sum(prompt_counts)
        completion_tokens = sum(r.completion_tokens for r in results)
        await record(state, adm, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, units=prompt_tokens + completion_tokens)
        rs["units"] = prompt_tokens + completion_tokens
    finally:
        adm.release()
    out = CompletionResponse(
        id=cid, created=created, model=body.model,
        choices=[{"text": r.text, "index": i, "finish_reason": r.finish_reason} for i, r in enumerate(results)],
        usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    )
    return json_response(out, adm.headers)


def _stream(state, adm: Admitted, jobs: list[CompletionJob], cid: str, created: int, prompt_tokens: int, include_usage: bool) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    for i, job in enumerate(jobs):
        job.sink = lambda piece, i=i: loop.call_soon_threadsafe(queue.put_nowait, (i, piece))
    futures = enqueue(adm, jobs)
    for i, f in enumerate(futures):
        f.add_done_callback(lambda _f, i=i: queue.put_nowait((i, DONE)))
    model = adm.model.name

    def chunk(choices: list, usage=None) -> str:
        data = {"id": cid, "object": "text_completion", "created": created, "model": model, "choices": choices}
        if include_usage:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n"

    async def finish(status: str) -> None:
        """Record what was produced (wait for rows that are still stopping), then free the key's slot."""
        try:
            outs = await asyncio.gather(*futures, return_exceptions=True)
            produced = sum(o.completion_tokens for o in outs if hasattr(o, "completion_tokens"))
            await record(state, adm, prompt_tokens=prompt_tokens, completion_tokens=produced, units=prompt_tokens + produced,
                         status=status, enforce=False)
        except ApiError as e:  # a duplicate request id: already recorded once
            log.warning("stream not recorded: %s", e.message, extra={"request_id": adm.request_id})
        finally:
            adm.release()

    async def events():
        done, results, recorded = 0, [None] * len(jobs), False
        try:
            while done < len(jobs):
                i, piece = await queue.get()
                if piece is not DONE:
                    yield chunk([{"text": piece, "index": i, "logprobs": None, "finish_reason": None}])
                    continue
                done += 1
                f = futures[i]
                if f.cancelled() or f.exception() is not None:
                    err = f.exception() if not f.cancelled() else None
                    yield f"data: {json.dumps(error_body(500, f'The model failed on this request: {err}', code='model_error'))}\n\n"
                    return
                results[i] = f.result()
                yield chunk([{"text": "", "index": i, "logprobs": None, "finish_reason": results[i].finish_reason}])
            recorded = True
            await finish("ok")
            produced = sum(r.completion_tokens for r in results)
            if include_usage:
                yield chunk([], {"prompt_tokens": prompt_tokens, "completion_tokens": produced, "total_tokens": prompt_tokens + produced})
            yield "data: [DONE]\n\n"
        finally:
            if not recorded:  # the client left (or the model failed): stop the rows, bill what was made
                for job in jobs:
                    job.cancelled = True
                state.spawn(finish("cancelled"))

    return StreamingResponse(events(), media_type="text/event-stream", headers={**adm.headers, "Cache-Control": "no-cache"})

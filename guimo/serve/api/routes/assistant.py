"""POST /v1/assistant: one smart-home turn for the caller's tenant, from text or an uploaded WAV.

JSON ``{"model", "text", "dry_run"}``, or a multipart form with ``model``, ``dry_run`` and the WAV
as ``file`` (``curl -F model=assistant -F file=@cmd.wav``). The answer is the turn computed by the
same ``guimo.assistant.core.Assistant`` the CLI uses: transcript, commands with confidences,
actions, the touched devices' states, the reply, and ms per stage. Each tenant has its own home
state (``guimo.serve.assistants``); the NLU parse goes through the model's batcher, so requests of
many tenants share model calls. An empty text, a WAV that cannot be read (not RIFF PCM, empty),
a model that is not an assistant run are 4xx JSON errors; a body over the server's limit is 413.
Metered as one unit (one turn) per request, priced by [requests.per_1k_requests] ``assistant``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from guimo.errors import GuimoError
from guimo.serve.api.deps import PrincipalDep, RequestStateDep, StateDep
from guimo.serve.api.routes.common import ERRORS, json_response, new_id, now
from guimo.serve.assistant_schemas import AssistantRequest, AssistantResponse
from guimo.serve.errors import ApiError
from guimo.serve.registry import ListJob
from guimo.serve.service import admit, record, resolve_model, run_jobs

router = APIRouter(tags=["assistant"])
MAX_AUDIO_S = 30.0  # a spoken command is a few seconds; longer uploads are refused before decoding (400)

_MULTIPART = {"type": "object", "required": ["model", "file"], "properties": {
    "model": {"type": "string", "description": "a served assistant run"},
    "file": {"type": "string", "format": "binary", "description": "a WAV file (16-bit PCM; any rate, resampled to 16 kHz)"},
    "dry_run": {"type": "boolean", "default": False}}}
OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": AssistantRequest.model_json_schema()},
    "multipart/form-data": {"schema": _MULTIPART}}}}


@dataclass
class Input:
    model: str
    dry_run: bool
    text: str | None = None
    wav: bytes | None = None
    wav_name: str = "<upload>"  # the upload's file name, for errors


@router.post("/v1/assistant", response_model=AssistantResponse, responses=ERRORS, openapi_extra=OPENAPI)
async def create_turn(request: Request, state: StateDep, principal: PrincipalDep, rs: RequestStateDep):
    body = await read_input(request)
    model = resolve_model(state, principal, body.model, "assistant")
    homes = assistant_homes(state)
    assistant = await asyncio.to_thread(homes.get, principal.tenant_id, model.name, model.predictor)
    audio = None
    if body.wav is not None:
        try:  # a bad WAV is the client's: 400 before any quota or rate limit is spent
            audio = await asyncio.to_thread(assistant.load_audio, body.wav, name=body.wav_name, max_seconds=MAX_AUDIO_S)
        except GuimoError as e:
            raise ApiError(400, f"file: {e}", code="invalid_audio", param="file") from None
    adm = await admit(state, principal, rs, model_name=body.model, endpoint="assistant", tokens=1)
    try:
        asr, timings, transcript = {}, {}, body.text or ""
        if audio is not None:
            transcript, asr, timings = await asyncio.to_thread(assistant.transcribe, audio)
        commands = []
        if transcript:
            t0 = time.perf_counter()
            ((commands,),) = await run_jobs(adm, [ListJob([transcript])])
            timings["nlu"] = (time.perf_counter() - t0) * 1000  # queueing included: what the client waited
        turn = await asyncio.to_thread(assistant.act, transcript, commands, dry_run=body.dry_run, asr=asr, timings=timings)
        states = {} if body.dry_run else await asyncio.to_thread(assistant.states, turn)
        await record(state, adm, prompt_tokens=0, completion_tokens=0, units=1)
        rs["units"] = 1
    finally:
        adm.release()
    out = AssistantResponse(id=new_id("turn"), created=now(), model=body.model, transcript=turn.transcript,
                            commands=[c.to_dict() for c in turn.commands], actions=[public_action(turn, a) for a in turn.actions],
                            states=states, reply=turn.reply, asr=turn.asr, timings_ms=turn.timings_ms, dry_run=body.dry_run,
                            usage={"inputs": 1, "audio_seconds": float(turn.asr.get("audio_s", 0.0))})
    return json_response(out, adm.headers)


async def read_input(request: Request) -> Input:
    """The request as text or WAV bytes: JSON (``AssistantRequest``) or a multipart form with ``file``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request)
    if ctype not in ("application/json", ""):
        raise ApiError(400, f"Send JSON ('Content-Type: application/json') with 'text', or a multipart form with the WAV as 'file'; "
                            f"got Content-Type {ctype}.", code="invalid_request", param=None)
    raw = await request.body()
    try:
        body = AssistantRequest.model_validate_json(raw or b"null")
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    if not body.text.strip():
        raise ApiError(400, "'text' is empty.", code="invalid_value", param="text")
    return Input(body.model, body.dry_run, text=" ".join(body.text.split()))


async def _read_form(request: Request) -> Input:
    form = await request.form()
    try:
        model = form.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ApiError(400, "The form has no 'model' field (curl -F model=NAME).", code="missing_field", param="model")
        dry_run = str(form.get("dry_run", "false")).strip().lower()
        if dry_run not in ("true", "false", "1", "0"):
            raise ApiError(400, f"'dry_run' must be true or false, got {dry_run!r}.", code="invalid_value", param="dry_run")
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "The form has no WAV file under 'file' (curl -F file=@command.wav); send typed text as JSON.",
                           code="missing_field", param="file")
        data = await upload.read()
        if not data:
            raise ApiError(400, f"file: the uploaded file {upload.filename or ''} is empty.".replace("  ", " "),
                           code="invalid_audio", param="file")
        return Input(model.strip(), dry_run in ("true", "1"), wav=data, wav_name=upload.filename or "<upload>")
    finally:
        await form.close()


def assistant_homes(state):
    """The app's per-tenant homes (``guimo.serve.assistants.AssistantHomes``), made on the first assistant request."""
    if state.assistants is None:
        from guimo.serve.assistants import AssistantHomes

        state.assistants = AssistantHomes(state.settings.assistant_path())
    return state.assistants


def public_action(turn, action) -> dict:
    """An Action without its nested command (the response lists commands once; ``command`` is its index)."""
    d = action.to_dict()
    d["command"] = next((i for i, c in enumerate(turn.commands) if c is action.command), -1)
    d["group"] = [{k: v for k, v in member.items() if k not in ("command", "group")} for member in d.get("group", [])]
    return d

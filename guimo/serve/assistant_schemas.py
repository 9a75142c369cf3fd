"""Request and response bodies of /v1/assistant (issue #24).

The request is JSON (``AssistantRequest``: typed text) or a multipart form (fields ``model``,
``dry_run`` and a WAV under ``file``); both become one turn, answered as ``AssistantResponse``:
the ``Turn`` of ``guimo.assistant.core`` plus the touched devices' states and the usage billed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AssistantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="a served `assistant` run")
    text: str = Field(max_length=2000, description='the utterance, e.g. "turn off the kitchen lights and set the bedroom to 21 degrees"')
    dry_run: bool = Field(False, description="plan the actions and say what would happen, but change no device")


class CommandPublic(BaseModel):
    text: str = Field(description="the part of the utterance this command was read from")
    intent: str
    confidence: float = Field(description="calibrated probability of the intent")
    slots: dict[str, str] = Field(description="slot -> the words as spoken")
    slot_confidences: dict[str, float]
    out_of_scope: bool
    language: str


class DeviceAction(BaseModel):
    status: str = Field(description="done (applied), dry_run (would be applied), clarify (the reply asks back), rejected (out of scope)")
    device: str | None = Field(description="the device id in the home, when one was resolved")
    changes: dict[str, Any] = Field(description="attribute -> new value")
    state: dict[str, Any] = Field(description="the device's state after the action (a dry run: what it would be)")
    reply: str


class ActionPublic(DeviceAction):
    command: int = Field(description="index of the command in 'commands'")
    group: list[DeviceAction] = Field(default_factory=list, description=(
        "a command over several devices ('turn off all the lights'): one entry per device; device is then null"))


class AssistantUsage(BaseModel):
    inputs: int = 1
    audio_seconds: float = 0.0


class AssistantResponse(BaseModel):
    id: str
    object: Literal["assistant.turn"] = "assistant.turn"
    created: int
    model: str
    transcript: str = Field(description="the text the commands were read from (the recogniser's output for speech)")
    commands: list[CommandPublic]
    actions: list[ActionPublic]
    states: dict[str, dict[str, Any]] = Field(description="device id -> state now, for every device an action touched")
    reply: str
    asr: dict[str, Any] = Field(description="speech input: recogniser mode (grammar|lm), confidence, ms, audio_s")
    timings_ms: dict[str, float] = Field(description="ms per stage: audio, asr, nlu, device, total")
    dry_run: bool
    usage: AssistantUsage

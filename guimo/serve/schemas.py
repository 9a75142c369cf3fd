"""Request and response bodies: OpenAI's shapes where an OpenAI endpoint fits, ours for the rest.

Limits that depend on the server's settings (max_tokens, n, number of inputs) are checked in
the routes, so the error can name the configured limit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


# -- models ------------------------------------------------------------------------------------
class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    serve_kind: str
    endpoints: list[str]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]


# -- completions -------------------------------------------------------------------------------
class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    prompt: str | list[str] = Field(description="a string or a list of strings (token arrays are not supported)")
    max_tokens: int = Field(16, ge=1, description="tokens to generate per choice (server limit applies)")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, description="extension: sample only among the k most likely tokens")
    n: int = Field(1, ge=1, description="choices per prompt (server limit applies)")
    stop: str | list[str] | None = Field(None, description="up to 4 stop strings")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: str | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


# -- embeddings --------------------------------------------------------------------------------
class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] = Field(description="a string or a list of strings")
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# -- recommendations ---------------------------------------------------------------------------
class RecommendationRequest(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    histories: list[list[str]] = Field(min_length=1, description="each user's item ids, oldest first")
    k: int = Field(10, ge=1, le=1000, description="items to return per history")
    exclude_seen: bool = Field(True, description="leave out items already in the history")
    allow_unknown: bool = Field(False, description=(
        "a history none of whose items is in the model's catalogue gets the most popular items; "
        "without this it is a 400 error (code 'unknown_items') naming the ids and what known ids look like"))


class Recommendation(BaseModel):
    index: int
    items: list[str]
    scores: list[float]
    unknown_items: list[str] = Field(default_factory=list, description=(
        "ids of this history that are not in the model's catalogue: left out of the scoring, never silently"))


class InputUsage(BaseModel):
    inputs: int


class RecommendationResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    model: str
    data: list[Recommendation]
    usage: InputUsage
    hint: str | None = Field(None, description="set when a history held unknown ids: what the catalogue's ids look like")


# -- classifications ---------------------------------------------------------------------------
class ClassificationRequest(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    input: list[str | dict[str, Any]] = Field(min_length=1, description="texts or feature records, as the model expects")


class Classification(BaseModel):
    index: int
    label: str
    scores: dict[str, float]


class ClassificationResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    model: str
    data: list[Classification]
    usage: InputUsage


# -- usage -------------------------------------------------------------------------------------
class UsageLine(BaseModel):
    model: str
    endpoint: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    units: int
    cost: float


class UsageReport(BaseModel):
    object: Literal["usage"] = "usage"
    tenant: str
    month: str | None
    currency: str
    data: list[UsageLine]
    total_cost: float

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
    top_k: int | None = Field(None, ge=1, description="return only the k most probable labels in scores (all when absent)")
    explain: bool = Field(False, description="tabular runs: add each row's explanation (the columns pushing its score up or down)")
    explain_top: int | None = Field(None, ge=1, description="with explain: only the k columns with the largest attributions (all when absent)")


class FeatureAttribution(BaseModel):
    feature: str
    value: Any = Field(description="the row's value (null when missing)")
    attribution: float = Field(description="the transformer's Integrated Gradients share of output - baseline_output")
    tree: float | None = Field(description="the LightGBM baseline's TreeSHAP contribution to its raw score (null: the run saved no booster)")


class Explanation(BaseModel):
    features: list[FeatureAttribution] = Field(description="largest |attribution| first")
    output: float = Field(description="the explained output (units)")
    baseline_output: float = Field(description="the same output for the reference row: training medians, unseen categories")
    completeness_error: float = Field(description="|sum of attributions - (output - baseline_output)|")
    explained: str | None = Field(description="the class whose score is explained (null for regression)")
    tree_raw_score: float | None
    tree_expected: float | None
    units: str


class Classification(BaseModel):
    index: int
    label: str
    confidence: float = Field(description="the calibrated probability of label (the top one)")
    out_of_scope: bool = Field(description=(
        "true when the model judges the input to be none of its labels (its confidence is below the threshold "
        "chosen on validation data); label is then still the most probable one"))
    scores: dict[str, float] = Field(description="label -> probability, most probable first")
    explanation: Explanation | None = Field(None, description="only when the request asked explain: true (tabular runs)")


class ClassificationResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    model: str
    data: list[Classification]
    usage: InputUsage


# -- collections and search ------------------------------------------------------------------
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    text_field: str = Field("text", min_length=1, max_length=200, description="the record field that is indexed")
    id_field: str = Field("id", min_length=1, max_length=200, description="the record field that holds each document's id")
    dense: bool = Field(True, description="also index embeddings for dense and hybrid search (needs an encoder on the server)")
    encoder: str | None = Field(None, max_length=200, description="a served encoder's name (GET /v1/models); default: the server's default encoder")


class CollectionPublic(BaseModel):
    object: Literal["collection"] = "collection"
    name: str
    documents: int
    text_field: str
    id_field: str
    dense: bool
    encoder: str | None
    modes: list[str] = Field(description="the search modes this collection answers")


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CollectionPublic]


class CollectionDeleted(BaseModel):
    object: Literal["collection.deleted"] = "collection.deleted"
    name: str
    deleted: bool = True


class DocumentsAdd(BaseModel):
    records: list[dict[str, Any]] = Field(min_length=1, description=(
        "records with the collection's id and text fields; the other fields are metadata to filter on. "
        "An id already in the collection is replaced"))


class DocumentsDelete(BaseModel):
    ids: list[str | int] = Field(min_length=1, description="ids of the documents to delete (unknown ids are ignored)")


class DocumentsResult(BaseModel):
    object: Literal["collection.documents"] = "collection.documents"
    collection: str
    added: int = 0
    deleted: int = 0
    documents: int = Field(description="documents in the collection after this call")
    usage: InputUsage


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(pattern=NAME_PATTERN)
    query: str | None = Field(None, description="one query (or give queries)")
    queries: list[str] | None = Field(None, description="many queries in one call (server limit applies)")
    k: int = Field(10, ge=1, le=1000, description="hits per query")
    mode: Literal["bm25", "dense", "hybrid"] | None = Field(None, description="default: hybrid when the collection is dense, else bm25")
    filter: dict[str, str | int | float | bool | None] | None = Field(None, description="keep documents whose metadata field equals each value")
    include_text: bool = Field(False, description="return each hit's text")


class SearchHit(BaseModel):
    id: str
    score: float = Field(description="higher is better; comparable only within one query and mode")
    metadata: dict[str, Any]
    text: str | None = Field(None, description="the document's text; present only when the request set include_text")


class SearchResult(BaseModel):
    index: int
    hits: list[SearchHit]


class SearchResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    collection: str
    mode: str
    data: list[SearchResult]
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

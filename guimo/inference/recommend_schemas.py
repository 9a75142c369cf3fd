"""Request and response bodies of POST /v1/recommendations (pydantic; imported by the server)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class RecommendRequest(BaseModel):
    """Either ``histories`` (live sessions: item ids oldest first) or ``users`` (known user ids)."""

    histories: list[list[str]] | None = Field(default=None, description="one item-id history per case, oldest first")
    users: list[str] | None = Field(default=None, description="known user ids; their stored histories are used")
    k: int = Field(default=10, ge=1, le=1000, description="items per case")
    exclude_seen: bool = Field(default=True, description="never return an item already in the history")

    @model_validator(mode="after")
    def _one_source(self) -> "RecommendRequest":
        if (self.histories is None) == (self.users is None):
            raise ValueError("give exactly one of 'histories' or 'users'")
        if len(self.histories or self.users or []) == 0:
            raise ValueError("give at least one history or user")
        return self


class Recommendation(BaseModel):
    items: list[str] = Field(description="recommended item ids, best first")
    scores: list[float] = Field(description="model scores of those items (higher is better)")
    unknown_items: list[str] = Field(default_factory=list, description="ids of the history not in the catalogue (left out of the scoring)")


class RecommendResponse(BaseModel):
    model: str = Field(description="the run that answered")
    recommendations: list[Recommendation] = Field(description="one per requested history or user, in order")

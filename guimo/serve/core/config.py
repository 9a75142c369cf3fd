"""The server's settings: one pydantic-settings object, read from ``GUIMO_SERVE_*`` variables.

Environment variables are how `guimo serve` hands its flags to every uvicorn worker process, so
``Settings()`` in a worker sees exactly what the command line said.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUIMO_SERVE_", extra="ignore")

    runs: list[str] = Field(default_factory=list, description="run directories to serve, each 'PATH' or 'NAME=PATH'")
    encoders: list[str] = Field(default_factory=list, description=(
        "text encoders served without a run, each 'NAME' (the packaged all-minilm-l6-v2) or 'NAME=FOLDER' "
        "(a sentence-transformers folder); /v1/embeddings answers under NAME"))
    default_encoder: str | None = Field(default=None, description=(
        "the encoder a new collection uses for dense search when it names none (one of `encoders`); "
        "None: the first of `encoders`, else collections are keyword-only (BM25) unless they name a folder"))
    collections_dir: str | None = Field(default=None, description=(
        "where tenants' search collections live (<dir>/<tenant id>/<name>); None: 'collections' beside the "
        "SQLite ledger file (by default in the user data directory)"))
    assistant_dir: str | None = Field(default=None, description=(
        "where tenants' smart-home device states live for /v1/assistant (<dir>/<tenant id>/state.sqlite, and an optional "
        "home.toml of the tenant's own); None: 'assistant' beside the SQLite ledger file (by default in the user data directory)"))
    max_documents: int = Field(default=1000, ge=1, description="most documents in one /v1/collections/{name}/documents call (more: 413)")
    db_url: str | None = Field(default=None, description="ledger database URL; None: SQLite in the user data directory")
    host: str = Field(default="127.0.0.1", description="address to bind (loopback by default)")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port")
    device: str = Field(default="auto", description="where the models run: auto (the GPU when torch sees one), cpu, cuda or cuda:N")
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes (limits other than the quota are per worker)")
    batching: bool = Field(default=True, description="dynamic micro-batching; False runs one request per model call")
    max_batch: int = Field(default=32, ge=1, description="largest batch one model call takes")
    max_wait_ms: float = Field(default=5.0, ge=0, description="how long the first request of a batch waits for company (not while the previous batch held one request)")
    queue_size: int = Field(default=256, ge=1, description="requests waiting per model before new ones are shed (503)")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body; larger gets 413")
    max_tokens_limit: int = Field(default=1024, ge=1, description="largest max_tokens a completion may ask for")
    max_n: int = Field(default=8, ge=1, description="largest n (choices per prompt)")
    max_inputs: int = Field(default=64, ge=1, description="most prompts/texts/histories in one request")
    max_concurrent_default: int = Field(default=32, ge=1, description="concurrent requests per key when the key sets none")
    shutdown_timeout_s: float = Field(default=30.0, ge=0, description="how long a graceful shutdown waits for in-flight requests")
    key_cache_s: float = Field(default=2.0, ge=0, description="how long a checked key is trusted before the ledger is asked again (revocation delay)")
    log_requests: bool = Field(default=True, description="one JSON log line per request on stderr")
    echo_request_id: bool = Field(default=True, description="add X-Request-ID to responses (off behind Ray Serve, whose proxy adds the same id)")
    console: bool = Field(default=False, description="serve the web console at /console (guimo.serve.console)")
    console_session_s: float = Field(default=8 * 3600, gt=0, description="how long a console sign-in lasts before the user signs in again")
    console_runs_dir: str = Field(default="runs", description="where the console's scale page looks for the latest `guimo scale` report")
    console_throughput: str | None = Field(default=None, description=(
        "a load benchmark JSON (bench/results/serve_load.json) for the console's serving-cost figures, as `guimo economics --throughput`"))

    def collections_path(self) -> Path:
        """The collections folder (not created here): ``collections_dir``; else ``collections`` beside
        the SQLite ledger file (a private ledger gets private collections); else, with a PostgreSQL
        ledger, in the user data directory."""
        if self.collections_dir:
            return Path(self.collections_dir)
        from guimo.serve.db import normalise_url

        url = normalise_url(self.db_url)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.split("sqlite:///", 1)[1]).parent / "collections"
        from platformdirs import user_data_dir

        return Path(user_data_dir("guimo", appauthor=False)) / "collections"

    def assistant_path(self) -> Path:
        """The tenants' homes for /v1/assistant (not created here): ``assistant_dir``; else ``assistant``
        beside the SQLite ledger file (as the collections), or in the user data directory."""
        if self.assistant_dir:
            return Path(self.assistant_dir)
        from guimo.serve.db import normalise_url

        url = normalise_url(self.db_url)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.split("sqlite:///", 1)[1]).parent / "assistant"
        from platformdirs import user_data_dir

        return Path(user_data_dir("guimo", appauthor=False)) / "assistant"

    def to_env(self) -> dict[str, str]:
        """The ``GUIMO_SERVE_*`` variables from which ``Settings()`` in another process reads these settings back."""
        import json

        return {f"GUIMO_SERVE_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
                for name, value in self.model_dump().items() if value is not None}

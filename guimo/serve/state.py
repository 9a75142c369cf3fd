"""What the app holds while it runs (one per process): settings, ledger, models, limits, metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from guimo.serve.core.config import Settings
from guimo.serve.limits import Limiter
from guimo.serve.metrics import Metrics
from guimo.serve.registry import ServedModel


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    models: dict[str, ServedModel]
    limiter: Limiter
    metrics: Metrics
    prices: Any  # guimo.scale.prices.Prices
    collections: Any = None  # guimo.serve.collections.CollectionStore: the tenants' search collections
    assistants: Any = None  # guimo.serve.assistants.AssistantHomes: the tenants' homes (made by the first /v1/assistant request)
    ready: bool = False
    writer: Any = None  # guimo.serve.ledger_writer.LedgerWriter while the app runs (started by the lifespan)
    key_cache: dict[str, tuple[float, Any]] = field(default_factory=dict)  # sha256 -> (checked at, Principal)
    key_checks: dict[str, asyncio.Future] = field(default_factory=dict)  # sha256 -> the ledger lookup in flight
    # Ledger writes that outlive their request (a stream whose client left): shutdown awaits them.
    background: set[asyncio.Task] = field(default_factory=set)

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

"""The FastAPI app: ``create_app(settings)`` for `guimo serve`, ``create_app_from_env`` for uvicorn
workers (``uvicorn --factory guimo.serve.main:create_app_from_env``), both reading one Settings.

Startup loads the models and starts one batcher per (model, endpoint); readiness turns on last.
Shutdown (after uvicorn has drained in-flight requests): readiness off, batchers finish what is
queued, background ledger writes finish, the ledger writer thread stops, SQLite's write-ahead
log is checkpointed.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI

from guimo.errors import GuimoError
from guimo.serve import errors
from guimo.serve.api.routes import (assistant, classifications, collections, completions, embeddings, health, metrics, models,
                                    recommendations, search, usage)
from guimo.serve.batching import Batcher
from guimo.serve.collections import CollectionStore
from guimo.serve.core.config import Settings
from guimo.serve.ledger_writer import LedgerWriter
from guimo.serve.limits import Limiter
from guimo.serve.metrics import Metrics
from guimo.serve.middleware import RequestContext
from guimo.serve.registry import ServedModel, batch_function
from guimo.serve.state import AppState

log = logging.getLogger("guimo.serve")
ROUTERS = {"completions": completions, "embeddings": embeddings, "recommendations": recommendations,
           "classifications": classifications, "assistant": assistant}


def create_app(settings: Settings | None = None, *, served: dict[str, ServedModel] | None = None, engine=None) -> FastAPI:
    """Build the app. ``served`` (tests) skips loading runs and encoders; ``engine`` reuses a ledger engine.

    Every app serves /v1/collections and /v1/search (each tenant's collections under
    ``settings.collections_path()``); dense collections use the served text encoders.
    """
    from guimo.serve import db
    from guimo.serve.billing import load_prices
    from guimo.serve.registry import load_encoders, load_models

    settings = settings or Settings()
    if served is None:
        from guimo.device import pick_device

        device = str(pick_device(settings.device))
        served = load_models(settings.runs, device=device)
        for name, m in load_encoders(settings.encoders, device=device).items():
            if name in served:
                raise GuimoError(f"--encoder {name}: a run is already served under that name")
            served[name] = m
    engine = engine or db.make_engine(settings.db_url)
    # encoders for dense collections; the first --encoder (else the first encoder run) is the default
    first = [n for n in (e.partition("=")[0] for e in settings.encoders) if n in served]
    encoders = {m.name: m.encoder_spec for m in sorted(served.values(), key=lambda m: m.name not in first) if m.encoder_spec}
    state = AppState(settings=settings, engine=engine, models=served, limiter=Limiter(settings.max_concurrent_default),
                     metrics=Metrics(), prices=load_prices(),
                     collections=CollectionStore(settings.collections_path(), encoders, settings.default_encoder))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.writer = LedgerWriter(engine, on_group=state.metrics.ledger)
        executors = []
        for m in served.values():
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{m.name}")
            executors.append(pool)
            for endpoint in m.endpoints:
                b = Batcher(m.name, batch_function(m, endpoint), max_batch=settings.max_batch if settings.batching else 1,
                            max_wait_ms=settings.max_wait_ms if settings.batching else 0.0, queue_size=settings.queue_size,
                            observer=state.metrics, executor=pool)
                b.start()
                m.batchers[endpoint] = b
        state.ready = True
        log.info("ready", extra={"model": ",".join(sorted(served))})
        try:
            yield
        finally:
            state.ready = False
            for m in served.values():
                for b in m.batchers.values():
                    await b.close(settings.shutdown_timeout_s)
                m.batchers.clear()
            if state.background:
                await asyncio.wait(list(state.background), timeout=settings.shutdown_timeout_s)
            await asyncio.to_thread(state.collections.close)  # collection writes in progress commit
            if state.assistants is not None:  # the tenants' device-state files (/v1/assistant)
                await asyncio.to_thread(state.assistants.close)
            for pool in executors:
                pool.shutdown(wait=True)
            await asyncio.to_thread(state.writer.close, settings.shutdown_timeout_s)
            await asyncio.to_thread(db.checkpoint, engine)
            log.info("stopped: queues drained, ledger flushed")

    app = FastAPI(title="guimo", version=_version(), lifespan=lifespan,
                  description="OpenAI-compatible endpoints where they fit, scenario endpoints for the rest.")
    app.state.guimo = state
    errors.install(app)
    for r in (health, metrics, models, usage, collections, search):
        _add_routes(app, r.router)
    needed = {e for m in served.values() for e in m.endpoints}
    for name, module in ROUTERS.items():  # the route table follows the served models' kinds
        if name in needed:
            _add_routes(app, module.router)
    if settings.console:  # the web console's pages at /console (issue #26), over the same state and service functions
        from guimo.serve.console import install as install_console

        install_console(app)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes, metrics=state.metrics, log_requests=settings.log_requests,
                       echo_request_id=settings.echo_request_id)
    return app


def _add_routes(app: FastAPI, router) -> None:
    """Put a module's routes straight into the app's route table (same routes, same OpenAPI).

    ``include_router`` would keep each module's router as a nested router that FastAPI re-walks
    on every request to check whether routes changed: ~15% of the event loop's time under load.
    """
    app.router.routes.extend(router.routes)


def create_app_from_env() -> FastAPI:
    from guimo.serve import logs

    settings = Settings()
    logs.configure()
    return create_app(settings)


def _version() -> str:
    import guimo

    return guimo.__version__

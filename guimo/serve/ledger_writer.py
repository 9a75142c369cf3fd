"""Group commit for the usage ledger: one thread owns all of the server's ledger writes.

A request hands its event to ``LedgerWriter.record`` and awaits the outcome; it is answered only
after the transaction holding its event has committed. The thread writes every event that queued
up while its previous transaction ran in one ``ledger.record_many`` transaction, so a micro-batch
of 64 finished requests costs a handful of transactions instead of 64 serialised ones (each with
its own lock wait, thread hand-off and commit), and the event loop never runs database code.
Outcomes go back to the event loop in one callback per group.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Callable

from sqlalchemy import Engine

from guimo.serve import ledger

log = logging.getLogger("guimo.serve")
_STOP = object()


class LedgerWriter:
    def __init__(self, engine: Engine, *, max_group: int = 512,
                 on_group: Callable[[int, float], None] | None = None) -> None:
        self.engine, self.max_group, self.on_group = engine, max_group, on_group
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        self.groups = 0
        self.writes = 0

    async def record(self, write: ledger.Write) -> int:
        """Append ``write``'s event once it is durable; raises ``QuotaExceeded``/``DuplicateRequest``.

        If the awaiting request is cancelled, the write still happens (the work was done).
        """
        if not self._thread.is_alive():
            raise RuntimeError("the ledger writer has stopped")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((write, loop, fut))
        return await fut

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the thread (blocking: call it off the event loop)."""
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            t0 = time.perf_counter()
            try:
                outcomes: list = ledger.record_many(self.engine, [w for w, _, _ in group])
            except Exception as e:  # the database failed: every request of this group gets the error
                log.error("ledger write failed: %s: %s", type(e).__name__, e)
                outcomes = [e] * len(group)
            self.groups += 1
            self.writes += len(group)
            if self.on_group is not None:
                self.on_group(len(group), time.perf_counter() - t0)
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for (_, loop, fut), out in zip(group, outcomes):
                by_loop.setdefault(loop, []).append((fut, out))
            for loop, pairs in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, pairs)
                except RuntimeError:  # that loop has closed: nobody is waiting any more
                    pass


def _settle(pairs: list) -> None:
    for fut, out in pairs:
        if fut.done():  # the request was cancelled while its event was being written
            continue
        if isinstance(out, BaseException):
            fut.set_exception(out)
        else:
            fut.set_result(out)

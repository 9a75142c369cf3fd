"""Dynamic micro-batching per model: many concurrent requests, one model call.

A bounded asyncio queue feeds one worker task. The worker blocks for the first request, then
drains more until it has ``max_batch`` or ``max_wait_ms`` has passed (it skips that wait while
traffic is too thin to batch: when the previous batch, too, held a single request), drops requests whose caller
has gone (cancelled futures), and runs the model function in a single worker thread so the
event loop keeps serving. A failing batch fails only its own requests. A full queue sheds load:
``Overloaded`` (the routes answer 503 with Retry-After) instead of growing latency without bound.
``max_batch=1`` is the unbatched baseline with the same queue and shedding.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol


class Overloaded(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatchObserver(Protocol):
    def batch(self, model: str, size: int, waits_s: list[float], run_s: float) -> None: ...
    def depth(self, model: str, n: int) -> None: ...
    def shed(self, model: str) -> None: ...


class Batcher:
    """``run_batch(items) -> results`` (same length; an Exception instance fails just that item)."""

    def __init__(self, name: str, run_batch: Callable[[list[Any]], list[Any]], *, max_batch: int, max_wait_ms: float,
                 queue_size: int, observer: BatchObserver | None = None, executor: ThreadPoolExecutor | None = None) -> None:
        self.name, self.run_batch = name, run_batch
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1000.0
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.observer = observer
        # One thread per model: its endpoints share it, so model calls never overlap.
        self.own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{name}")
        self.busy = False
        self.closing = False
        self.batch_s = 0.05  # running mean of one model call, for Retry-After
        self.batches = 0
        # The last batch held one request: at that load waiting ``max_wait_ms`` finds no company and
        # only adds latency (on a busy machine a timer sleep also costs a wake-up: measured ~20 ms at
        # concurrency 1). Requests that arrive while a batch runs still queue and form the next batch.
        self.alone = True
        self.items = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def enqueue(self, item: Any) -> asyncio.Future:
        """Queue ``item``; the future resolves with its result. ``Overloaded`` when full or closing."""
        if self.closing:
            raise Overloaded(f"Model {self.name} is shutting down.", 5.0)
        fut = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, fut, time.monotonic()))
        except asyncio.QueueFull:
            if self.observer:
                self.observer.shed(self.name)
            wait = self.queue.maxsize / self.max_batch * self.batch_s
            raise Overloaded(f"Model {self.name} is overloaded ({self.queue.maxsize} requests waiting); retry later.",
                             max(1.0, min(30.0, math.ceil(wait)))) from None
        if self.observer:
            self.observer.depth(self.name, self.depth)
        return fut

    async def submit(self, item: Any) -> Any:
        return await self.enqueue(item)

    async def _collect(self) -> list[tuple[Any, asyncio.Future, float]]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + (0.0 if self.alone else self.max_wait_s)
        while len(batch) < self.max_batch:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        self.alone = len(batch) == 1
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self.busy = True
            try:
                live = [(item, fut, t) for item, fut, t in batch if not fut.done()]  # skip callers that left
                if self.observer:
                    self.observer.depth(self.name, self.depth)
                if not live:
                    continue
                t0 = time.monotonic()
                try:
                    results = await loop.run_in_executor(self.executor, self.run_batch, [item for item, _, _ in live])
                    if len(results) != len(live):
                        raise RuntimeError(f"model returned {len(results)} results for {len(live)} inputs")
                except Exception as e:  # the whole batch failed: only its own requests see the error
                    results = [e] * len(live)
                run_s = time.monotonic() - t0
                self.batch_s = 0.9 * self.batch_s + 0.1 * run_s
                self.batches += 1
                self.items += len(live)
                if self.observer:
                    self.observer.batch(self.name, len(live), [t0 - t for _, _, t in live], run_s)
                for (_, fut, _), r in zip(live, results):
                    if fut.done():
                        continue
                    if isinstance(r, BaseException):
                        fut.set_exception(r)
                    else:
                        fut.set_result(r)
            finally:
                self.busy = False

    async def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests, finish the queued ones (up to ``timeout_s``), stop the worker."""
        self.closing = True
        deadline = time.monotonic() + timeout_s
        while (self.depth or self.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for item, fut, _ in _drain(self.queue):
            if not fut.done():
                fut.set_exception(Overloaded(f"Model {self.name} shut down before this request ran.", 5.0))
        if self.own_executor:
            self.executor.shutdown(wait=True)


def _drain(queue: asyncio.Queue) -> list:
    out = []
    while True:
        try:
            out.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            return out

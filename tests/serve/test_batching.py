"""The micro-batcher: batch formation, skipping cancelled callers, failure isolation, shedding."""

from __future__ import annotations

import asyncio
import time

import pytest

from guimo.serve.batching import Batcher, Overloaded


def run(coro):
    return asyncio.run(coro)


def test_concurrent_items_share_batches_up_to_max_batch():
    sizes = []

    def model(items):
        sizes.append(len(items))
        time.sleep(0.01)
        return [x * 2 for x in items]

    async def main():
        b = Batcher("m", model, max_batch=4, max_wait_ms=20, queue_size=100)
        b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.close()
        return out

    assert run(main()) == [i * 2 for i in range(10)]
    assert max(sizes) == 4 and sum(sizes) == 10 and len(sizes) <= 4


def test_waits_for_company_only_when_traffic_has_shown_some():
    sizes = []

    def model(items):
        sizes.append(len(items))
        return items

    async def main():
        b = Batcher("m", model, max_batch=2, max_wait_ms=60_000, queue_size=100)
        b.start()
        # lone requests (no company so far): answered at once, not after the 60 s wait
        assert await asyncio.wait_for(b.submit(1), 30) == 1
        assert await asyncio.wait_for(b.submit(2), 30) == 2
        await asyncio.gather(b.submit(3), b.submit(4))  # arrive together: one batch
        # company seen: the next lone request waits, and one arriving 50 ms later joins its batch
        first = asyncio.ensure_future(b.submit(5))
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(asyncio.gather(first, b.submit(6)), 30) == [5, 6]
        await b.close()

    run(main())
    assert sizes == [1, 1, 2, 2]


def test_unbatched_runs_one_at_a_time():
    sizes = []

    async def main():
        b = Batcher("m", lambda items: sizes.append(len(items)) or items, max_batch=1, max_wait_ms=0, queue_size=100)
        b.start()
        await asyncio.gather(*(b.submit(i) for i in range(5)))
        await b.close()

    run(main())
    assert sizes == [1] * 5


def test_failed_batch_fails_only_its_requests_and_per_item_errors():
    def model(items):
        if "bad" in items:
            raise ValueError("bad batch")
        return [ValueError("odd") if x == "odd" else x.upper() for x in items]

    async def main():
        b = Batcher("m", model, max_batch=2, max_wait_ms=30, queue_size=10)
        b.start()
        r = await asyncio.gather(b.submit("bad"), b.submit("x"), b.submit("y"), b.submit("odd"), return_exceptions=True)
        await b.close()
        return r

    r = run(main())
    assert isinstance(r[0], ValueError) and isinstance(r[1], ValueError)  # the first batch: bad + x
    assert r[2] == "Y" and isinstance(r[3], ValueError) and str(r[3]) == "odd"


def test_cancelled_callers_are_skipped_and_full_queue_sheds():
    seen = []

    def model(items):
        seen.extend(items)
        time.sleep(0.05)
        return items

    async def main():
        b = Batcher("m", model, max_batch=1, max_wait_ms=0, queue_size=2)
        b.start()
        first = asyncio.ensure_future(b.submit("first"))
        await asyncio.sleep(0.01)  # "first" is running; the queue is empty
        gone = b.enqueue("gone")
        kept = b.enqueue("kept")
        with pytest.raises(Overloaded) as e:
            b.enqueue("shed")
        assert e.value.retry_after >= 1
        gone.cancel()
        await asyncio.gather(first, kept)
        await b.close()
        with pytest.raises(Overloaded, match="shutting down"):
            b.enqueue("late")

    run(main())
    assert seen == ["first", "kept"]

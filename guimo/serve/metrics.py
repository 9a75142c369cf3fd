"""Prometheus metrics, one registry per app (so tests can build many apps in one process).

With several uvicorn workers each worker exposes its own counters; scrape each replica or sum.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("guimo_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram("guimo_request_seconds", "request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("guimo_tokens", "tokens processed", ["model", "kind"], registry=r)
        self.batch_size = Histogram("guimo_batch_size", "requests per model call", ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.batch_wait = Histogram("guimo_batch_wait_seconds", "time a request waited in the queue", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_run = Histogram("guimo_batch_run_seconds", "time of one model call", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("guimo_queue_depth", "requests waiting per model", ["model"], registry=r)
        self.shed_total = Counter("guimo_shed", "requests refused because the model queue was full", ["model"], registry=r)
        self.ledger_group = Histogram("guimo_ledger_group_size", "usage events per ledger transaction (group commit)",
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.ledger_commit = Histogram("guimo_ledger_commit_seconds", "time of one ledger transaction", buckets=LATENCY_BUCKETS, registry=r)
        self._children: dict[tuple, object] = {}

    def child(self, metric, *labels: str):
        """``metric.labels(*labels)``, looked up once: prometheus_client's ``labels`` costs ~5 us a call,
        and every request makes several (one was ~4% of the event loop's time under load)."""
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    # BatchObserver
    def batch(self, model: str, size: int, waits_s: list[float], run_s: float) -> None:
        self.child(self.batch_size, model).observe(size)
        self.child(self.batch_run, model).observe(run_s)
        wait = self.child(self.batch_wait, model)
        for w in waits_s:
            wait.observe(w)

    def depth(self, model: str, n: int) -> None:
        self.child(self.queue_depth, model).set(n)

    def shed(self, model: str) -> None:
        self.child(self.shed_total, model).inc()

    # LedgerWriter.on_group (called from the writer thread; prometheus_client is thread-safe)
    def ledger(self, size: int, seconds: float) -> None:
        self.ledger_group.observe(size)
        self.ledger_commit.observe(seconds)

"""Prometheus metrics of the service: requests, items, errors by code, latency, batch sizes.

Each app gets its own registry, so two services in one process (tests) never share
counters, and ``/metrics`` shows exactly this service.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from engine.serve.batcher import BatchInfo

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: half the page, nothing a dashboard reads
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tagsmith_requests", "HTTP requests answered, by endpoint and status", ["endpoint", "status"], registry=r)
        self.items = Counter("tagsmith_items", "items tagged", ["endpoint"], registry=r)
        self.errors = Counter("tagsmith_errors", "errors answered, by code", ["code"], registry=r)
        self.latency = Histogram("tagsmith_request_seconds", "request latency", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_items = Histogram("tagsmith_batch_items", "items per decoded batch", buckets=_BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("tagsmith_batch_seconds", "time to tag one gathered batch", buckets=_LATENCY_BUCKETS, registry=r)
        self.dropped = Counter("tagsmith_dropped_items", "items whose client left before their batch started", registry=r)
        self.queued = Gauge("tagsmith_queued_items", "items queued or being tagged", registry=r)

    def on_batch(self, info: BatchInfo) -> None:
        if info.items:
            self.batch_items.observe(info.items)
            self.batch_seconds.observe(info.seconds)
        if info.dropped:
            self.dropped.inc(info.dropped)

    def render(self) -> bytes:
        return generate_latest(self.registry)

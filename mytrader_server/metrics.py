"""Prometheus metrics, one registry per app so that tests can build many apps in one process."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# 0.02: issue 14's "no event-loop pause over 20 ms" is read off this bucket
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.requests = Counter(
            "mytrader_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mytrader_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "mytrader_http_requests_in_flight", "HTTP requests being served.", registry=r
        )
        # A plain counter read at scrape time: no lock on the request path.
        self.requests_in_flight = 0
        self.in_flight.set_function(lambda: self.requests_in_flight)
        self._request_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self.db_latency = Histogram(
            "mytrader_db_query_duration_seconds",
            "Database round-trip latency by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.feed_lag = Gauge(
            "mytrader_feed_lag_seconds", "Seconds since the last market-data tick.", registry=r
        )
        # Feed steps (one tick per symbol each). Every scheduled step ends as exactly one of
        # produced, skipped or unpublished: scheduled = produced + skipped + unpublished.
        self.feed_steps_scheduled = Counter(
            "mytrader_feed_ticks_scheduled_total",
            "Market feed steps due by the fixed-rate schedule.",
            registry=r,
        )
        self.feed_steps_produced = Counter(
            "mytrader_feed_ticks_produced_total",
            "Market feed steps produced and applied by this process.",
            registry=r,
        )
        self.feed_steps_skipped = Counter(
            "mytrader_feed_ticks_skipped_total",
            "Market feed steps skipped: too far behind schedule, or the feed stalled.",
            registry=r,
        )
        self.feed_steps_unpublished = Counter(
            "mytrader_feed_ticks_unpublished_total",
            "Market feed steps not published (scale-out: lease lost or Redis unreachable).",
            registry=r,
        )
        self.feed_schedule_lag = Histogram(
            "mytrader_feed_schedule_lag_seconds",
            "How late each market feed step ran after its scheduled time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.feed_schedule_lag_now = Gauge(
            "mytrader_feed_schedule_lag_current_seconds",
            "The feed's current schedule lag (-1 when this process does not run the feed).",
            registry=r,
        )
        self.loop_lag = Histogram(
            "mytrader_event_loop_lag_seconds",
            "How much later than asked the event loop's sampling timer fired "
            "(every MYTRADER_LOOP_SAMPLE_S, 100 ms by default).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.loop_lag_now = Gauge(
            "mytrader_event_loop_lag_last_seconds",
            "The event-loop lag of the latest sample.",
            registry=r,
        )
        self.gc_pause = Histogram(
            "mytrader_gc_pause_seconds",
            "Cyclic garbage collector pauses by generation (2 = full collection).",
            ["generation"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.gc_frozen = Gauge(
            "mytrader_gc_frozen_objects",
            "Objects in the permanent generation (gc.freeze), skipped by collections.",
            registry=r,
        )
        self.hub_connections = Gauge(
            "mytrader_hub_connections", "Open hub connections by hub.", ["hub"], registry=r
        )
        self.hub_messages = Counter(
            "mytrader_hub_messages_total",
            "Hub messages by hub and direction (in, out, dropped).",
            ["hub", "direction"],
            registry=r,
        )
        self.hub_direct_writes = Counter(
            "mytrader_hub_direct_writes_total",
            "Hub messages (of direction out) framed once per tick and written straight to the "
            "socket, without the connection's writer task.",
            ["hub"],
            registry=r,
        )
        self.hub_fanout_resumed = Counter(
            "mytrader_hub_fanout_resumed_total",
            "Times a tick's fan-out gave the event loop back after its time slice and went on "
            "in a later loop iteration.",
            registry=r,
        )
        self.orders = Counter(
            "mytrader_orders_total", "Order state changes by event.", ["event"], registry=r
        )
        self._before_scrape: list[Callable[[], None]] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one request. Labelled children are cached: ``labels()`` costs more
        than the increment itself, and this runs on every request."""
        key = (method, route, str(status))
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(method, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def before_scrape(self, fn: Callable[[], None]) -> None:
        self._before_scrape.append(fn)

    def render(self) -> bytes:
        for fn in self._before_scrape:
            fn()
        return generate_latest(self.registry)

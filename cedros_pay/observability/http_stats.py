"""The HTTP metrics of spec 14, counted in plain Python and rendered only when scraped.

`http_requests_total`, `http_request_duration_seconds` and `http_requests_in_flight` are
touched by every request. prometheus_client's metric objects take a lock and walk a few
layers of Python per update; here an update is a dict lookup and two additions under one
lock, and the families are built when /metrics asks (`collect`). The exposition is the
same series, names, labels and buckets as prometheus_client's own Counter, Histogram and
Gauge would give (without the `_created` samples).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

DEFAULT_BUCKETS: tuple[float, ...] = tuple(
    b for b in Histogram.DEFAULT_BUCKETS if b != float("inf"))

OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SERIES_LIMIT = 10_000


class BoundedLabel:
    """Passes the first `limit` distinct values through, then answers "other": a client
    cannot grow the series count by inventing values."""

    def __init__(self, limit: int = 200) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


class HTTPStats:
    """A Prometheus collector (register it with a registry) and the recorder feeding it.

    Requests are recorded on the event loop; /metrics renders in a worker thread, so both
    sides hold the lock, and `collect` copies before it formats.
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS, *,
                 route_limit: int = 200) -> None:
        self._bounds = tuple(sorted(buckets))
        self._route = BoundedLabel(route_limit)
        self._lock = threading.Lock()
        self._in_flight = 0
        # (method, path, status) -> [count]; (method, path) -> per-bucket counts (the last
        # one is +Inf), then the sum. Both are updated in place.
        self._counts: dict[tuple[str, str, str], list[int]] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}
        # (method, route, status) as seen -> the count and histogram it goes to, found
        # once per series (labels bounded, "other" for unknown methods and spare routes)
        self._series: dict[tuple[str, str, int], tuple[list[int], list[float]]] = {}

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def record(self, method: str, route: str, status: int, duration: float) -> None:
        """One finished request: unknown methods count as "other", routes beyond the
        limit too."""
        series = self._series.get((method, route, status))
        if series is None:
            labels = (method if method in _METHODS else OTHER, self._route(route), str(status))
            series = self._find(labels)
            if len(self._series) < _SERIES_LIMIT:
                self._series[(method, route, status)] = series
        count, hist = series
        with self._lock:
            self._in_flight -= 1
            count[0] += 1
            hist[bisect_left(self._bounds, duration)] += 1
            hist[-1] += duration

    def finished(self, method: str, path: str, status: str, duration: float) -> None:
        """One finished request under exactly these labels."""
        count, hist = self._find((method, path, status))
        with self._lock:
            self._in_flight -= 1
            count[0] += 1
            hist[bisect_left(self._bounds, duration)] += 1
            hist[-1] += duration

    def _find(self, labels: tuple[str, str, str]) -> tuple[list[int], list[float]]:
        with self._lock:
            count = self._counts.setdefault(labels, [0])
            hist = self._latency.setdefault(labels[:2], [0.0] * (len(self._bounds) + 2))
        return count, hist

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            in_flight = self._in_flight
            counts = {labels: count[0] for labels, count in self._counts.items()}
            latency = {key: list(hist) for key, hist in self._latency.items()}
        total = CounterMetricFamily("http_requests", "Total HTTP requests",
                                    labels=["method", "path", "status"])
        for labels, count in counts.items():
            total.add_metric(list(labels), count)
        yield total
        hist_family = HistogramMetricFamily("http_request_duration_seconds",
                                            "Request latency", labels=["method", "path"])
        edges = [repr(float(b)) for b in self._bounds] + ["+Inf"]  # as the client writes le
        for pair, hist in latency.items():
            cumulative, buckets = 0.0, []
            for edge, n in zip(edges, hist, strict=False):
                cumulative += n
                buckets.append((edge, cumulative))
            hist_family.add_metric(list(pair), buckets, hist[-1])
        yield hist_family
        yield GaugeMetricFamily("http_requests_in_flight", "Requests being served",
                                value=in_flight)

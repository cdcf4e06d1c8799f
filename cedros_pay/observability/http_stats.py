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


class HTTPStats:
    """A Prometheus collector (register it with a registry) and the recorder feeding it.

    Requests are recorded on the event loop; /metrics renders in a worker thread, so both
    sides hold the lock, and `collect` copies before it formats.
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self._bounds = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._in_flight = 0
        self._counts: dict[tuple[str, str, str], int] = {}  # (method, path, status)
        # (method, path) -> per-bucket counts (the last one is +Inf), then the sum
        self._latency: dict[tuple[str, str], list[float]] = {}

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def finished(self, method: str, path: str, status: str, duration: float) -> None:
        with self._lock:
            self._in_flight -= 1
            key = (method, path, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            hist = self._latency.get((method, path))
            if hist is None:
                hist = self._latency[(method, path)] = [0.0] * (len(self._bounds) + 2)
            hist[bisect_left(self._bounds, duration)] += 1
            hist[-1] += duration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            in_flight = self._in_flight
            counts = dict(self._counts)
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

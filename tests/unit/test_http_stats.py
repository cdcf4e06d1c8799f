"""HTTPStats exposes exactly what prometheus_client's own metrics would for the same
requests (apart from the `_created` timestamps, which we do not keep)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cedros_pay.observability.http_stats import HTTPStats

REQUESTS = [  # method, path, status, seconds
    ("GET", "/paywall/v1/products", "200", 0.0042),
    ("GET", "/paywall/v1/products", "200", 0.005),  # exactly on a bucket edge
    ("POST", "/paywall/v1/quote", "402", 0.0007),
    ("POST", "/paywall/v1/quote", "400", 0.3),
    ("POST", "/paywall/v1/verify", "200", 12.5),  # beyond the last edge
    ("GET", "unmatched", "404", 0.0),
]


def without_created(text: bytes) -> list[str]:
    return sorted(line for line in text.decode().splitlines() if "_created" not in line)


def test_same_exposition_as_prometheus_client() -> None:
    ours_registry = CollectorRegistry()
    stats = HTTPStats()
    ours_registry.register(stats)
    theirs_registry = CollectorRegistry()
    total = Counter("http_requests_total", "Total HTTP requests",
                    ["method", "path", "status"], registry=theirs_registry)
    latency = Histogram("http_request_duration_seconds", "Request latency",
                        ["method", "path"], registry=theirs_registry)
    in_flight = Gauge("http_requests_in_flight", "Requests being served",
                      registry=theirs_registry)
    for method, path, status, seconds in REQUESTS:
        stats.started()
        in_flight.inc()
        stats.finished(method, path, status, seconds)
        in_flight.dec()
        total.labels(method, path, status).inc()
        latency.labels(method, path).observe(seconds)
    stats.started()  # one still running
    in_flight.inc()
    assert without_created(generate_latest(ours_registry)) == without_created(
        generate_latest(theirs_registry))


def test_counts_survive_concurrent_scrapes() -> None:
    registry = CollectorRegistry()
    stats = HTTPStats()
    registry.register(stats)
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            generate_latest(registry)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for n in range(20_000):
            stats.started()
            stats.finished("GET", f"/route/{n % 50}", "200", 0.001)
    finally:
        stop.set()
        scraper.join()
    text = generate_latest(registry).decode()
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("http_requests_total{"))
    assert counted == 20_000
    assert "http_requests_in_flight 0.0" in text

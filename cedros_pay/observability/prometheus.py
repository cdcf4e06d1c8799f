"""Every metric spec 14 names, in a registry of the app's own, fed by `PrometheusHook`.

Each app gets its own `CollectorRegistry` (no process-wide singleton), so embedders and
tests can build several apps in one process. Labels that come from outside (resources,
RPC methods, tables, wallets) pass through a `BoundedLabel`, which keeps at most a fixed
number of distinct values and folds the rest into "other": a client cannot grow the
series count by inventing names. HTTP paths are route templates, never raw paths.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cedros_pay.logs import truncate_wallet
from cedros_pay.observability.hooks import (
    BaseHook,
    CircuitFailureEvent,
    CircuitStateEvent,
    DatabaseQueryEvent,
    HTTPRequestEvent,
    PaymentCompletedEvent,
    QueueSizeEvent,
    RateLimitedEvent,
    RPCCallEvent,
    StripeCallEvent,
    TxConfirmationEvent,
    WalletBalanceEvent,
    WebhookDeliveredEvent,
    WebhookFailedEvent,
)
from cedros_pay.observability.http_stats import BoundedLabel, HTTPStats

_AMOUNT_BUCKETS = (50, 100, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 100_000, 1_000_000)


class PrometheusMetrics:
    """The metric families; names and labels exactly as spec 14 lists them."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 route_limit: int = 200) -> None:
        r = self.registry = registry or CollectorRegistry()
        # HTTP
        # http_requests_total, http_request_duration_seconds, http_requests_in_flight
        self.http = HTTPStats(route_limit=route_limit)
        r.register(self.http)
        # Payments
        self.payments = Counter("payments_total", "Payment attempts",
                                ["method", "resource", "success"], registry=r)
        self.payment_amount = Histogram("payment_amount_cents", "Payment amounts in cents",
                                        ["method", "currency"], buckets=_AMOUNT_BUCKETS,
                                        registry=r)
        self.payment_duration = Histogram("payment_duration_seconds", "Payment processing time",
                                          ["method"], registry=r)
        # Stripe
        self.stripe_calls = Counter("stripe_api_calls_total", "Stripe API calls",
                                    ["operation", "status"], registry=r)
        self.stripe_duration = Histogram("stripe_api_duration_seconds", "Stripe API latency",
                                         ["operation"], registry=r)
        self.stripe_errors = Counter("stripe_errors_total", "Stripe API errors",
                                     ["operation", "error_type"], registry=r)
        # Solana
        self.rpc_calls = Counter("solana_rpc_calls_total", "Solana RPC calls",
                                 ["method", "status"], registry=r)
        self.rpc_duration = Histogram("solana_rpc_duration_seconds", "Solana RPC latency",
                                      ["method"], registry=r)
        self.tx_confirmations = Counter("solana_tx_confirmations_total",
                                        "Transaction confirmation results", ["status"],
                                        registry=r)
        self.wallet_balance = Gauge("solana_wallet_balance_sol", "Server wallet balances",
                                    ["wallet"], registry=r)
        # Webhooks
        self.webhooks = Counter("webhooks_total", "Webhook delivery attempts",
                                ["event_type", "status"], registry=r)
        self.webhook_duration = Histogram("webhook_duration_seconds", "Webhook delivery latency",
                                          ["event_type"], registry=r)
        self.webhook_queue = Gauge("webhook_queue_size", "Webhook queue size by status",
                                   ["status"], registry=r)
        self.webhook_dlq = Gauge("webhook_dlq_size", "Dead-letter queue size", registry=r)
        # Rate limits
        self.rate_limit_rejections = Counter("rate_limit_rejections_total",
                                             "Requests refused by a rate limit",
                                             ["type", "tier"], registry=r)
        # Circuit breakers
        self.breaker_state = Gauge("circuit_breaker_state",
                                   "Circuit state: 0 closed, 1 half-open, 2 open",
                                   ["service"], registry=r)
        self.breaker_failures = Counter("circuit_breaker_failures_total",
                                        "Failures seen by a circuit breaker", ["service"],
                                        registry=r)
        # Database
        self.db_queries = Counter("db_queries_total", "Database queries",
                                  ["operation", "table"], registry=r)
        self.db_duration = Histogram("db_query_duration_seconds", "Database query latency",
                                     ["operation", "table"], registry=r)
        self.db_errors = Counter("db_errors_total", "Database errors",
                                 ["operation", "table", "error"], registry=r)
        self.db_open = Gauge("db_connections_open", "Open database connections", registry=r)
        self.db_idle = Gauge("db_connections_idle", "Idle database connections", registry=r)

    def watch_pool(self, open_connections: Callable[[], float],
                   idle_connections: Callable[[], float]) -> None:
        """Read the pool gauges at scrape time from the connection pool itself."""
        self.db_open.set_function(open_connections)
        self.db_idle.set_function(idle_connections)

    def exposition(self) -> tuple[bytes, str]:
        """The text format for GET /metrics, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class PrometheusHook(BaseHook):
    """Records every event into `PrometheusMetrics` (spec 14's PrometheusHook)."""

    def __init__(self, metrics: PrometheusMetrics, label_limit: int = 200) -> None:
        self.metrics = metrics
        self._resource = BoundedLabel(label_limit)
        self._rpc_method = BoundedLabel(label_limit)
        self._operation = BoundedLabel(label_limit)
        self._event_type = BoundedLabel(label_limit)
        self._table = BoundedLabel(label_limit)
        self._wallet = BoundedLabel(label_limit)
        self._currency = BoundedLabel(50)

    def on_payment_completed(self, event: PaymentCompletedEvent) -> None:
        m = self.metrics
        resource = "cart" if event.resource_id.startswith("cart_") else event.resource_id
        m.payments.labels(event.method, self._resource(resource),
                          "true" if event.success else "false").inc()
        m.payment_duration.labels(event.method).observe(event.duration)
        if event.success and event.amount_atomic:
            m.payment_amount.labels(event.method, self._currency(event.currency.lower())
                                    ).observe(event.amount_cents)

    def on_webhook_delivered(self, event: WebhookDeliveredEvent) -> None:
        kind = self._event_type(event.event_type)
        self.metrics.webhooks.labels(kind, "success").inc()
        self.metrics.webhook_duration.labels(kind).observe(event.duration)

    def on_webhook_failed(self, event: WebhookFailedEvent) -> None:
        kind = self._event_type(event.event_type)
        self.metrics.webhooks.labels(kind, "dead_letter" if event.final else "failed").inc()
        if event.duration:
            self.metrics.webhook_duration.labels(kind).observe(event.duration)

    def on_webhook_queue_size(self, event: QueueSizeEvent) -> None:
        for status, count in event.by_status.items():
            self.metrics.webhook_queue.labels(status).set(count)
        self.metrics.webhook_dlq.set(event.dlq)

    def on_rpc_call(self, event: RPCCallEvent) -> None:
        method = self._rpc_method(event.method)
        self.metrics.rpc_calls.labels(method, "success" if event.success else "error").inc()
        self.metrics.rpc_duration.labels(method).observe(event.duration)

    def on_tx_confirmation(self, event: TxConfirmationEvent) -> None:
        self.metrics.tx_confirmations.labels(event.status).inc()

    def on_wallet_balance(self, event: WalletBalanceEvent) -> None:
        self.metrics.wallet_balance.labels(self._wallet(truncate_wallet(event.wallet))
                                           ).set(event.balance_sol)

    def on_database_query(self, event: DatabaseQueryEvent) -> None:
        table = self._table(event.table or "none")
        self.metrics.db_queries.labels(event.operation, table).inc()
        self.metrics.db_duration.labels(event.operation, table).observe(event.duration)
        if event.error:
            self.metrics.db_errors.labels(event.operation, table, event.error).inc()

    # HTTP requests: the access-log layer records them into `metrics.http` itself (the
    # app registers this hook without HTTPHook); these serve anyone feeding events.
    def on_request_started(self) -> None:
        self.metrics.http.started()

    def on_request_finished(self, event: HTTPRequestEvent) -> None:
        self.metrics.http.record(event.method, event.route, event.status, event.duration)

    def on_stripe_call(self, event: StripeCallEvent) -> None:
        op = self._operation(event.operation)
        self.metrics.stripe_calls.labels(op, event.status).inc()
        self.metrics.stripe_duration.labels(op).observe(event.duration)
        if event.error_type:
            self.metrics.stripe_errors.labels(op, event.error_type).inc()

    def on_rate_limited(self, event: RateLimitedEvent) -> None:
        self.metrics.rate_limit_rejections.labels(event.limit_type, event.tier).inc()

    def on_circuit_state(self, event: CircuitStateEvent) -> None:
        self.metrics.breaker_state.labels(event.service).set(event.state)

    def on_circuit_failure(self, event: CircuitFailureEvent) -> None:
        self.metrics.breaker_failures.labels(event.service).inc()

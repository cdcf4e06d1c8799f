"""Observability (spec 14): hook registry, Prometheus names and labels, SQL instrumentation."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cedros_pay.observability import LoggingHook, PrometheusHook, PrometheusMetrics
from cedros_pay.observability.hooks import (
    BaseHook,
    DatabaseQueryEvent,
    HookRegistry,
    HTTPHook,
    HTTPRequestEvent,
    PaymentCompletedEvent,
    PaymentHook,
    QueueSizeEvent,
    RateLimitedEvent,
    RPCCallEvent,
    StripeCallEvent,
    TxConfirmationEvent,
    WalletBalanceEvent,
    WebhookDeliveredEvent,
    WebhookRetriedEvent,
)
from cedros_pay.observability.prometheus import BoundedLabel
from cedros_pay.observability.sqlalchemy import classify, instrument_engine, pool_counts

SPEC14_METRICS = [
    "http_requests_total", "http_request_duration_seconds", "http_requests_in_flight",
    "payments_total", "payment_amount_cents", "payment_duration_seconds",
    "stripe_api_calls_total", "stripe_api_duration_seconds", "stripe_errors_total",
    "solana_rpc_calls_total", "solana_rpc_duration_seconds", "solana_tx_confirmations_total",
    "solana_wallet_balance_sol", "webhooks_total", "webhook_duration_seconds",
    "webhook_queue_size", "webhook_dlq_size", "rate_limit_rejections_total",
    "circuit_breaker_state", "circuit_breaker_failures_total", "db_queries_total",
    "db_query_duration_seconds", "db_errors_total", "db_connections_open",
    "db_connections_idle",
]


class Payments:
    def __init__(self) -> None:
        self.completed: list[PaymentCompletedEvent] = []

    def on_payment_settled(self, event: object) -> None: ...

    def on_payment_completed(self, event: PaymentCompletedEvent) -> None:
        self.completed.append(event)


class Broken(BaseHook):
    def on_payment_completed(self, event: PaymentCompletedEvent) -> None:
        raise RuntimeError("hook bug")


def test_registry_fans_out_and_a_failing_hook_changes_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = HookRegistry()
    first, last = Payments(), Payments()
    registry.register_payment_hook(first)
    registry.register(Broken())
    registry.register_payment_hook(last)
    event = PaymentCompletedEvent("p-1", "x402", amount_atomic=1_500_000, decimals=6)
    with caplog.at_level(logging.ERROR, "cedros_pay.observability"):
        registry.on_payment_completed(event)
    assert first.completed == [event] and last.completed == [event]
    assert "observability hook failed" in caplog.text
    assert event.amount_cents == 150.0


class Requests(BaseHook):
    def __init__(self, fail: bool = False) -> None:
        self.started = 0
        self.finished: list[HTTPRequestEvent] = []
        self.fail = fail

    def on_request_started(self) -> None:
        self.started += 1

    def on_request_finished(self, event: HTTPRequestEvent) -> None:
        if self.fail:
            raise RuntimeError("hook bug")
        self.finished.append(event)


def test_request_events_reach_hooks_registered_before_and_after_the_first(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = HookRegistry()
    early = Requests()
    registry.register(early)
    registry.register(LoggingHook())  # BaseHook's no-ops: skipped, harmlessly
    first = HTTPRequestEvent("GET", "/a", 200, 0.001)
    registry.on_request_started()
    registry.on_request_finished(first)
    late, broken = Requests(), Requests(fail=True)
    registry.register(broken)
    registry.register(late)
    second = HTTPRequestEvent("POST", "/b", 402, 0.002)
    with caplog.at_level(logging.ERROR, "cedros_pay.observability"):
        registry.on_request_started()
        registry.on_request_finished(second)
    assert (early.started, early.finished) == (2, [first, second])
    assert (late.started, late.finished) == (1, [second])
    assert "observability hook failed" in caplog.text


def test_register_can_leave_interfaces_out() -> None:
    registry = HookRegistry()
    names = registry.register(LoggingHook(), exclude=(HTTPHook, PaymentHook))
    assert len(names) == 8 and "HTTPHook" not in names and "PaymentHook" not in names
    assert registry.registered(HTTPHook) == []


def test_register_subscribes_to_each_implemented_interface() -> None:
    registry = HookRegistry()
    assert registry.register(Payments()) == ["PaymentHook"]
    assert len(registry.register(LoggingHook())) == 10  # BaseHook implements them all
    assert len(registry.registered(PaymentHook)) == 2
    with pytest.raises(TypeError):
        registry.register(object())


def test_every_spec14_metric_is_exposed() -> None:
    text_out = PrometheusMetrics().exposition()[0].decode()
    for name in SPEC14_METRICS:
        assert f"# TYPE {name} " in text_out, name


def test_prometheus_hook_records_events_with_bounded_labels() -> None:
    metrics = PrometheusMetrics(route_limit=3)
    hook = PrometheusHook(metrics)
    for i in range(6):
        hook.on_request_started()
        hook.on_request_finished(HTTPRequestEvent("GET", f"/route/{i}", 200, 0.01))
    hook.on_request_started()
    hook.on_request_finished(HTTPRequestEvent("BREW", "/route/0", 418, 0.01))
    hook.on_payment_completed(PaymentCompletedEvent(
        "cart_" + "a" * 32, "x402", amount_atomic=2_500_000, decimals=6, currency="USDC"))
    hook.on_rpc_call(RPCCallEvent("getHealth", 0.02, success=False, error="timeout"))
    hook.on_tx_confirmation(TxConfirmationEvent("confirmed"))
    hook.on_wallet_balance(WalletBalanceEvent("7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQ", 0.5))
    hook.on_stripe_call(StripeCallEvent("checkout.session.create", "error", 0.3, "card_error"))
    hook.on_webhook_delivered(WebhookDeliveredEvent("w1", "https://x", "payment.succeeded", 0.1))
    hook.on_webhook_queue_size(QueueSizeEvent({"pending": 3, "failed": 1}, dlq=2))
    hook.on_rate_limited(RateLimitedEvent("ip", "free"))
    hook.on_database_query(DatabaseQueryEvent("SELECT", "carts", 0.001, error="Timeout"))
    out = metrics.exposition()[0].decode()
    series = [line for line in out.splitlines() if line.startswith("http_requests_total{")]
    assert len(series) == 5  # three routes, "other" for the rest, the folded method
    assert 'http_requests_total{method="GET",path="other",status="200"} 3.0' in out
    assert 'http_requests_total{method="other",path="/route/0",status="418"} 1.0' in out
    assert "http_requests_in_flight 0.0" in out
    assert 'payments_total{method="x402",resource="cart",success="true"} 1.0' in out
    assert 'payment_amount_cents_sum{currency="usdc",method="x402"} 250.0' in out
    assert 'solana_rpc_calls_total{method="getHealth",status="error"} 1.0' in out
    assert 'solana_wallet_balance_sol{wallet="7cVf...pTQ"} 0.5' in out
    assert 'stripe_errors_total{error_type="card_error",operation="checkout.session.create"}' \
        in out
    assert 'webhook_queue_size{status="pending"} 3.0' in out and "webhook_dlq_size 2.0" in out
    assert 'rate_limit_rejections_total{tier="free",type="ip"} 1.0' in out
    assert 'db_errors_total{error="Timeout",operation="SELECT",table="carts"} 1.0' in out


def test_bounded_label_folds_new_values_into_other() -> None:
    label = BoundedLabel(2)
    assert [label(v) for v in ("a", "b", "c", "a")] == ["a", "b", "other", "a"]


def test_logging_hook_truncates_wallets(caplog: pytest.LogCaptureFixture) -> None:
    hook = LoggingHook()
    with caplog.at_level(logging.DEBUG, "cedros_pay.events"):
        hook.on_payment_completed(PaymentCompletedEvent(
            "p-1", "x402", wallet="7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQ", success=False,
            error_code="amount_mismatch"))
        hook.on_webhook_retried(WebhookRetriedEvent("w", "u", "e", 2, datetime.now(UTC)))
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    assert record.wallet == "7cVf...pTQ"  # type: ignore[attr-defined]
    assert "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQ" not in caplog.text


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT a FROM payment_transactions WHERE x = 1", ("SELECT", "payment_transactions")),
    ('INSERT INTO "cart_quotes" (id) VALUES (?)', ("INSERT", "cart_quotes")),
    ("UPDATE admin_nonces SET used = 1", ("UPDATE", "admin_nonces")),
    ("  delete from idempotency_keys where k = 1", ("DELETE", "idempotency_keys")),
    ("PRAGMA foreign_keys=ON", ("OTHER", "")),
])
def test_sql_is_classified_by_operation_and_table(sql: str, expected: tuple[str, str]) -> None:
    assert classify(sql) == expected


async def test_engine_instrumentation_reports_queries_errors_and_pool() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    seen: list[DatabaseQueryEvent] = []

    class Db:
        def on_database_query(self, event: DatabaseQueryEvent) -> None:
            seen.append(event)

    detach = instrument_engine(engine, Db())
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE things (id INTEGER)"))
        await conn.execute(text("INSERT INTO things VALUES (1)"))
        await conn.execute(text("SELECT id FROM things"))
        with pytest.raises(Exception, match="no such table"):
            await conn.execute(text("SELECT * FROM missing"))
    ops = [(e.operation, e.table) for e in seen]
    assert ("INSERT", "things") in ops and ("SELECT", "things") in ops
    assert ("BEGIN", "") in ops
    failed = [e for e in seen if e.error]
    assert failed and failed[0].error == "OperationalError" and failed[0].table == "missing"
    opened, idle = pool_counts(engine)
    assert opened() >= idle() >= 0
    detach()
    count = len(seen)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(seen) == count
    await engine.dispose()


async def test_access_log_reaches_a_hook_registered_while_serving() -> None:
    import httpx
    from starlette.responses import PlainTextResponse

    from cedros_pay.observability.http_stats import HTTPStats
    from cedros_pay.rest.middleware.access_log import AccessLogMiddleware

    registry = HookRegistry()
    registry.register(LoggingHook())  # no HTTP work: the layer skips the registry
    stats = HTTPStats()
    app = AccessLogMiddleware(PlainTextResponse("ok"), registry, recorder=stats)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/a")
        late = Requests()
        registry.register(late)
        await client.get("/b")
    assert late.started == 1 and [e.status for e in late.finished] == [200]
    counted = next(m for m in stats.collect() if m.name == "http_requests").samples
    assert sum(s.value for s in counted if s.name == "http_requests_total") == 2

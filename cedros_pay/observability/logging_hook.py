"""spec 14's LoggingHook: business events as structured log lines, wallets truncated.

HTTP requests are not logged here: the access-log middleware writes one line per request
with the request id, and a second line would only be noise.
"""

from __future__ import annotations

import logging

from cedros_pay.logs import truncate_wallet
from cedros_pay.observability.hooks import (
    BaseHook,
    CartPaidEvent,
    CircuitStateEvent,
    DatabaseQueryEvent,
    PaymentCompletedEvent,
    PaymentSettledEvent,
    RateLimitedEvent,
    RefundApprovedEvent,
    RefundProcessedEvent,
    RPCCallEvent,
    WebhookDeliveredEvent,
    WebhookFailedEvent,
    WebhookQueuedEvent,
    WebhookRetriedEvent,
)

_STATES = {0: "closed", 1: "half-open", 2: "open"}


class LoggingHook(BaseHook):
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("cedros_pay.events")

    def on_payment_completed(self, event: PaymentCompletedEvent) -> None:
        extra = {"resource_id": event.resource_id, "method": event.method,
                 "wallet": truncate_wallet(event.wallet),
                 "duration_ms": round(event.duration * 1000, 3)}
        if event.success:
            self.log.info("payment completed", extra=extra)
        else:
            self.log.warning("payment failed", extra={**extra, "error_code": event.error_code})

    def on_payment_settled(self, event: PaymentSettledEvent) -> None:
        self.log.info("payment settled", extra={
            "resource_id": event.resource_id, "method": event.method,
            "wallet": truncate_wallet(event.wallet), "tx": event.tx_hash})

    def on_webhook_queued(self, event: WebhookQueuedEvent) -> None:
        self.log.info("webhook queued", extra={"webhook_id": event.id, "url": event.url,
                                               "event_type": event.event_type})

    def on_webhook_delivered(self, event: WebhookDeliveredEvent) -> None:
        self.log.info("webhook delivered", extra={
            "webhook_id": event.id, "url": event.url, "event_type": event.event_type,
            "duration_ms": round(event.duration * 1000, 3)})

    def on_webhook_failed(self, event: WebhookFailedEvent) -> None:
        level = logging.ERROR if event.final else logging.WARNING
        self.log.log(level, "webhook moved to the dead-letter queue" if event.final
                     else "webhook delivery failed", extra={
                         "webhook_id": event.id, "url": event.url,
                         "event_type": event.event_type, "attempt": event.attempt,
                         "error": event.error})

    def on_webhook_retried(self, event: WebhookRetriedEvent) -> None:
        self.log.info("webhook retry scheduled", extra={
            "webhook_id": event.id, "attempt": event.attempt,
            "next_attempt": event.next_attempt.isoformat()})

    def on_refund_approved(self, event: RefundApprovedEvent) -> None:
        self.log.info("refund approved", extra={
            "refund_id": event.refund_id, "approved_by": truncate_wallet(event.approved_by)})

    def on_refund_processed(self, event: RefundProcessedEvent) -> None:
        extra = {"refund_id": event.refund_id, "tx": event.signature}
        if event.success:
            self.log.info("refund processed", extra=extra)
        else:
            self.log.error("refund failed", extra={**extra, "error": event.error})

    def on_cart_paid(self, event: CartPaidEvent) -> None:
        self.log.info("cart paid", extra={"cart_id": event.cart_id,
                                          "wallet": truncate_wallet(event.wallet)})

    def on_rpc_call(self, event: RPCCallEvent) -> None:
        if not event.success:
            self.log.warning("solana rpc call failed", extra={
                "rpc_method": event.method, "error": event.error,
                "duration_ms": round(event.duration * 1000, 3)})

    def on_database_query(self, event: DatabaseQueryEvent) -> None:
        if event.error:
            self.log.warning("database query failed", extra={
                "operation": event.operation, "table": event.table, "error": event.error})

    def on_rate_limited(self, event: RateLimitedEvent) -> None:
        self.log.info("rate limited", extra={"limit_type": event.limit_type,
                                             "tier": event.tier})

    def on_circuit_state(self, event: CircuitStateEvent) -> None:
        self.log.warning("circuit breaker state changed", extra={
            "circuit": event.service, "state": _STATES.get(event.state, str(event.state)),
            "previous": _STATES.get(event.previous, str(event.previous))})

"""Observability hooks (spec 14): events, hook interfaces, and the registry that fans out.

Code that does the work (resolvers, integrations, middleware, workers) reports events to
a `HookRegistry` it was given; what happens to them (Prometheus, logs, an embedder's own
tracer) is decided where the app is composed. Hooks are plain synchronous calls made on
the hot path, so they must be quick; a hook that raises is logged and ignored, because
observability must never change an outcome (spec 15, "Metrics Recording (Non-Fatal)").

Beyond spec 14's six interfaces there are hooks for what its metrics table also counts:
HTTP requests, Stripe calls, rate-limit rejections, circuit breakers, queue gauges. Only
events something fires are declared: a feature that starts reporting one adds it here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

log = logging.getLogger("cedros_pay.observability")

# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentCompletedEvent:
    resource_id: str
    method: str
    wallet: str = ""
    amount_atomic: int = 0
    decimals: int = 2
    currency: str = ""
    duration: float = 0.0  # seconds
    success: bool = True
    error_code: str = ""

    @property
    def amount_cents(self) -> float:
        """Spec 14 histograms amounts in cents, whatever the asset's decimals."""
        return self.amount_atomic * 100 / float(10**self.decimals)


@dataclass(frozen=True, slots=True)
class PaymentSettledEvent:
    resource_id: str
    method: str
    wallet: str = ""
    tx_hash: str = ""


@dataclass(frozen=True, slots=True)
class WebhookQueuedEvent:
    id: str
    url: str
    event_type: str


@dataclass(frozen=True, slots=True)
class WebhookDeliveredEvent:
    id: str
    url: str
    event_type: str
    duration: float


@dataclass(frozen=True, slots=True)
class WebhookFailedEvent:
    id: str
    url: str
    event_type: str
    error: str
    attempt: int
    duration: float = 0.0
    final: bool = False  # moved to the dead-letter queue


@dataclass(frozen=True, slots=True)
class WebhookRetriedEvent:
    id: str
    url: str
    event_type: str
    attempt: int
    next_attempt: datetime


@dataclass(frozen=True, slots=True)
class QueueSizeEvent:
    """Webhook queue gauges, read periodically: counts per status, and the DLQ."""

    by_status: dict[str, int]
    dlq: int = 0


@dataclass(frozen=True, slots=True)
class RefundApprovedEvent:
    refund_id: str
    approved_by: str = ""


@dataclass(frozen=True, slots=True)
class RefundProcessedEvent:
    refund_id: str
    signature: str = ""
    success: bool = True
    error: str = ""


@dataclass(frozen=True, slots=True)
class CartPaidEvent:
    cart_id: str
    wallet: str = ""
    tx_hash: str = ""


@dataclass(frozen=True, slots=True)
class RPCCallEvent:
    method: str
    duration: float
    success: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class TxConfirmationEvent:
    status: str  # "confirmed", "failed", "timeout"


@dataclass(frozen=True, slots=True)
class WalletBalanceEvent:
    wallet: str  # a server wallet's public key
    balance_sol: float


@dataclass(frozen=True, slots=True)
class DatabaseQueryEvent:
    operation: str  # SELECT, INSERT, UPDATE, DELETE, BEGIN, COMMIT, ROLLBACK
    table: str
    duration: float
    error: str = ""  # an error class name, never a message (they carry values)


class HTTPRequestEvent(NamedTuple):
    """One finished request (a named tuple: one is made per request)."""

    method: str
    route: str  # the route template, never the raw path (bounded label cardinality)
    status: int
    duration: float


@dataclass(frozen=True, slots=True)
class StripeCallEvent:
    operation: str
    status: str  # "success" or "error"
    duration: float
    error_type: str = ""


@dataclass(frozen=True, slots=True)
class RateLimitedEvent:
    limit_type: str  # "global", "wallet", "ip"
    tier: str


@dataclass(frozen=True, slots=True)
class CircuitStateEvent:
    service: str
    state: int  # 0 closed, 1 half-open, 2 open (spec 14's gauge values)
    previous: int


@dataclass(frozen=True, slots=True)
class CircuitFailureEvent:
    service: str


# --- hook interfaces ---------------------------------------------------------------------


@runtime_checkable
class PaymentHook(Protocol):
    def on_payment_completed(self, event: PaymentCompletedEvent) -> None: ...
    def on_payment_settled(self, event: PaymentSettledEvent) -> None: ...


@runtime_checkable
class WebhookHook(Protocol):
    def on_webhook_queued(self, event: WebhookQueuedEvent) -> None: ...
    def on_webhook_delivered(self, event: WebhookDeliveredEvent) -> None: ...
    def on_webhook_failed(self, event: WebhookFailedEvent) -> None: ...
    def on_webhook_retried(self, event: WebhookRetriedEvent) -> None: ...
    def on_webhook_queue_size(self, event: QueueSizeEvent) -> None: ...


@runtime_checkable
class RefundHook(Protocol):
    def on_refund_approved(self, event: RefundApprovedEvent) -> None: ...
    def on_refund_processed(self, event: RefundProcessedEvent) -> None: ...


@runtime_checkable
class CartHook(Protocol):
    def on_cart_paid(self, event: CartPaidEvent) -> None: ...


@runtime_checkable
class RPCHook(Protocol):
    def on_rpc_call(self, event: RPCCallEvent) -> None: ...
    def on_tx_confirmation(self, event: TxConfirmationEvent) -> None: ...
    def on_wallet_balance(self, event: WalletBalanceEvent) -> None: ...


@runtime_checkable
class DatabaseHook(Protocol):
    def on_database_query(self, event: DatabaseQueryEvent) -> None: ...


class HTTPRecorder(Protocol):
    """The HTTP metrics store the access-log layer writes to directly, without an event
    and a hook call per request (observability/http_stats.py)."""

    def started(self) -> None: ...
    def record(self, method: str, route: str, status: int, duration: float) -> None: ...


@runtime_checkable
class HTTPHook(Protocol):
    def on_request_started(self) -> None: ...
    def on_request_finished(self, event: HTTPRequestEvent) -> None: ...


@runtime_checkable
class StripeHook(Protocol):
    def on_stripe_call(self, event: StripeCallEvent) -> None: ...


@runtime_checkable
class RateLimitHook(Protocol):
    def on_rate_limited(self, event: RateLimitedEvent) -> None: ...


@runtime_checkable
class CircuitBreakerHook(Protocol):
    def on_circuit_state(self, event: CircuitStateEvent) -> None: ...
    def on_circuit_failure(self, event: CircuitFailureEvent) -> None: ...


HOOK_KINDS: tuple[type[Any], ...] = (
    PaymentHook, WebhookHook, RefundHook, CartHook, RPCHook, DatabaseHook,
    HTTPHook, StripeHook, RateLimitHook, CircuitBreakerHook,
)

H = TypeVar("H")


class HookRegistry:
    """Fan-out to every registered hook; itself satisfies every hook interface.

    Components take the registry typed as the one interface they report to, so a test can
    pass a recorder instead.
    """

    def __init__(self) -> None:
        self._hooks: dict[type[Any], list[Any]] = {kind: [] for kind in HOOK_KINDS}
        # Per-request events go only to hooks that do something with them (see `_doing`).
        self._doing_cache: dict[str, list[Any]] = {}
        self.generation = 0  # bumped by every registration: callers may cache `active`

    # Registration, by interface (spec 14's RegisterPaymentHook and friends) or for all.

    def register(self, hook: object, *, exclude: Iterable[type[Any]] = ()) -> list[str]:
        """Register `hook` for every interface it fully implements but those in `exclude`;
        their names."""
        skipped = set(exclude)
        kinds = [k for k in HOOK_KINDS if k not in skipped and isinstance(hook, k)]
        if not kinds:
            raise TypeError(f"{type(hook).__name__} implements no hook interface")
        for kind in kinds:
            self._add(kind, hook)
        return [k.__name__ for k in kinds]

    def register_payment_hook(self, hook: PaymentHook) -> None:
        self._add(PaymentHook, hook)

    def register_webhook_hook(self, hook: WebhookHook) -> None:
        self._add(WebhookHook, hook)

    def register_refund_hook(self, hook: RefundHook) -> None:
        self._add(RefundHook, hook)

    def register_cart_hook(self, hook: CartHook) -> None:
        self._add(CartHook, hook)

    def register_rpc_hook(self, hook: RPCHook) -> None:
        self._add(RPCHook, hook)

    def register_database_hook(self, hook: DatabaseHook) -> None:
        self._add(DatabaseHook, hook)

    def _add(self, kind: type[Any], hook: object) -> None:
        self._hooks[kind].append(hook)
        self._doing_cache.clear()
        self.generation += 1

    def registered(self, kind: type[H]) -> list[H]:
        return list(self._hooks[kind])

    def active(self, kind: type[Any], name: str) -> bool:
        """Whether any registered hook of `kind` does something on `name` (callers on a
        hot path skip building an event nobody receives)."""
        return bool(self._doing(kind, name))

    def _doing(self, kind: type[Any], name: str) -> list[Any]:
        """The hooks of `kind` whose `name` method is not BaseHook's no-op."""
        found = self._doing_cache.get(name)
        if found is None:
            noop = getattr(BaseHook, name)
            found = self._doing_cache[name] = [
                h for h in self._hooks[kind] if getattr(type(h), name, None) is not noop]
        return found

    def _emit(self, kind: type[Any], call: Callable[[Any], None]) -> None:
        for hook in self._hooks[kind]:
            try:
                call(hook)
            except Exception:
                log.exception("observability hook failed", extra={"hook": type(hook).__name__})

    # PaymentHook
    def on_payment_completed(self, event: PaymentCompletedEvent) -> None:
        self._emit(PaymentHook, lambda h: h.on_payment_completed(event))

    def on_payment_settled(self, event: PaymentSettledEvent) -> None:
        self._emit(PaymentHook, lambda h: h.on_payment_settled(event))

    # WebhookHook
    def on_webhook_queued(self, event: WebhookQueuedEvent) -> None:
        self._emit(WebhookHook, lambda h: h.on_webhook_queued(event))

    def on_webhook_delivered(self, event: WebhookDeliveredEvent) -> None:
        self._emit(WebhookHook, lambda h: h.on_webhook_delivered(event))

    def on_webhook_failed(self, event: WebhookFailedEvent) -> None:
        self._emit(WebhookHook, lambda h: h.on_webhook_failed(event))

    def on_webhook_retried(self, event: WebhookRetriedEvent) -> None:
        self._emit(WebhookHook, lambda h: h.on_webhook_retried(event))

    def on_webhook_queue_size(self, event: QueueSizeEvent) -> None:
        self._emit(WebhookHook, lambda h: h.on_webhook_queue_size(event))

    # RefundHook
    def on_refund_approved(self, event: RefundApprovedEvent) -> None:
        self._emit(RefundHook, lambda h: h.on_refund_approved(event))

    def on_refund_processed(self, event: RefundProcessedEvent) -> None:
        self._emit(RefundHook, lambda h: h.on_refund_processed(event))

    # CartHook
    def on_cart_paid(self, event: CartPaidEvent) -> None:
        self._emit(CartHook, lambda h: h.on_cart_paid(event))

    # RPCHook
    def on_rpc_call(self, event: RPCCallEvent) -> None:
        self._emit(RPCHook, lambda h: h.on_rpc_call(event))

    def on_tx_confirmation(self, event: TxConfirmationEvent) -> None:
        self._emit(RPCHook, lambda h: h.on_tx_confirmation(event))

    def on_wallet_balance(self, event: WalletBalanceEvent) -> None:
        self._emit(RPCHook, lambda h: h.on_wallet_balance(event))

    # DatabaseHook
    def on_database_query(self, event: DatabaseQueryEvent) -> None:
        self._emit(DatabaseHook, lambda h: h.on_database_query(event))

    # HTTPHook
    # Every request reports these two, so they skip the generic `_emit`.
    def on_request_started(self) -> None:
        for hook in self._doing(HTTPHook, "on_request_started"):
            try:
                hook.on_request_started()
            except Exception:
                log.exception("observability hook failed", extra={"hook": type(hook).__name__})

    def on_request_finished(self, event: HTTPRequestEvent) -> None:
        for hook in self._doing(HTTPHook, "on_request_finished"):
            try:
                hook.on_request_finished(event)
            except Exception:
                log.exception("observability hook failed", extra={"hook": type(hook).__name__})

    # StripeHook
    def on_stripe_call(self, event: StripeCallEvent) -> None:
        self._emit(StripeHook, lambda h: h.on_stripe_call(event))

    # RateLimitHook
    def on_rate_limited(self, event: RateLimitedEvent) -> None:
        self._emit(RateLimitHook, lambda h: h.on_rate_limited(event))

    # CircuitBreakerHook
    def on_circuit_state(self, event: CircuitStateEvent) -> None:
        self._emit(CircuitBreakerHook, lambda h: h.on_circuit_state(event))

    def on_circuit_failure(self, event: CircuitFailureEvent) -> None:
        self._emit(CircuitBreakerHook, lambda h: h.on_circuit_failure(event))


class BaseHook:
    """Every hook method as a no-op: subclass it and override the events you want, then
    `registry.register(MyHook())` subscribes it to every interface."""

    def on_payment_completed(self, event: PaymentCompletedEvent) -> None: ...
    def on_payment_settled(self, event: PaymentSettledEvent) -> None: ...
    def on_webhook_queued(self, event: WebhookQueuedEvent) -> None: ...
    def on_webhook_delivered(self, event: WebhookDeliveredEvent) -> None: ...
    def on_webhook_failed(self, event: WebhookFailedEvent) -> None: ...
    def on_webhook_retried(self, event: WebhookRetriedEvent) -> None: ...
    def on_webhook_queue_size(self, event: QueueSizeEvent) -> None: ...
    def on_refund_approved(self, event: RefundApprovedEvent) -> None: ...
    def on_refund_processed(self, event: RefundProcessedEvent) -> None: ...
    def on_cart_paid(self, event: CartPaidEvent) -> None: ...
    def on_rpc_call(self, event: RPCCallEvent) -> None: ...
    def on_tx_confirmation(self, event: TxConfirmationEvent) -> None: ...
    def on_wallet_balance(self, event: WalletBalanceEvent) -> None: ...
    def on_database_query(self, event: DatabaseQueryEvent) -> None: ...
    def on_request_started(self) -> None: ...
    def on_request_finished(self, event: HTTPRequestEvent) -> None: ...
    def on_stripe_call(self, event: StripeCallEvent) -> None: ...
    def on_rate_limited(self, event: RateLimitedEvent) -> None: ...
    def on_circuit_state(self, event: CircuitStateEvent) -> None: ...
    def on_circuit_failure(self, event: CircuitFailureEvent) -> None: ...

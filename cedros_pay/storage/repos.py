"""Repository protocols: one small interface per aggregate (specs 08, 18, 23).

Every call that reads or writes tenant data takes the tenant id first. Backends live in
`storage.memory` and `storage.sql`; one contract suite (tests/contract) holds them all to
the same behaviour. Methods that must be atomic say so: backends implement them with a
single conditional statement (or a transaction), never a read-then-write in Python.
Writes that must land together go through a `UnitOfWork` (`Store.unit_of_work()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cedros_pay.core.models import (
    AdminNonce,
    AssetTotal,
    CartQuote,
    Coupon,
    NonceOutcome,
    PaymentFilter,
    PaymentTransaction,
    PendingWebhook,
    Product,
    RefundQuote,
    StoredResponse,
    StripeSession,
    Subscription,
    SubscriptionStatus,
    WebhookStatus,
)


class CartQuoteRepo(Protocol):
    async def save(self, quote: CartQuote) -> None: ...
    async def save_many(self, quotes: Sequence[CartQuote]) -> None:
        """All or nothing."""

    async def get(self, tenant: str, cart_id: str) -> CartQuote | None: ...
    async def get_many(self, tenant: str, cart_ids: Sequence[str]) -> list[CartQuote]: ...
    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        """Atomically set the payer once (dropping any claim); False if missing or paid."""

    async def claim(self, tenant: str, cart_id: str, holder: str, now: datetime,
                    lease: timedelta) -> bool:
        """Atomically hold an unpaid cart for `holder` until `now + lease`.

        Taken before a payment for the cart is sent to the chain. True when the cart
        exists, is unpaid and is unclaimed, or its claim's lease ran out, or `holder`
        (the transaction's signature) holds it already, so a resend of the same
        transaction is not refused; False otherwise. One conditional update: of many
        racing claimers, in one process or many, exactly one wins.
        """

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        """Drop `holder`'s claim (its submission failed); False if it holds none."""

    async def has_access(self, tenant: str, cart_id: str, wallet: str) -> bool: ...
    async def delete_expired(self, before: datetime) -> int:
        """Drop unpaid quotes that expired before `before` (cleanup worker), except those
        claimed by a payment whose lease outlasts `before`."""


# The metadata key an approval stamps; a refund's stored status follows from it.
REFUND_APPROVED_AT = "cedros.approved_at"


def refund_status(quote: RefundQuote) -> str:
    """`processed` once paid, `approved` once an approval is stamped, else `pending`; the
    status `RefundQuoteRepo.transition` and `delete_if` compare against."""
    if quote.is_processed:
        return "processed"
    return "approved" if REFUND_APPROVED_AT in quote.metadata else "pending"


class RefundQuoteRepo(Protocol):
    async def save(self, quote: RefundQuote) -> None: ...
    async def create_once(self, quote: RefundQuote) -> RefundQuote:
        """Atomically store `quote` unless its tenant already holds a refund for its
        original purchase; returns the stored refund (`quote` for the one caller that
        created it, the existing refund for everyone else)."""

    async def transition(self, quote: RefundQuote, from_status: str) -> bool:
        """Atomically overwrite the stored refund with `quote` (status `refund_status(quote)`)
        only while it exists unprocessed in `from_status`; True for the caller that won."""

    async def delete_if(self, tenant: str, refund_id: str, from_status: str) -> bool:
        """Atomically delete an unprocessed refund still in `from_status` (a denial)."""

    async def save_many(self, quotes: Sequence[RefundQuote]) -> None:
        """All or nothing."""

    async def get(self, tenant: str, refund_id: str) -> RefundQuote | None: ...
    async def get_by_original_purchase(
        self, tenant: str, original_purchase_id: str
    ) -> RefundQuote | None: ...
    async def list_pending(self, tenant: str) -> list[RefundQuote]:
        """Unprocessed refunds, oldest first (expired ones included: they can be re-quoted)."""

    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool:
        """Atomically mark once; False if missing or already processed."""

    async def delete(self, tenant: str, refund_id: str) -> bool: ...
    async def delete_expired_pending(self, before: datetime) -> int: ...


class PaymentRepo(Protocol):
    async def record(self, tx: PaymentTransaction) -> bool:
        """Insert unless the signature exists in ANY tenant; True only for the first caller.

        This single conditional insert is the replay protection (spec 13): two racing
        callers, in one process or many, can never both get True.
        """

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        """Insert all or none; False (and nothing written) if any signature was used."""

    async def has_been_processed(self, signature: str) -> bool: ...
    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None: ...
    async def page(
        self, tenant: str, where: PaymentFilter, limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> list[PaymentTransaction]:
        """Newest first; `after` is the (created_at, signature) of the last row seen."""

    async def totals(self, tenant: str, where: PaymentFilter) -> list[AssetTotal]:
        """Count and sum per asset, ordered by asset code."""

    async def archive_older_than(self, before: datetime) -> int: ...


class NonceRepo(Protocol):
    async def create(self, nonce: AdminNonce) -> None: ...
    async def consume(
        self, tenant: str, nonce_id: str, purpose: str, now: datetime
    ) -> NonceOutcome:
        """Mark used at most once, before expiry and only for its purpose (atomic).

        A nonce created with an empty purpose is a wildcard (spec 04, kept for older clients).
        """

    async def delete_expired(self, now: datetime) -> int: ...


class WebhookQueue(Protocol):
    async def enqueue(self, webhook: PendingWebhook, *, within: object | None = None) -> None:
        """Add one item. `within` is the open transaction of the change that caused the
        event (on SQL an `AsyncConnection` inside `begin()`), so both commit or neither;
        None opens a transaction of its own. Raises on a duplicate id."""

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=5)
    ) -> list[PendingWebhook]:
        """Hand out due webhooks, each to exactly one caller, marked `processing`.

        Due means pending with `next_attempt_at` unset or passed, or `processing` whose
        lease (from `last_attempt_at`) ran out because its worker died: deliveries survive
        restarts. Claiming counts an attempt.
        """

    async def release(self, webhook_id: str, next_attempt_at: datetime) -> bool:
        """Give a claimed item back unattempted: pending again, due at `next_attempt_at`,
        its claim no longer counted as an attempt (an open circuit breaker, a shutdown).
        False unless the item was `processing`."""

    async def mark_success(self, webhook_id: str, at: datetime) -> None: ...
    async def mark_success_many(self, webhook_ids: Sequence[str], at: datetime) -> None:
        """`mark_success` for a batch in one statement (the worker's common case)."""

    async def mark_failed(
        self, webhook_id: str, error: str, at: datetime, next_attempt_at: datetime | None
    ) -> None:
        """Schedule a retry at `next_attempt_at`, or fail for good when it is None."""

    async def get(self, tenant: str, webhook_id: str) -> PendingWebhook | None: ...
    async def list(
        self, tenant: str, status: WebhookStatus | None = None, limit: int = 100
    ) -> list[PendingWebhook]: ...
    async def counts(self) -> dict[WebhookStatus, int]:
        """Items per status over every tenant (the queue-depth gauge); zeros included."""

    async def retry(self, tenant: str, webhook_id: str, now: datetime) -> bool:
        """Reset a webhook to pending with a fresh attempt budget (manual retry)."""

    async def delete(self, tenant: str, webhook_id: str) -> bool: ...
    async def delete_completed_before(self, before: datetime) -> int: ...


class IdempotencyRepo(Protocol):
    async def save(self, tenant: str, key: str, response: StoredResponse) -> None:
        """Store (or replace) the response, with the fingerprint of its request."""

    async def get(self, tenant: str, key: str, now: datetime) -> StoredResponse | None:
        """The unexpired response and its fingerprint; the caller compares fingerprints."""

    async def delete(self, tenant: str, key: str) -> None: ...
    async def delete_expired(self, now: datetime) -> int: ...


class StripeSessionRepo(Protocol):
    async def save(self, session: StripeSession) -> None: ...
    async def get(self, tenant: str, session_id: str) -> StripeSession | None: ...
    async def mark_completed(self, tenant: str, session_id: str, at: datetime) -> bool:
        """Atomically complete a pending session once; False if missing or not pending."""


class ProductRepo(Protocol):
    async def get(self, tenant: str, product_id: str) -> Product | None: ...
    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None: ...
    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]: ...
    async def create(self, product: Product) -> None:
        """Raises `AlreadyExists` if the id is taken in the tenant."""

    async def update(self, product: Product) -> None:
        """Raises `NotFound` if the product does not exist."""

    async def delete(self, tenant: str, product_id: str) -> bool:
        """Soft delete: `active = false`."""


class CouponRepo(Protocol):
    async def get(self, tenant: str, code: str) -> Coupon | None: ...
    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]: ...
    async def create(self, coupon: Coupon) -> None: ...
    async def update(self, coupon: Coupon) -> None:
        """Replace a coupon's terms; its `usage_count` is left as stored."""

    async def increment_usage(self, tenant: str, code: str) -> bool:
        """Atomically count one use; False when missing or the usage limit is reached.

        One conditional increment against `usage_limit`, so it doubles as the reservation
        a payment takes before its transaction is sent: of two racing callers for the last
        use, one gets False. `release_usage` gives the use back if the payment fails.
        """

    async def release_usage(self, tenant: str, code: str) -> bool:
        """Give back one use counted by `increment_usage`, atomically, never below the
        count the coupon started with; False when missing or there is nothing to give."""

    async def delete(self, tenant: str, code: str) -> bool:
        """Soft delete: `active = false`."""


class SubscriptionRepo(Protocol):
    async def create(self, sub: Subscription) -> None: ...
    async def get(self, tenant: str, sub_id: str) -> Subscription | None: ...
    async def update(self, sub: Subscription) -> None: ...
    async def replace_if_unchanged(self, sub: Subscription, seen: Subscription) -> bool:
        """Write `sub` only while the stored row still has `seen`'s status, period end and
        `updated_at` (one compare-and-set); False when another writer, in this process or
        another, changed it first or the row is gone."""

    async def delete(self, tenant: str, sub_id: str, at: datetime) -> bool:
        """Soft delete: status `cancelled`."""

    async def get_by_wallet(
        self, tenant: str, wallet: str, product_id: str
    ) -> Subscription | None:
        """The newest active or trialing subscription of a wallet for a product."""

    async def get_by_stripe_subscription_id(
        self, tenant: str, stripe_sub_id: str
    ) -> Subscription | None: ...
    async def list_by_stripe_customer_id(
        self, tenant: str, customer_id: str
    ) -> list[Subscription]: ...
    async def list_by_product(self, tenant: str, product_id: str) -> list[Subscription]: ...
    async def list_active(
        self, tenant: str, product_id: str | None = None
    ) -> list[Subscription]: ...
    async def list_expiring(
        self, tenant: str | None, before: datetime
    ) -> list[Subscription]:
        """Live subscriptions whose period ended before `before`; every tenant's for None."""
    async def update_status(
        self, tenant: str, sub_id: str, status: SubscriptionStatus, at: datetime
    ) -> bool: ...
    async def extend_period(
        self, tenant: str, sub_id: str, start: datetime, end: datetime, at: datetime
    ) -> bool: ...


# --- units of work ------------------------------------------------------------------------
#
# The writes a unit of work offers: the ones that must land together with a payment. Each
# is the method of the same name on the full repository above, bound to the transaction.


class PaymentWrites(Protocol):
    async def record(self, tx: PaymentTransaction) -> bool: ...
    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool: ...


class CartWrites(Protocol):
    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool: ...
    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool: ...


class CouponWrites(Protocol):
    async def increment_usage(self, tenant: str, code: str) -> bool: ...
    async def release_usage(self, tenant: str, code: str) -> bool: ...


class RefundWrites(Protocol):
    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool: ...


class WebhookWrites(Protocol):
    async def enqueue(self, webhook: PendingWebhook) -> None: ...


class SessionWrites(Protocol):
    async def save(self, session: StripeSession) -> None: ...
    async def mark_completed(self, tenant: str, session_id: str, at: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """Writes that commit together or not at all: `async with store.unit_of_work() as uow:`.

    Leaving the block normally commits; any exception rolls every write of the block back
    and propagates. A conditional write that returns False (a replayed signature, a cart
    paid already) rolls nothing back by itself: raise (a `CedrosError`) to abandon the
    unit. Reads go through the Store as usual. SQL backends run the block as one
    transaction on one connection (SQLite takes its write lock at the start, so keep the
    block short and never await the chain inside it); memory applies each write at once
    and undoes them in reverse on failure. `coupons` is the store's coupon table: use it
    only when the coupon source is the database (Stripe webhooks count there; a YAML
    source counts in its own memory after the commit); x402 payments reserve through the
    catalog's coupon repository, whichever source it is. `webhooks` is how a change's
    merchant event is queued with it (`resolvers.webhooks.WebhookOutbox` stages it; the
    delivery worker is woken once the block has committed).

    Settling an x402 payment (`resolvers/payments.py`):

    1. price the requirement (cart total or product price with its coupons); check the
       replay fast path;
    2. claim before the chain: for a cart, `store.carts.claim(tenant, cart_id,
       holder=signature, now=clock.now(), lease=...)` with a lease longer than submit +
       confirm (e.g. 2 minutes), False -> `cart_already_paid`; for each applied coupon,
       `coupons.increment_usage(tenant, code)` on the catalog's coupon repo, False ->
       give back the ones taken and refuse with `coupon_usage_limit_reached`. This
       reservation IS the usage count: nothing counts the coupon again later;
    3. submit to the chain and confirm (`verifier.verify`);
    4. on success, one unit of work: `uow.payments.record(tx)` (False -> raise
       `payment_already_used`), `uow.carts.mark_paid(...)` for a cart (drops the claim),
       and `uow.webhooks.enqueue(...)` for the merchant's event once the queue is wired;
    5. when step 3 fails: `coupons.release_usage(tenant, code)` for each reserved code
       and, when the transaction cannot land any more (refused offline or by the node,
       failed on chain, expired), `store.carts.release_claim(tenant, cart_id, signature)`;
       after a timeout or a lost RPC call the claim is kept until its lease ends (a
       resend of the same transaction still passes it). Then re-raise. When step 4
       fails after the transaction landed, keep both (the money moved; log for
       reconciliation): releasing would let a second transaction pay for the same cart.
       If the process dies between 2 and 4 the claim ends with its lease; a reserved
       coupon use stays counted (the safe side: a use may be lost, a discount is never
       granted twice).

    A paid Stripe Checkout session (`resolvers/stripe_events.py`) is one unit of work:
    `uow.payments.record` of `stripe:{session_id}` (False: a redelivery, nothing more is
    written), `uow.sessions` completing the session, `uow.coupons.increment_usage` for
    each applied code when coupons live in the database, and the staged event. A failure
    anywhere leaves none of it, and Stripe's redelivery does it all.
    """

    payments: PaymentWrites
    carts: CartWrites
    coupons: CouponWrites
    refunds: RefundWrites
    webhooks: WebhookWrites
    sessions: SessionWrites


class StorageError(Exception):
    """Base for storage failures that callers may want to tell apart."""


class AlreadyExists(StorageError):
    pass


class NotFound(StorageError):
    pass

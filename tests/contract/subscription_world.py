"""The subscriptions resolver over a real store, shared by the in-process and the
cross-process activation races (race_worker.py imports it as a sibling module)."""

from __future__ import annotations

from datetime import timedelta

from solders.keypair import Keypair

from cedros_pay.core.clock import Clock
from cedros_pay.core.models import PaymentTransaction, Product, SubscriptionConfig
from cedros_pay.core.money import RoundingMode
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quotes
from cedros_pay.resolvers.subscriptions import Subscriptions
from cedros_pay.resolvers.webhooks import QueueingNotifier, WebhookTargets
from cedros_pay.storage.store import Store

WALLET = str(Keypair.from_seed(bytes(range(32))).pubkey())
TERMS = PaymentTerms(network="devnet", payment_address=str(Keypair.from_seed(bytes(32)).pubkey()),
                     token_mint="4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
                     token_symbol="USDC", token_decimals=6, quote_ttl=timedelta(minutes=5),
                     cart_ttl=timedelta(minutes=15))


def plan(tenant: str = "default") -> Product:
    return Product(id="plan", tenant_id=tenant, description="Monthly",
                   crypto_amount=5_000_000, crypto_token="USDC",
                   subscription=SubscriptionConfig(billing_period="month", allow_x402=True))


def subscriptions(store: Store, clock: Clock) -> Subscriptions:
    pricing = Pricing(store.coupons, clock, RoundingMode.STANDARD)
    quotes = Quotes(store.products, pricing, TERMS,
                    CatalogSnapshots(store.products, store.coupons, pricing, clock))
    notifier = QueueingNotifier(store.webhooks, WebhookTargets("", "", "https://m.example/subs"),
                                clock=clock, max_attempts=3)
    return Subscriptions(repo=store.subscriptions, products=store.products, quotes=quotes,
                         payments=store.payments, notifier=notifier, clock=clock)


async def pay(store: Store, clock: Clock, signature: str, tenant: str = "default") -> None:
    """A recorded x402 payment by WALLET for the plan, as POST /verify leaves it."""
    await store.payments.record(PaymentTransaction(
        signature=signature, tenant_id=tenant, resource_id="plan", wallet=WALLET,
        amount_atomic=5_000_000, asset="USDC", created_at=clock.now()))

"""The resolvers, wired from the configuration; REST and GraphQL share one `Services`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from importlib import metadata

from cedros_pay.bootstrap.refunds import build_refunds
from cedros_pay.bootstrap.stripe import StripeSettings, build_checkout, stripe_client
from cedros_pay.bootstrap.subscriptions import build_subscriptions
from cedros_pay.config import Config
from cedros_pay.core.assets import stablecoin_for_mint
from cedros_pay.core.clock import Clock
from cedros_pay.core.money import RoundingMode
from cedros_pay.integrations.circuit_breaker import CircuitBreaker
from cedros_pay.integrations.solana.gasless import GaslessBuilder
from cedros_pay.integrations.solana.wallets import WalletPool
from cedros_pay.observability.hooks import PaymentHook
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.carts import Carts
from cedros_pay.resolvers.catalog import Catalog
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.events import (
    EventOutbox,
    Notifier,
    PaymentEventHub,
    PublishingNotifier,
)
from cedros_pay.resolvers.gasless import Gasless
from cedros_pay.resolvers.health import Health, Probe, WalletStatus
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.payments import (
    FeePayers,
    KnownMintPrograms,
    MintProgramSource,
    Payments,
    PaymentVerifier,
)
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quotes
from cedros_pay.resolvers.refunds import RefundOutbox
from cedros_pay.resolvers.services import ServerInfo, Services
from cedros_pay.rest.middleware.state.responses import IdempotencyStore
from cedros_pay.storage.catalog import catalog_repos
from cedros_pay.storage.catalog.select import coupons_in_store
from cedros_pay.storage.open import open_store
from cedros_pay.storage.repos import SubscriptionRepo
from cedros_pay.storage.sql.engine import PoolSettings
from cedros_pay.storage.sql.schema import TableNames
from cedros_pay.storage.store import Store


def version() -> str:
    try:
        return metadata.version("cedros-pay")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def table_names(config: Config) -> TableNames:
    mapping = config.storage.schema_mapping
    return TableNames(**{f.name: mapping.table_name(f.name) for f in fields(TableNames)})


async def open_configured_store(config: Config) -> Store:
    s = config.storage
    pool = PoolSettings(max_open_conns=s.postgres_pool.max_open_conns,
                        max_idle_conns=s.postgres_pool.max_idle_conns,
                        conn_max_lifetime=s.postgres_pool.conn_max_lifetime)
    return await open_store(s.backend, file_path=s.file_path, postgres_url=s.postgres_url,
                            names=table_names(config), pool=pool)


def enabled_features(config: Config) -> list[str]:
    """The feature strings `/cedros-health` lists (spec 02)."""
    flags = {
        "stripe": bool(config.stripe.secret_key),
        "x402": bool(config.x402.payment_address),
        "gasless": config.x402.gasless_enabled,
        "subscriptions": config.subscriptions.enabled,
    }
    return [name for name, on in flags.items() if on]


def server_info(config: Config) -> ServerInfo:
    x = config.x402
    return ServerInfo(version=version(), route_prefix=config.server.route_prefix,
                      features=tuple(enabled_features(config)), network=x.network,
                      payment_address=x.payment_address, token_mint=x.token_mint,
                      tenant_tokens=bool(config.tenancy.jwt_secret))


def payment_terms(config: Config) -> PaymentTerms:
    x = config.x402
    coin = stablecoin_for_mint(x.token_mint, x.network)
    return PaymentTerms(
        network=x.network, payment_address=x.payment_address, token_mint=x.token_mint,
        token_symbol=coin.code if coin else (x.allowed_tokens[0] if x.allowed_tokens else ""),
        token_decimals=x.token_decimals, quote_ttl=config.paywall.quote_ttl,
        cart_ttl=config.storage.cart_quote_ttl, memo_prefix=x.memo_prefix,
    )


def wallet_statuses(wallets: WalletPool) -> Callable[[], dict[str, WalletStatus]]:
    """`/cedros-health` walletHealth (spec 02): `wallet1`, `wallet2`, ... in config order."""
    def read() -> dict[str, WalletStatus]:
        return {f"wallet{i}": WalletStatus(h.address, h.balance_sol, h.status)
                for i, h in enumerate(wallets.health().values(), start=1)}
    return read


def build_health(config: Config, store: Store, clock: Clock, *, rpc: Probe | None,
                 wallets: WalletPool | None) -> Health:
    return Health(clock=clock, database=store.ping, rpc=rpc, network=config.x402.network,
                  route_prefix=config.server.route_prefix, features=enabled_features(config),
                  wallets=wallet_statuses(wallets) if wallets is not None else None)


def build_services(config: Config, store: Store, clock: Clock, *, health: Health,
                   verifier: PaymentVerifier, notifier: Notifier,
                   outbox: EventOutbox | None = None,
                   fee_payers: FeePayers | None = None,
                   gasless: GaslessBuilder | None = None,
                   wallets: WalletPool | None = None,
                   mint_programs: MintProgramSource | None = None,
                   hooks: PaymentHook | None = None,
                   stripe_breaker: CircuitBreaker | None = None,
                   seen_events: IdempotencyStore | None = None,
                   subscription_repo: SubscriptionRepo | None = None,
                   subscription_notifier: Notifier | None = None,
                   refund_outbox: RefundOutbox | None = None) -> Services:
    """Every resolver, wired from the configuration; REST and GraphQL share these.

    A payment's merchant webhook is staged in its unit of work through `outbox`; the
    live-events hub and `notifier` are told after the commit (so `notifier` must not be
    one that queues webhooks, or each event would be queued twice). Subscription events,
    which have no unit of work of their own, go to `subscription_notifier` (the webhook
    queue) when given; refunds queue `refund.succeeded` through `refund_outbox`."""
    products, coupons = catalog_repos(config, store, clock)
    pricing = Pricing(coupons, clock, RoundingMode.parse(config.x402.rounding_mode))
    terms = payment_terms(config)
    if gasless is not None and wallets is not None:
        terms = replace(terms, fee_payer=wallets.pick)  # quotes name extra.feePayer
    snapshots = CatalogSnapshots(products, coupons, pricing, clock)  # the one catalog cache
    quotes = Quotes(products, pricing, terms, snapshots)
    carts = Carts(store.carts, quotes, pricing, clock)
    nonces = Nonces(store.nonces, clock)
    admin_auth = AdminAuth(api_keys=config.admin.api_keys,
                           signers=[config.x402.payment_address, *config.admin.public_keys],
                           nonces=nonces)
    st = config.stripe
    stripe_settings = StripeSettings(
        secret_key=st.secret_key, webhook_secret=st.webhook_secret,
        success_url=st.success_url, cancel_url=st.cancel_url, tax_rate_id=st.tax_rate_id,
        api_base=st.api_base)
    timeout = config.server.request_timeout.total_seconds()
    cards = stripe_client(stripe_settings, request_timeout=timeout, breaker=stripe_breaker)
    programs = mint_programs or KnownMintPrograms()
    refunds = build_refunds(config, store, clock, quotes=quotes, nonces=nonces,
                            admin_auth=admin_auth, verifier=verifier, mint_programs=programs,
                            outbox=refund_outbox, cards=cards)
    subscriptions = build_subscriptions(
        config, store, clock, quotes=quotes, products=products,
        notifiers=[n for n in (subscription_notifier, notifier) if n is not None],
        gateway=cards, repo=subscription_repo, admin_auth=admin_auth)
    hub = PaymentEventHub()
    notify = PublishingNotifier(notifier, hub)
    checkout = build_checkout(
        stripe_settings, client=cards,
        extra_events={**refunds.stripe_handlers(),
                      **(subscriptions.stripe_events.handlers() if subscriptions else {})},
        subscription_checkout=subscriptions.stripe_events.on_checkout if subscriptions else None,
        quotes=quotes, pricing=pricing, coupons=coupons, products=products,
        sessions=store.sessions, payments=store.payments, unit_of_work=store.unit_of_work,
        coupons_in_store=coupons_in_store(config), notifier=notify, clock=clock,
        outbox=outbox, request_timeout=timeout, breaker=stripe_breaker,
        seen_events=seen_events)
    return Services(
        clock=clock, health=health, pricing=pricing,
        catalog=Catalog(products, coupons, snapshots, clock),
        coupons=CouponChecker(coupons, clock),
        quotes=quotes,
        carts=carts,
        gasless=Gasless(quotes, carts, gasless),
        payments=Payments(quotes=quotes, pricing=pricing, carts=store.carts,
                          payments=store.payments, coupons=coupons,
                          unit_of_work=store.unit_of_work, verifier=verifier,
                          notifier=notify, clock=clock, outbox=outbox,
                          fee_payers=fee_payers, mint_programs=programs,
                          hooks=hooks, refunds=refunds),
        checkout=checkout,
        payment_events=hub,
        nonces=nonces,
        admin_auth=admin_auth,
        subscriptions=subscriptions,
        refunds=refunds,
        server=server_info(config),
    )

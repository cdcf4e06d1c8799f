"""Composition root: Config -> services -> Starlette app (spec 01's start-up order).

This is the only module that knows every concrete class. Everything it opens is
registered with a `Lifecycle` and closed last-in, first-out when the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from importlib import metadata
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.config import Config
from cedros_pay.core.assets import stablecoin_for_mint
from cedros_pay.core.clock import Clock, SystemClock
from cedros_pay.core.money import RoundingMode
from cedros_pay.core.observability import PaymentHook
from cedros_pay.infra import build_infra, start_workers, wrap
from cedros_pay.integrations.solana import exact
from cedros_pay.integrations.solana.cosigner import WalletCosigner
from cedros_pay.integrations.solana.gasless import GaslessBuilder, TokenAccountCreator
from cedros_pay.integrations.solana.rpc import SolanaRpc
from cedros_pay.integrations.solana.rpc_health import RpcHealthProbe
from cedros_pay.integrations.solana.tx_queue import TxQueue
from cedros_pay.integrations.solana.verifier import SolanaVerifier
from cedros_pay.integrations.solana.wallets import (
    WalletHealth,
    WalletPool,
    keypairs_from_secrets,
    rpc_balance,
)
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.carts import Carts
from cedros_pay.resolvers.catalog import Catalog
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.events import (
    NoopNotifier,
    Notifier,
    PaymentEventHub,
    PublishingNotifier,
)
from cedros_pay.resolvers.gasless import Gasless
from cedros_pay.resolvers.health import Health, WalletStatus
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.payments import (
    FeePayers,
    MintProgramSource,
    Payments,
    PaymentVerifier,
)
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quotes
from cedros_pay.resolvers.services import Services
from cedros_pay.rest.context import SERVICES_KEY
from cedros_pay.rest.dispatch import FixedRoutes
from cedros_pay.rest.errors import EXCEPTION_HANDLERS
from cedros_pay.rest.guard import Endpoint, payment_guard
from cedros_pay.rest.routes import build_routes
from cedros_pay.schema.app import graphql_routes
from cedros_pay.storage.catalog import catalog_repos
from cedros_pay.storage.open import open_store
from cedros_pay.storage.sql.engine import PoolSettings
from cedros_pay.storage.sql.schema import TableNames
from cedros_pay.storage.store import Store
from cedros_pay.workers import PeriodicWorker, SupervisedWorker
from cedros_pay.workers.balance_monitor import BalanceMonitor

log = logging.getLogger("cedros_pay.app")


def table_names(config: Config) -> TableNames:
    mapping = config.storage.schema_mapping
    return TableNames(**{f.name: mapping.table_name(f.name) for f in fields(TableNames)})


def enabled_features(config: Config) -> list[str]:
    """The feature strings `/cedros-health` lists (spec 02)."""
    flags = {
        "stripe": bool(config.stripe.secret_key),
        "x402": bool(config.x402.payment_address),
        "gasless": config.x402.gasless_enabled,
        "subscriptions": config.subscriptions.enabled,
    }
    return [name for name, on in flags.items() if on]


async def open_configured_store(config: Config) -> Store:
    s = config.storage
    pool = PoolSettings(max_open_conns=s.postgres_pool.max_open_conns,
                        max_idle_conns=s.postgres_pool.max_idle_conns,
                        conn_max_lifetime=s.postgres_pool.conn_max_lifetime)
    return await open_store(s.backend, file_path=s.file_path, postgres_url=s.postgres_url,
                            names=table_names(config), pool=pool)


def payment_terms(config: Config) -> PaymentTerms:
    x = config.x402
    coin = stablecoin_for_mint(x.token_mint, x.network)
    return PaymentTerms(
        network=x.network, payment_address=x.payment_address, token_mint=x.token_mint,
        token_symbol=coin.code if coin else (x.allowed_tokens[0] if x.allowed_tokens else ""),
        token_decimals=x.token_decimals, quote_ttl=config.paywall.quote_ttl,
        cart_ttl=config.storage.cart_quote_ttl, memo_prefix=x.memo_prefix,
    )


def build_services(config: Config, store: Store, clock: Clock, *, health: Health,
                   features: list[str], verifier: PaymentVerifier,
                   notifier: Notifier, fee_payers: FeePayers | None = None,
                   gasless: GaslessBuilder | None = None,
                   wallets: WalletPool | None = None,
                   mint_programs: MintProgramSource | None = None,
                   hooks: PaymentHook | None = None) -> Services:
    """Every resolver, wired from the configuration; REST and GraphQL share these."""
    products, coupons = catalog_repos(config, store, clock)
    pricing = Pricing(coupons, clock, RoundingMode.parse(config.x402.rounding_mode))
    terms = payment_terms(config)
    if gasless is not None and wallets is not None:
        terms = replace(terms, fee_payer=wallets.pick)  # quotes name extra.feePayer
    snapshots = CatalogSnapshots(products, coupons, pricing, clock)  # the one catalog cache
    quotes = Quotes(products, pricing, terms, snapshots)
    carts = Carts(store.carts, quotes, pricing, clock)
    nonces = Nonces(store.nonces, clock)
    hub = PaymentEventHub()
    return Services(
        config=config, clock=clock, store=store, health=health, pricing=pricing,
        catalog=Catalog(products, coupons, snapshots, clock),
        coupons=CouponChecker(coupons, clock),
        quotes=quotes,
        carts=carts,
        gasless=Gasless(quotes, carts, gasless),
        payments=Payments(quotes=quotes, pricing=pricing, carts=store.carts,
                          payments=store.payments, coupons=coupons, verifier=verifier,
                          notifier=PublishingNotifier(notifier, hub), clock=clock,
                          fee_payers=fee_payers, mint_programs=mint_programs,
                          hooks=hooks),
        payment_events=hub,
        nonces=nonces,
        admin_auth=AdminAuth(
            api_keys=config.admin.api_keys,
            signers=[config.x402.payment_address, *config.admin.public_keys],
            nonces=nonces),
        version=version(),
        features=features,
    )


def wallet_statuses(wallets: WalletPool) -> Callable[[], dict[str, WalletStatus]]:
    """`/cedros-health` walletHealth (spec 02): `wallet1`, `wallet2`, ... in config order."""
    def read() -> dict[str, WalletStatus]:
        return {f"wallet{i}": WalletStatus(h.address, h.balance_sol, h.status)
                for i, h in enumerate(wallets.health().values(), start=1)}
    return read


def version() -> str:
    try:
        return metadata.version("cedros-pay")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class CedrosApp:
    """The ASGI app `create_app` returns: a Starlette app plus the lifecycle it owns.

    When embedded under a parent app whose lifespan does not reach us (Starlette does
    not forward lifespan events to mounted apps), the services start on the first
    request instead; `aclose()` (or the parent's lifespan calling `lifespan()`) closes them.
    """

    def __init__(self, config: Config, *, store: Store | None, clock: Clock,
                 verifier: Any = None, notifier: Any = None,
                 fee_payers: FeePayers | None = None) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self.verifier = verifier
        # Server wallets offered as fee payer for official x402 (exact) payments; None
        # until wallets and a cosigning verifier are wired (then: the wallet pool).
        self.fee_payers = fee_payers
        self.notifier = notifier
        self._lifecycle = Lifecycle()
        self._start_lock = asyncio.Lock()
        self.services: Services | None = None
        prefix = config.server.route_prefix
        self.starlette = Starlette(
            routes=[*build_routes(prefix), *graphql_routes(f"{prefix}/graphql")],
            exception_handlers=EXCEPTION_HANDLERS, lifespan=self._lifespan)
        # Middleware chain, hooks, breakers, shared-state backends (infra.py).
        self.infra = build_infra(config)
        # The fixed-path REST endpoints skip Starlette's middleware stack (rest/dispatch.py).
        rest = FixedRoutes(self.starlette, EXCEPTION_HANDLERS)
        self.asgi: ASGIApp = wrap(rest, config, self.infra)

    @property
    def state(self) -> Any:
        return self.starlette.state

    async def start(self) -> Services:
        async with self._start_lock:
            if self.services is None:
                self.services = await self._open()
                self.starlette.state.services = self.services
            return self.services

    async def _open(self) -> Services:
        cfg = self.config
        store = self._store
        if store is None:
            store = await open_configured_store(cfg)
            self._lifecycle.push("store", store.close)
        http = httpx.AsyncClient()
        self._lifecycle.push("http_client", http.aclose)
        rpc = RpcHealthProbe(cfg.x402.rpc_url, http) if cfg.x402.rpc_url else None
        features = enabled_features(cfg)
        x = cfg.x402
        wallets: WalletPool | None = None
        gasless: GaslessBuilder | None = None
        if x.server_wallets and x.rpc_url:
            wallets, gasless = self._server_wallets(http)
        health = Health(
            clock=self._clock, database=store.ping, rpc=rpc, network=cfg.x402.network,
            route_prefix=cfg.server.route_prefix, features=features,
            wallets=wallet_statuses(wallets) if wallets is not None else None,
        )
        verifier = self.verifier
        if verifier is None:
            queue = self._tx_queue()
            solana = SolanaVerifier(
                x.rpc_url, x.ws_url or None, network=x.network, commitment=x.commitment,
                skip_preflight=x.skip_preflight, breaker=self.infra.breakers["solana_rpc"],
                # Official x402 exact clients choose their own budget, up to the
                # scheme's price ceiling; ours are built with the configured one.
                cosigner=WalletCosigner(
                    wallets, max_compute_unit_limit=max(x.compute_unit_limit, 200_000),
                    max_compute_unit_price=max(x.compute_unit_price_micro_lamports,
                                               exact.MAX_COMPUTE_UNIT_PRICE))
                if wallets is not None and x.gasless_enabled else None,
                tx_queue=queue,
                account_creator=TokenAccountCreator(
                    SolanaRpc(x.rpc_url, http=http), wallets, x.payment_address,
                    commitment=x.commitment)
                if wallets is not None and x.auto_create_token_account else None)
            self._lifecycle.push("solana_verifier", solana.aclose)
            if queue is not None:  # drained before the verifier's RPC client closes
                self._lifecycle.push("tx_queue", queue.shutdown)
            verifier = solana
        if self.fee_payers is None and wallets is not None and x.gasless_enabled:
            self.fee_payers = wallets
        services = build_services(cfg, store, self._clock, health=health, features=features,
                                  hooks=self.infra.hooks,
                                  verifier=verifier, notifier=self.notifier or NoopNotifier(),
                                  fee_payers=self.fee_payers, gasless=gasless,
                                  wallets=wallets,
                                  # exact payments pin the mint's owner, read from chain
                                  mint_programs=exact.MintPrograms(
                                      SolanaRpc(x.rpc_url, http=http).call)
                                  if x.rpc_url else None)
        await start_workers(self.infra, self._lifecycle, config=cfg, store=store,
                            clock=self._clock)
        if wallets is not None:
            self._start_wallet_workers(wallets, http)
        log.info("cedros pay started", extra={
            "storage_backend": store.backend, "network": cfg.x402.network,
            "route_prefix": cfg.server.route_prefix or "/",
        })
        return services

    def _server_wallets(self, http: httpx.AsyncClient
                        ) -> tuple[WalletPool, GaslessBuilder | None]:
        """X402_SERVER_WALLET_N as a health-checked pool, and the gasless builder if on."""
        x = self.config.x402
        wallet_rpc = SolanaRpc(x.rpc_url, http=http)

        async def balance(address: str) -> int:
            return await rpc_balance(wallet_rpc.call, address)

        wallets = WalletPool(keypairs_from_secrets(x.server_wallets), balance)
        builder = GaslessBuilder(
            wallet_rpc, wallets, compute_unit_limit=x.compute_unit_limit,
            compute_unit_price=x.compute_unit_price_micro_lamports,
            commitment=x.commitment) if x.gasless_enabled else None
        return wallets, builder

    def _tx_queue(self) -> TxQueue | None:
        """spec 22 transaction queue, when either limit is configured."""
        x = self.config.x402
        spacing = x.tx_queue_min_time_between.total_seconds()
        if spacing <= 0 and x.tx_queue_max_in_flight <= 0:
            return None
        queue = TxQueue(min_time_between=spacing, max_in_flight=x.tx_queue_max_in_flight)
        queue.start()
        return queue

    def _start_wallet_workers(self, wallets: WalletPool, http: httpx.AsyncClient) -> None:
        """Wallet health every 5 minutes; low-balance alerts when a URL is configured."""
        workers: list[SupervisedWorker] = [SupervisedWorker("wallet_health", wallets.run)]
        m = self.config.monitoring
        if m.low_balance_alert_url:
            monitor = BalanceMonitor(
                wallets.addresses, wallets.balance, http=http, url=m.low_balance_alert_url,
                threshold_sol=m.low_balance_threshold, clock=self._clock,
                headers=dict(m.headers), body_template=m.body_template,
                timeout=m.timeout.total_seconds())
            workers.append(PeriodicWorker("balance_monitor", m.check_interval.total_seconds(),
                                          monitor.check))

            async def alert_critical(health: WalletHealth) -> None:
                await monitor.on_critical(health.address, health.balance_sol)

            wallets.set_critical_callback(alert_critical)
        for worker in workers:
            worker.start()
            self._lifecycle.push(f"worker:{worker.name}", worker.stop)
        self.infra.workers.extend(workers)

    async def aclose(self) -> None:
        await self._lifecycle.close(budget=15.0)
        self.services = None

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    def require_payment(
        self, resource: str | Callable[[Request], str]
    ) -> Callable[[Endpoint], Endpoint]:
        """Protect one of the embedder's own endpoints with this app's x402 paywall."""
        return payment_guard(self.start, resource)

    def lifespan(self) -> Any:
        """For embedders: enter this from the parent app's lifespan."""
        return self._lifespan(self.starlette)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            if self.services is None:
                await self.start()
            scope[SERVICES_KEY] = self.services
        await self.asgi(scope, receive, send)


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    verifier: Any = None,
    notifier: Any = None,
    clock: Clock | None = None,
    fee_payers: FeePayers | None = None,
) -> CedrosApp:
    """Build the Cedros Pay ASGI app. Pass `store`, `verifier`, `notifier` or `clock` to
    replace the configured ones (tests, embedders); an injected store is not closed."""
    return CedrosApp(config, store=store, clock=clock or SystemClock(),
                     verifier=verifier, notifier=notifier, fee_payers=fee_payers)

"""The ASGI app `create_app` returns: routes and the middleware chain assembled at once,
everything that does I/O opened on start and closed last-in, first-out (spec 01)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.bootstrap.infra import Sweep, build_infra, connect_infra, wrap
from cedros_pay.bootstrap.services import (
    build_health,
    build_services,
    open_configured_store,
    table_names,
)
from cedros_pay.bootstrap.solana import open_solana
from cedros_pay.bootstrap.subscriptions import open_subscription_repo
from cedros_pay.bootstrap.webhooks import build_webhooks
from cedros_pay.bootstrap.workers import start_workers, storage_workers, wallet_workers
from cedros_pay.config import Config
from cedros_pay.core.clock import Clock, SystemClock
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.resolvers.events import NoopNotifier, Notifier
from cedros_pay.resolvers.payments import FeePayers, PaymentVerifier
from cedros_pay.resolvers.services import Services
from cedros_pay.rest.context import SERVICES_KEY
from cedros_pay.rest.dispatch import FixedRoutes
from cedros_pay.rest.errors import EXCEPTION_HANDLERS
from cedros_pay.rest.guard import Endpoint, payment_guard
from cedros_pay.rest.routes import build_routes
from cedros_pay.schema.app import graphql_routes
from cedros_pay.storage.store import Store
from cedros_pay.workers import SupervisedWorker

log = logging.getLogger("cedros_pay.app")

SUBSCRIPTION_SWEEP_SECONDS = 300.0  # expiry of overdue x402 subscriptions


class CedrosApp:
    """A Starlette app plus the lifecycle it owns.

    When embedded under a parent app whose lifespan does not reach us (Starlette does
    not forward lifespan events to mounted apps), the services start on the first
    request instead; `aclose()` (or the parent's lifespan calling `lifespan()`) closes them.
    """

    def __init__(self, config: Config, *, store: Store | None, clock: Clock,
                 verifier: PaymentVerifier | None = None, notifier: Notifier | None = None,
                 fee_payers: FeePayers | None = None) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._verifier = verifier
        self._notifier = notifier
        self._fee_payers = fee_payers
        self._lifecycle = Lifecycle()
        self._start_lock = asyncio.Lock()
        self.services: Services | None = None
        self.workers: tuple[SupervisedWorker, ...] = ()  # running while started
        prefix = config.server.route_prefix
        # GraphQL first: its one fixed path is the only one Starlette's router looks up
        # (the REST ones go through FixedRoutes), so it need not try every REST pattern.
        self.starlette = Starlette(
            routes=[*graphql_routes(f"{prefix}/graphql", config.graphql), *build_routes(prefix)],
            exception_handlers=EXCEPTION_HANDLERS, lifespan=self._lifespan)
        # Hooks, breakers, shared-state backends: built now, connected on start.
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
        cfg, clock, lifecycle = self.config, self._clock, self._lifecycle
        store = self._store
        if store is None:
            store = await open_configured_store(cfg)
            lifecycle.push("store", store.close)
        http = httpx.AsyncClient()  # every outbound HTTP call but Solana JSON-RPC's
        lifecycle.push("http_client", http.aclose)
        solana = open_solana(cfg.x402, breaker=self.infra.breakers["solana_rpc"],
                             lifecycle=lifecycle, verifier=self._verifier,
                             fee_payers=self._fee_payers)
        webhooks = build_webhooks(cfg, store, clock, http=http, hooks=self.infra.hooks)
        services = build_services(
            cfg, store, clock,
            health=build_health(cfg, store, clock, rpc=solana.health_probe,
                                wallets=solana.wallets),
            verifier=solana.verifier, notifier=self._notifier or NoopNotifier(),
            outbox=webhooks.outbox, subscription_notifier=webhooks.notifier,
            fee_payers=solana.fee_payers, gasless=solana.gasless, wallets=solana.wallets,
            mint_programs=solana.mint_programs, hooks=self.infra.hooks,
            stripe_breaker=self.infra.breakers["stripe_api"],
            seen_events=self.infra.idempotency, refund_outbox=webhooks.notifier,
            subscription_repo=await open_subscription_repo(cfg, store, lifecycle,
                                                           table_names(cfg)))
        lifecycle.push("stripe_client", services.checkout.aclose)
        await connect_infra(self.infra, lifecycle, store)
        services.webhook_admin = webhooks.admin(store, services.admin_auth, clock)
        sweeps = self.infra.sweeps
        if services.subscriptions is not None:  # x402 periods end without a webhook
            sweeps += (Sweep("subscription_expiry", SUBSCRIPTION_SWEEP_SECONDS,
                             services.subscriptions.expire_overdue),)
        workers = storage_workers(cfg, store, clock, sweeps)
        workers.append(webhooks.worker)
        if solana.wallets is not None:
            workers += wallet_workers(cfg.monitoring, solana.wallets, http=http, clock=clock)
        start_workers(workers, lifecycle)
        self.workers = tuple(workers)
        log.info("cedros pay started", extra={
            "storage_backend": store.backend, "network": cfg.x402.network,
            "route_prefix": cfg.server.route_prefix or "/",
        })
        return services

    async def aclose(self) -> None:
        await self._lifecycle.close(budget=15.0)
        self.services = None
        self.workers = ()

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
    verifier: PaymentVerifier | None = None,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    fee_payers: FeePayers | None = None,
) -> CedrosApp:
    """Build the Cedros Pay ASGI app. Pass `store`, `verifier` or `clock` to replace the
    configured ones (tests, embedders); an injected store is not closed. `notifier` is
    told of each settled payment after it committed, besides the merchant webhook the
    configured `callbacks` queue with the payment (it must not queue that webhook again)."""
    return CedrosApp(config, store=store, clock=clock or SystemClock(),
                     verifier=verifier, notifier=notifier, fee_payers=fee_payers)

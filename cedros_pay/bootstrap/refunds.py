"""Composition of refunds (issue 14): the signed-request checker and the refund resolver,
from `x402.payment_address` (the merchant wallet: body-form signer and refund payer) and
`storage.refund_quote_ttl`."""

from __future__ import annotations

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.refunds import (
    CardRefunds,
    MintPrograms,
    PaymentVerifier,
    RefundOutbox,
    Refunds,
)
from cedros_pay.resolvers.signed_requests import SignedRequests
from cedros_pay.storage.store import Store


def build_refunds(config: Config, store: Store, clock: Clock, *, quotes: Quotes,
                  nonces: Nonces, admin_auth: AdminAuth, verifier: PaymentVerifier,
                  mint_programs: MintPrograms, outbox: RefundOutbox | None,
                  cards: CardRefunds | None = None) -> Refunds:
    return Refunds(
        refunds=store.refunds, payments=store.payments, nonces=store.nonces,
        signed=SignedRequests(admin_auth, nonces, config.x402.payment_address),
        quotes=quotes, unit_of_work=store.unit_of_work, verifier=verifier,
        mint_programs=mint_programs, clock=clock, quote_ttl=config.storage.refund_quote_ttl,
        outbox=outbox, cards=cards)

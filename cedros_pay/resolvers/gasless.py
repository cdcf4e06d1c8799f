"""Gasless payments: build the transaction a buyer signs while a server wallet pays the
network fee (spec 02 `POST /paywall/v1/gasless-transaction`, spec 07, spec 22).

The price, mint, recipient and memo come from the same quote (or stored cart) the verify
path checks against, so the built transaction passes `/verify` unchanged once the buyer
has signed it; the server co-signs as fee payer there.
"""

from __future__ import annotations

from dataclasses import dataclass

from cedros_pay.core.assets import get_asset
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.money import Money
from cedros_pay.integrations.solana.accounts import associated_token_address
from cedros_pay.integrations.solana.gasless import GaslessBuilder, GaslessTransaction
from cedros_pay.resolvers.carts import Carts
from cedros_pay.resolvers.quotes import Quotes


@dataclass(frozen=True, slots=True)
class GaslessInput:
    resource_id: str
    user_wallet: str
    fee_payer: str | None = None
    coupon_code: str | None = None


class Gasless:
    def __init__(self, quotes: Quotes, carts: Carts, builder: GaslessBuilder | None) -> None:
        self._quotes = quotes
        self._carts = carts
        self._builder = builder

    @property
    def enabled(self) -> bool:
        return self._builder is not None

    async def build(self, tenant: str, req: GaslessInput) -> GaslessTransaction:
        """The unsigned payment for a product or cart with a server wallet as fee payer.

        A requested `fee_payer` must be one of ours (`invalid_field`), healthy or not;
        without one the next healthy wallet is used round-robin (spec 22)."""
        builder = self._builder
        if builder is None:  # a feature turned off, not a fault: answered like a missing endpoint
            raise CedrosError(ErrorCode.RESOURCE_NOT_FOUND,
                              "gasless transactions are not enabled on this server",
                              {"feature": "gasless"})
        if not req.resource_id:
            raise CedrosError(ErrorCode.MISSING_FIELD, "resourceId is required",
                              {"field": "resourceId"})
        if not req.user_wallet:
            raise CedrosError(ErrorCode.MISSING_FIELD, "userWallet is required",
                              {"field": "userWallet"})
        if req.resource_id.startswith(("cart_", "cart:")):
            cart = await self._carts.get(tenant, req.resource_id)
            if cart.is_paid:
                raise CedrosError(ErrorCode.CART_ALREADY_PAID, details={"cartId": cart.id})
            amount = Money(get_asset(cart.asset), cart.total_atomic)
            mint, decimals = self._quotes.mint_for(amount)
            return await builder.build(
                payer=req.user_wallet, mint=mint, amount=amount.atomic, decimals=decimals,
                recipient_token_account=associated_token_address(
                    self._quotes.terms.payment_address, mint),
                fee_payer=req.fee_payer)
        quote = await self._quotes.quote(tenant, req.resource_id, req.coupon_code)
        crypto = quote.crypto
        if crypto is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {req.resource_id!r} cannot be paid with x402")
        return await builder.build(
            payer=req.user_wallet, mint=crypto.asset_mint, amount=crypto.amount.atomic,
            decimals=crypto.decimals, recipient_token_account=crypto.pay_to,
            memo=crypto.memo or None,
            # The quote already took the next wallet round-robin; picking again would
            # advance the rotation twice per request.
            fee_payer=req.fee_payer or crypto.fee_payer)

"""Domain results -> the spec's exact JSON (specs 02, 04). Shared by every REST handler."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cedros_pay.core.assets import find_asset
from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.models import Coupon, PaymentTransaction
from cedros_pay.core.money import Money
from cedros_pay.resolvers.carts import CartQuoteResult
from cedros_pay.resolvers.catalog import CatalogView, ProductView
from cedros_pay.resolvers.coupon_check import CouponValidation
from cedros_pay.resolvers.nonces import IssuedNonce
from cedros_pay.resolvers.payments import AccessGrant
from cedros_pay.resolvers.pricing import Priced
from cedros_pay.resolvers.quotes import CryptoRequirement


def amount(money: Money | None) -> float:
    """Major units as the float the wire format uses; 0 when there is no price."""
    return money.to_major() if money is not None else 0.0


def discount_percent(priced: Priced | None) -> float:
    if priced is None or priced.original.atomic == 0:
        return 0.0
    off = Decimal(priced.original.atomic - priced.effective.atomic) * 100
    return float(round(off / priced.original.atomic, 2))


def requirement(r: CryptoRequirement) -> dict[str, Any]:
    extra: dict[str, Any] = {"recipientTokenAccount": r.pay_to, "decimals": r.decimals,
                             "tokenSymbol": r.token_symbol, "memo": r.memo}
    if r.fee_payer:
        extra["feePayer"] = r.fee_payer
    return {
        "scheme": r.scheme, "network": r.network, "maxAmountRequired": str(r.amount.atomic),
        "resource": r.resource, "description": r.description, "mimeType": r.mime_type,
        "payTo": r.pay_to, "maxTimeoutSeconds": r.max_timeout_seconds, "asset": r.asset_mint,
        "extra": extra,
    }


def payment_required(reqs: list[CryptoRequirement]) -> dict[str, Any]:
    return {"x402Version": 0, "accepts": [requirement(r) for r in reqs]}


def _codes(priced: Priced | None) -> str:
    return ",".join(c.code for c in priced.catalog) if priced else ""


def product(view: ProductView) -> dict[str, Any]:
    p, fiat, crypto = view.product, view.fiat, view.crypto
    return {
        "id": p.id,
        "description": p.description,
        "fiatAmount": amount(fiat.original if fiat else None),
        "effectiveFiatAmount": amount(fiat.effective if fiat else None),
        "fiatCurrency": p.fiat_currency,
        "stripePriceId": p.stripe_price_id,
        "cryptoAmount": amount(crypto.original if crypto else None),
        "effectiveCryptoAmount": amount(crypto.effective if crypto else None),
        "cryptoToken": crypto.effective.asset.code if crypto else p.crypto_token,
        "hasStripeCoupon": bool(fiat and fiat.catalog),
        "hasCryptoCoupon": bool(crypto and crypto.catalog),
        "stripeCouponCode": _codes(fiat),
        "cryptoCouponCode": _codes(crypto),
        "stripeDiscountPercent": discount_percent(fiat),
        "cryptoDiscountPercent": discount_percent(crypto),
        "metadata": dict(p.metadata),
    }


def coupon_description(c: Coupon) -> str:
    if c.discount_type == "percentage":
        return f"{c.discount_value.normalize():f}% off at checkout"
    return f"{c.discount_value.normalize():f} {c.currency.upper() or 'USD'} off at checkout"


def checkout_coupon(c: Coupon) -> dict[str, Any]:
    return {"code": c.code, "discountType": c.discount_type,
            "discountValue": float(c.discount_value), "currency": c.currency,
            "description": c.metadata.get("description") or coupon_description(c)}


def catalog(view: CatalogView) -> dict[str, Any]:
    return {
        "products": [product(v) for v in view.products],
        "checkoutStripeCoupons": [checkout_coupon(c) for c in view.checkout_stripe_coupons],
        "checkoutCryptoCoupons": [checkout_coupon(c) for c in view.checkout_crypto_coupons],
    }


def coupon_validation(v: CouponValidation) -> dict[str, Any]:
    return {
        "valid": v.valid, "code": v.code, "discountType": v.discount_type,
        "discountValue": float(v.discount_value), "scope": v.scope,
        "applicableProducts": list(v.applicable_products), "paymentMethod": v.payment_method,
        "expiresAt": to_rfc3339(v.expires_at) if v.expires_at else None,
        "remainingUses": v.remaining_uses, "error": v.error,
        "errorCode": v.error_code.value if v.error_code else None,
    }


def cart_quote(result: CartQuoteResult) -> dict[str, Any]:
    cart = result.cart
    return {
        "cartId": cart.id,
        "quote": requirement(result.requirement),
        "items": [
            {"resource": line.product.id, "quantity": line.quantity,
             "priceAmount": line.unit.effective.to_major(),
             "originalPrice": line.unit.original.to_major(),
             "token": line.unit.effective.asset.code, "description": line.product.description,
             "appliedCoupons": [c.code for c in line.unit.catalog]}
            for line in result.lines
        ],
        "totalAmount": result.total.effective.to_major(),
        "metadata": dict(cart.metadata),
        "expiresAt": to_rfc3339(cart.expires_at),
    }


def nonce(issued: IssuedNonce) -> dict[str, Any]:
    return {"nonce": issued.nonce.id, "expiresAt": issued.expires_at_unix,
            "purpose": issued.nonce.purpose}


def access_grant(grant: AccessGrant) -> dict[str, Any]:
    return {
        "granted": True, "resource": grant.resource_id, "resourceType": grant.resource_type,
        "wallet": grant.wallet, "signature": grant.signature, "network": grant.network,
        "amount": str(grant.amount.atomic), "token": grant.amount.asset.code,
        "paidAt": to_rfc3339(grant.paid_at), "expiresAt": to_rfc3339(grant.expires_at),
    }


def recorded_payment(tx: PaymentTransaction) -> dict[str, Any]:
    asset = find_asset(tx.asset)
    shown = Money(asset, tx.amount_atomic).major_str(2) if asset else str(tx.amount_atomic)
    return {"verified": True, "resource_id": tx.resource_id, "wallet": tx.wallet,
            "paid_at": to_rfc3339(tx.created_at), "amount": shown,
            "metadata": dict(tx.metadata)}

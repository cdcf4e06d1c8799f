"""Domain results -> the spec's exact JSON (specs 02, 04). Shared by every REST handler."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import orjson

from cedros_pay.core.assets import find_asset
from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError
from cedros_pay.core.models import Coupon, PaymentTransaction
from cedros_pay.core.money import Money
from cedros_pay.resolvers.carts import CartQuoteResult
from cedros_pay.resolvers.catalog import CatalogView, ProductView
from cedros_pay.resolvers.coupon_check import CouponValidation
from cedros_pay.resolvers.nonces import IssuedNonce
from cedros_pay.resolvers.payments import AccessGrant, Offer, Settled
from cedros_pay.resolvers.pricing import Priced
from cedros_pay.resolvers.quotes import CryptoRequirement
from cedros_pay.resolvers.x402_headers import payment_required_document


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


def settlement_header(*, signature: str | None, network: str | None,
                      error: str | None = None) -> str:
    """X-PAYMENT-RESPONSE (spec 16): base64 of the settlement JSON."""
    body = {"success": error is None, "txHash": signature, "networkId": network,
            "error": error}
    return base64.b64encode(orjson.dumps(body)).decode()


def recorded_payment(tx: PaymentTransaction) -> dict[str, Any]:
    asset = find_asset(tx.asset)
    shown = Money(asset, tx.amount_atomic).major_str(2) if asset else str(tx.amount_atomic)
    return {"verified": True, "resource_id": tx.resource_id, "wallet": tx.wallet,
            "paid_at": to_rfc3339(tx.created_at), "amount": shown,
            "metadata": dict(tx.metadata)}


# --- official x402 (exact scheme, protocol v1/v2) headers ----------------------------------


def base64_json(doc: dict[str, Any]) -> str:
    return base64.b64encode(orjson.dumps(doc)).decode()


# Without an exact offer the header depends only on the URL and the product's texts, and
# the same few come back all the time; bounded, as URLs come from clients.
_NO_OFFER_HEADERS: dict[tuple[str, str, str, str | None], str] = {}
_NO_OFFER_LIMIT = 1024


def exact_payment_required(offer: Offer, url: str, error: str | None = None) -> str:
    """PAYMENT-REQUIRED: base64 of the x402 v2 PaymentRequired object. Without a server
    wallet to pay fees there is no exact offer, and `accepts` is empty."""
    crypto = offer.quote.crypto
    description = crypto.description if crypto else ""
    mime_type = crypto.mime_type if crypto else "application/json"
    if offer.exact is not None:  # carries this quote's memo: made afresh
        return base64_json(payment_required_document(
            [offer.exact], url=url, description=description, mime_type=mime_type,
            error=error))
    key = (url, description, mime_type, error)
    found = _NO_OFFER_HEADERS.get(key)
    if found is None:
        if len(_NO_OFFER_HEADERS) >= _NO_OFFER_LIMIT:
            _NO_OFFER_HEADERS.clear()
        found = _NO_OFFER_HEADERS[key] = base64_json(payment_required_document(
            [], url=url, description=description, mime_type=mime_type, error=error))
    return found


def exact_settlement(settled: Settled) -> tuple[str, str]:
    """The reply header for a settled exact payment: PAYMENT-RESPONSE (v2), or
    X-PAYMENT-RESPONSE (v1) with the Cedros keys beside the official ones."""
    grant = settled.grant
    doc: dict[str, Any] = {"success": True, "transaction": grant.signature,
                           "network": settled.network, "payer": grant.wallet}
    if settled.version == 2:
        return "PAYMENT-RESPONSE", base64_json(doc)
    doc.update(txHash=grant.signature, networkId=grant.network, error=None)
    return "X-PAYMENT-RESPONSE", base64_json(doc)


def exact_refusal(version: int, network: str, error: CedrosError) -> tuple[str, str]:
    """The reply header for a refused exact payment (`success: false`, the spec code as
    `errorReason`), so an SDK client sees why without parsing the body."""
    doc: dict[str, Any] = {"success": False, "errorReason": error.code.value,
                           "errorMessage": error.message, "transaction": "",
                           "network": network, "payer": ""}
    if version == 2:
        return "PAYMENT-RESPONSE", base64_json(doc)
    doc.update(txHash=None, networkId=None, error=error.message)
    return "X-PAYMENT-RESPONSE", base64_json(doc)

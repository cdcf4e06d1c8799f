"""Refund endpoints (spec 04): request, pending, approve, deny. Execution is POST /verify.

Bodies are read with decimals kept as their text (`json` with `parse_float=Decimal`), so
an amount like 0.89 reaches the resolver as the decimal the client wrote.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.assets import find_asset
from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import RefundQuote
from cedros_pay.core.money import Money
from cedros_pay.resolvers.admin_auth import SignedHeaders
from cedros_pay.resolvers.refunds import RefundInput, Refunds, public_metadata, status_of
from cedros_pay.resolvers.signed_requests import SignedRequest
from cedros_pay.rest.context import request_header, services, tenant
from cedros_pay.rest.endpoint import IDEMPOTENCY_KEY, Header, endpoint
from cedros_pay.rest.models import (
    CardRefundBody,
    CardRefundOpened,
    PendingRefunds,
    RefundApproval,
    RefundDenied,
    RefundIdBody,
    RefundRequestBody,
    RefundRequested,
    SignedBody,
)
from cedros_pay.rest.parsing import read_body
from cedros_pay.rest.responses import spec_json

SIGNED_HEADERS = (
    Header("X-Signer", "Base58 public key of the signer (an admin; the payer for a "
           "refund request)", max_length=64),
    Header("X-Signature", "Base64 Ed25519 signature of the exact X-Message bytes",
           max_length=128),
    Header("X-Message", "`<action>:<value>`: list-pending-refunds:<nonce>, "
           "approve-refund:<refundId>, deny-refund:<refundId>, "
           "request-refund:<originalPurchaseId>", max_length=512))
# Refund transitions take an Idempotency-Key (the idempotency middleware reads this).
SIGNED_IDEMPOTENT = (*SIGNED_HEADERS, IDEMPOTENCY_KEY)
_NO_STORE = {"Cache-Control": "no-store"}
_E = ErrorCode
# What a signed refund call can answer (resolvers/refunds.py, signed_requests.py, nonces.py).
_REFUSALS = (_E.UNAUTHORIZED, _E.FORBIDDEN, _E.UNAUTHORIZED_REFUND_ISSUER, _E.INVALID_SIGNATURE,
             _E.INVALID_AMOUNT, _E.INVALID_WALLET, _E.INVALID_RESOURCE,
             _E.REFUND_ALREADY_PROCESSED, _E.REFUND_NOT_FOUND, _E.RESOURCE_NOT_FOUND,
             _E.PAYMENT_ALREADY_USED, _E.TRANSACTION_NOT_FOUND, _E.TRANSACTION_NOT_CONFIRMED,
             _E.QUOTE_EXPIRED, _E.RPC_ERROR, _E.NETWORK_ERROR, _E.STRIPE_ERROR)
REQUESTED = ("Refund request submitted successfully. An admin will review and process "
             "your request.")


def _refunds(request: Request) -> Refunds:
    refunds = services(request).refunds
    if refunds is None:
        raise CedrosError(ErrorCode.FORBIDDEN, "refunds are not available on this server")
    return refunds


async def json_body(request: Request) -> dict[str, Any]:
    """The body as an object, decimals as `Decimal`; `null` values dropped (absent)."""
    raw = await read_body(request)
    try:
        data = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise CedrosError(ErrorCode.INVALID_FIELD, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise CedrosError(ErrorCode.INVALID_FIELD, "request body must be a JSON object")
    return {k: v for k, v in data.items() if v is not None}


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise CedrosError(ErrorCode.MISSING_FIELD, f"{key} is required", {"field": key})
        return ""
    if not isinstance(value, str):
        raise CedrosError(ErrorCode.INVALID_FIELD, f"{key} must be a string", {"field": key})
    return value.strip()


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    value = body.get("metadata") or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CedrosError(ErrorCode.INVALID_FIELD, "metadata must be an object of strings",
                          {"field": "metadata"})
    return value


def _amount(body: dict[str, Any]) -> str | int | Decimal:
    value = body.get("amount")
    if value is None:
        raise CedrosError(ErrorCode.MISSING_FIELD, "amount is required", {"field": "amount"})
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount must be a number",
                          {"field": "amount"})
    return value


def signed(request: Request, body: dict[str, Any]) -> SignedRequest:
    nonce = body.get("nonce")
    signature = body.get("signature")
    return SignedRequest(
        signer=request_header(request, b"x-signer"),
        signature=request_header(request, b"x-signature"),
        message=request_header(request, b"x-message"),
        nonce=nonce if isinstance(nonce, str) and nonce else None,
        body_signature=signature if isinstance(signature, str) and signature else None)


def major(refund: RefundQuote) -> float:
    asset = find_asset(refund.asset)
    return Money(asset, refund.amount_atomic).to_major() if asset else float(
        refund.amount_atomic)


def listed(refund: RefundQuote) -> dict[str, Any]:
    return {"id": refund.id, "originalPurchaseId": refund.original_purchase_id,
            "recipientWallet": refund.recipient_wallet, "amount": major(refund),
            "token": refund.asset, "reason": refund.reason, "status": status_of(refund),
            "createdAt": to_rfc3339(refund.created_at)}


@endpoint("Ask for a refund of a purchase, signed by the wallet that paid it", tag="refunds",
          request=RefundRequestBody, headers=SIGNED_IDEMPOTENT,
          responses={201: RefundRequested, 200: RefundRequested}, errors=_REFUSALS,
          description="201 opens the request; the same request again answers 200 with it.")
async def request_refund(request: Request) -> Response:
    body = await json_body(request)
    inp = RefundInput(
        original_purchase_id=_text(body, "originalPurchaseId"),
        recipient_wallet=_text(body, "recipientWallet"), amount=_amount(body),
        token=_text(body, "token"), reason=_text(body, "reason", required=False),
        metadata=_metadata(body))
    refund, created = await _refunds(request).request(tenant(request), signed(request, body),
                                                      inp)
    return spec_json({
        "refundId": refund.id, "status": status_of(refund),
        "originalPurchaseId": refund.original_purchase_id,
        "recipientWallet": refund.recipient_wallet, "amount": major(refund),
        "token": refund.asset, "reason": refund.reason,
        "metadata": public_metadata(refund), "createdAt": to_rfc3339(refund.created_at),
        "message": REQUESTED}, status=201 if created else 200)


@endpoint("List pending refunds (admin, list-pending-refunds:<nonce>)", tag="refunds",
          request=SignedBody, headers=SIGNED_HEADERS, responses={200: PendingRefunds},
          errors=_REFUSALS, body_required=False)
async def pending_refunds(request: Request) -> Response:
    body = await json_body(request)
    refunds = await _refunds(request).list_pending(tenant(request), signed(request, body))
    return spec_json({"refunds": [listed(r) for r in refunds]}, headers=_NO_STORE)


@endpoint("Approve a refund: the x402 quote the merchant wallet pays (admin)", tag="refunds",
          request=RefundIdBody, headers=SIGNED_IDEMPOTENT, responses={200: RefundApproval},
          errors=_REFUSALS)
async def approve_refund(request: Request) -> Response:
    body = await json_body(request)
    approval = await _refunds(request).approve(tenant(request), signed(request, body),
                                               _text(body, "refundId"))
    if approval.expires_at is None:  # a card purchase: Stripe was asked for the refund
        return spec_json({"refundId": approval.refund.id, "quote": None, "expiresAt": None,
                          "method": "stripe", "status": status_of(approval.refund),
                          "stripeRefundId": approval.stripe_refund_id}, headers=_NO_STORE)
    return spec_json({"refundId": approval.refund.id, "quote": approval.quote,
                      "expiresAt": to_rfc3339(approval.expires_at)}, headers=_NO_STORE)


@endpoint("Deny a refund (admin)", tag="refunds", request=RefundIdBody,
          headers=SIGNED_IDEMPOTENT, responses={200: RefundDenied}, errors=_REFUSALS)
async def deny_refund(request: Request) -> Response:
    body = await json_body(request)
    await _refunds(request).deny(tenant(request), signed(request, body),
                                 _text(body, "refundId"))
    return spec_json({"success": True, "message": "refund denied"}, headers=_NO_STORE)


@endpoint("Open a refund of a card purchase (admin: Bearer key or admin:<nonce>)",
          tag="refunds", request=CardRefundBody, admin=True, headers=(IDEMPOTENCY_KEY,),
          responses={201: CardRefundOpened, 200: CardRefundOpened}, errors=_REFUSALS)
async def open_card_refund(request: Request) -> Response:
    refunds, who = _refunds(request), tenant(request)
    # Credentials before the body is looked at (DESIGN §7: 401/403 before any lookup).
    await services(request).admin_auth.authenticate(
        who, request_header(request, b"authorization"), SignedHeaders(
            signer=request_header(request, b"x-signer"),
            signature=request_header(request, b"x-signature"),
            message=request_header(request, b"x-message")))
    body = await json_body(request)
    amount = _amount(body) if "amount" in body else None
    refund, created = await refunds.open_card_refund(
        who, _text(body, "originalPurchaseId"), amount, _text(body, "reason", required=False))
    return spec_json({
        "refundId": refund.id, "status": status_of(refund),
        "originalPurchaseId": refund.original_purchase_id, "amount": major(refund),
        "token": refund.asset, "reason": refund.reason,
        "createdAt": to_rfc3339(refund.created_at)}, status=201 if created else 200,
        headers=_NO_STORE)

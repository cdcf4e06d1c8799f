"""Refunds over GraphQL (issue 14): the admin's `refunds` connection, `approveRefund` and
`denyRefund` (admin auth as every admin field), and the buyer's `requestRefund`, which
carries the payer's signed message like the REST request. All on `resolvers.refunds`."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.assets import find_asset
from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import RefundQuote
from cedros_pay.core.money import Money as CoreMoney
from cedros_pay.resolvers.refunds import RefundInput, Refunds, public_metadata, status_of
from cedros_pay.resolvers.signed_requests import SignedRequest
from cedros_pay.schema.context import Context
from cedros_pay.schema.pagination import Connection, paginate
from cedros_pay.schema.types.money import Money

KIND = "refund"


@strawberry.type(description="A refund request; `status` is pending, approved or processed.")
class Refund:
    id: strawberry.ID
    original_purchase_id: str
    recipient_wallet: str
    amount: Money | None
    token: str
    reason: str
    status: str
    created_at: datetime
    processed_at: datetime | None
    signature: str | None
    metadata: JSON

    @classmethod
    def of(cls, r: RefundQuote) -> Refund:
        asset = find_asset(r.asset)
        return cls(id=strawberry.ID(r.id), original_purchase_id=r.original_purchase_id,
                   recipient_wallet=r.recipient_wallet,
                   amount=Money.from_domain(CoreMoney(asset, r.amount_atomic)) if asset
                   else None, token=r.asset, reason=r.reason, status=status_of(r),
                   created_at=r.created_at, processed_at=r.processed_at,
                   signature=r.signature, metadata=JSON(public_metadata(r)))


@strawberry.type(description="An approval: the x402 quote the merchant wallet pays, or for a "
                             "card purchase the Stripe refund asked for.")
class RefundApproval:
    refund: Refund
    quote: JSON | None
    expires_at: datetime | None
    stripe_refund_id: str | None


@strawberry.input(description="The payer's request, signed with "
                              "`request-refund:<originalPurchaseId>` (base64 signature).")
class RequestRefundInput:
    original_purchase_id: str
    recipient_wallet: str
    amount: str = strawberry.field(description="Decimal text in the purchase's token.")
    token: str
    signer: str
    signature: str
    message: str
    reason: str | None = None


def _refunds(info: strawberry.Info[Context]) -> Refunds:
    refunds = info.context.services.refunds
    if refunds is None:
        raise CedrosError(ErrorCode.FORBIDDEN, "refunds are not available on this server")
    return refunds


def _key(r: RefundQuote) -> str:
    return f"{to_rfc3339(r.created_at)}|{r.id}"


async def refunds(info: strawberry.Info[Context], first: int | None = None,
                  after: str | None = None, status: str | None = None,
                  ) -> Connection[Refund] | None:
    """Open refunds (pending or approved), oldest first."""
    rows = await _refunds(info).open_refunds(info.context.tenant, status)
    return paginate(rows, kind=KIND, key=_key, first=first, after=after, node=Refund.of)


async def approve_refund(info: strawberry.Info[Context], id: strawberry.ID,
                         ) -> RefundApproval | None:
    admin = await info.context.admin()
    approval = await _refunds(info).approve_as(info.context.tenant, admin.subject, str(id))
    return RefundApproval(refund=Refund.of(approval.refund),
                          quote=JSON(approval.quote) if approval.quote is not None else None,
                          expires_at=approval.expires_at,
                          stripe_refund_id=approval.stripe_refund_id or None)


async def deny_refund(info: strawberry.Info[Context], id: strawberry.ID) -> Refund | None:
    return Refund.of(await _refunds(info).deny_as(info.context.tenant, str(id)))


async def request_refund(info: strawberry.Info[Context],
                         input: RequestRefundInput) -> Refund | None:
    refund, _created = await _refunds(info).request(
        info.context.tenant,
        SignedRequest(signer=input.signer, signature=input.signature, message=input.message),
        RefundInput(original_purchase_id=input.original_purchase_id,
                    recipient_wallet=input.recipient_wallet, amount=input.amount,
                    token=input.token, reason=input.reason or ""))
    return Refund.of(refund)

"""Payment queries: one recorded payment by signature (public), and the admin listing.

The listing pages by keyset, not offset: its cursor is the last row's `(paidAt,
signature)`, the same key the ledger sorts by, so a page boundary holds while new
payments keep arriving at the top.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import strawberry

from cedros_pay.core.clock import as_utc, parse_rfc3339, to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import PaymentFilter, PaymentTransaction
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.pagination import Edge, PageInfo, decode_cursor, encode_cursor
from cedros_pay.schema.types.enums import PaymentMethod
from cedros_pay.schema.types.payment import Payment, PaymentConnection, TotalsOnce

CURSOR_KIND = "payment"
DEFAULT_PAYMENTS_PAGE = 20


@strawberry.input(description="Which payments to list; unset fields match everything.")
class PaymentFilterInput:
    resource: str | None = strawberry.field(default=None,
                                            description="A product id or cart id.")
    wallet: str | None = None
    method: PaymentMethod | None = None
    since: datetime | None = strawberry.field(default=None, description="Inclusive.")
    until: datetime | None = strawberry.field(default=None, description="Exclusive.")

    def to_domain(self) -> PaymentFilter:
        # An empty text box on a dashboard means "any", not "the empty id".
        resource = check_text("filter.resource", self.resource or "") or None
        wallet = check_text("filter.wallet", self.wallet or "") or None
        return PaymentFilter(resource_id=resource, wallet=wallet,
                             method=self.method.value if self.method else None,
                             since=self.since, until=self.until)


def payment_cursor(tx: PaymentTransaction) -> str:
    # The timestamp goes first: it never contains "|", whereas a signature's form is
    # the ledger's business (`stripe:` ids included).
    return encode_cursor(CURSOR_KIND, f"{to_rfc3339(as_utc(tx.created_at))}|{tx.signature}")


def parse_payment_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, sep, signature = decode_cursor(CURSOR_KIND, cursor).partition("|")
    try:
        at = parse_rfc3339(stamp)
    except ValueError:
        sep = ""
    if not sep or not signature:
        raise CedrosError(ErrorCode.INVALID_FIELD, "after is not a cursor from this list",
                          {"field": "after"})
    return at, signature


async def payment(info: strawberry.Info[Context], signature: str) -> Payment | None:
    """Like GET /x402-transaction/verify, but an unknown signature is null, not an error:
    "not paid yet" is an answer a client polls for."""
    check_text("signature", signature)
    found = await info.context.services.payments.get(info.context.tenant, signature.strip())
    return Payment.from_domain(found) if found is not None else None


async def payments(
    info: strawberry.Info[Context],
    first: int | None = DEFAULT_PAYMENTS_PAGE,
    after: str | None = None,
    where: Annotated[PaymentFilterInput | None, strawberry.argument(name="filter")] = None,
) -> PaymentConnection | None:
    """Admin: the tenant's payments newest first; `totals` cover the filter, not the page."""
    services, tenant = info.context.services, info.context.tenant
    match = where.to_domain() if where is not None else PaymentFilter()
    boundary = parse_payment_cursor(after) if after is not None else None
    rows, has_next = await services.payments.page(
        tenant, match, DEFAULT_PAYMENTS_PAGE if first is None else first, boundary)
    edges = [Edge(node=Payment.from_domain(tx), cursor=payment_cursor(tx)) for tx in rows]
    return PaymentConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            # Keyset pages cannot count backwards cheaply; coming from a cursor means
            # the list has rows before this page.
            has_previous_page=boundary is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        totals_source=TotalsOnce(partial(services.payments.totals, tenant, match)),
    )

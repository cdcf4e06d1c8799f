"""Live fields over graphql-transport-ws (DESIGN §6): settled payments as they happen.

`paymentEvents` is admin-only, like the `payments` listing it keeps fresh: every event
names a payer's wallet, an amount and the merchant's metadata. A WebSocket carries its
credentials either in the `connection_init` payload (`{"authorization": "Bearer ..."}`,
or `x-signer`/`x-signature`/`x-message`; browsers cannot set WebSocket headers) or in
the handshake's own headers. See `CedrosGraphQL.on_ws_connect` for when they are checked.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.permissions import ADMIN
from cedros_pay.schema.types.payment import PaymentEvent


async def payment_events(info: strawberry.Info[Context]) -> AsyncGenerator[PaymentEvent, None]:
    """Settled payments of the connection's tenant, from now on (no replay of the past:
    the `payments` query is the history). A subscriber that falls behind loses its
    oldest events rather than slowing payments down (`PaymentEventHub`)."""
    hub = info.context.services.payment_events
    async for event in hub.subscribe(info.context.tenant):
        yield PaymentEvent.from_domain(event)


@strawberry.type
class Subscription:
    payment_events: AsyncGenerator[PaymentEvent, None] = strawberry.subscription(
        resolver=payment_events, permission_classes=ADMIN,
        description="Admin: each payment of this tenant as it settles.")

"""The request checks of spec 10 that only look at a request, run in one pass.

Security headers, API version, tenant, API key and rate limit each read the request,
then either refuse it or let it through, perhaps with headers for the response; none of
them needs to wrap the app. Stacked as separate layers, each cost a coroutine frame, a
scope-type test and a response-edit registration on every request. A `Gate` runs a list
of such checks in order, in one frame. A check is called with the scope and returns

    None                          let it through
    a header list / HeaderBlock   let it through, with this edit to the response
      / HeaderEdit                (applied as the Exchange applies every edit: _asgi.py)
    Refusal                       answer with this error envelope; later checks do not run
    a coroutine                   (a check that needs I/O, such as a Redis rate limiter)
                                  awaited, then one of the above

Edits are registered in check order, as the stacked layers registered them, so a
refusal from a later check still carries the headers of the earlier ones (security
headers on a 429, say). On websocket scopes only the checks marked `websocket` run,
and a refusal closes the socket (1008, policy violation).
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from types import CoroutineType
from typing import Any, NamedTuple, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError
from cedros_pay.rest.middleware._asgi import (
    HeaderBlock,
    HeaderEdit,
    Headers,
    exchange,
    send_error,
)


class Refusal(NamedTuple):
    """Stop here and answer with spec 15's error envelope."""

    error: CedrosError
    status: int | None = None  # None: the error code's own status
    headers: Sequence[tuple[str, str]] = ()


Outcome = Headers | HeaderBlock | HeaderEdit | Refusal | None


class Check(Protocol):
    websocket: bool  # whether it also applies to websocket scopes

    def __call__(self, scope: Scope) -> Outcome | Coroutine[Any, Any, Outcome]: ...


class Gate:
    def __init__(self, app: ASGIApp, checks: Sequence[Check]) -> None:
        self.app = app
        self.checks = tuple(checks)
        self.websocket_checks = tuple(c for c in self.checks if c.websocket)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            ex, send = exchange(scope, send)
            edits = ex.edits
            for check in self.checks:
                outcome = check(scope)
                if outcome is None:
                    continue
                if type(outcome) is CoroutineType:
                    outcome = await outcome
                    if outcome is None:
                        continue
                if type(outcome) is Refusal:
                    await send_error(scope, receive, send, outcome.error,
                                     status=outcome.status, headers=outcome.headers)
                    return
                edits.append(outcome)  # type: ignore[arg-type]
        elif kind == "websocket":
            for check in self.websocket_checks:
                outcome = check(scope)
                if type(outcome) is CoroutineType:
                    outcome = await outcome
                if type(outcome) is Refusal:
                    await send({"type": "websocket.close", "code": 1008})
                    return
        await self.app(scope, receive, send)

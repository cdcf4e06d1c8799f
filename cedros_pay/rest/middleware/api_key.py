"""API key tiers (spec 10, spec 13): X-API-Key decides the request's rate-limit tier.

free and pro get the standard limits, enterprise skips the per-wallet and per-IP limits,
partner skips them all. Without a key, or with one the server does not know, a request is
`free`: the key grants exemptions, its absence takes nothing away, so a stale key is not
an outage for the client. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.types import Scope

from cedros_pay.rest.middleware._asgi import header, state

FREE = "free"
TIERS = ("free", "pro", "enterprise", "partner")


class APIKey:
    """The check (gate.py): the request's tier goes to the request state."""

    websocket = True

    def __init__(self, *, enabled: bool, keys: Mapping[str, str]) -> None:
        self.enabled = enabled and bool(keys)
        self.keys = [(k.encode(), tier) for k, tier in keys.items() if tier in TIERS]

    def tier_of(self, key: str) -> str:
        given = key.encode("latin-1")
        tier = FREE
        for known, known_tier in self.keys:  # no early exit: timing says nothing
            if hmac.compare_digest(given, known):
                tier = known_tier
        return tier

    def __call__(self, scope: Scope) -> None:
        key = header(scope, b"x-api-key") if self.enabled else None
        state(scope)["api_tier"] = self.tier_of(key) if key else FREE

"""Rate limiting (spec 10, spec 13): token buckets, global, per wallet and per IP.

Every request draws from the global bucket, from its IP's bucket, and, when it names a
wallet (X-Wallet, X-Signer, `?wallet=`), from that wallet's bucket too. The reference
uses the IP bucket only when no wallet is named; we always use it, since a client could
otherwise dodge its IP's limit by sending a new made-up wallet with each request.
API key tiers exempt: enterprise skips the wallet and IP buckets, partner skips all.

A refusal is a 429 envelope with Retry-After and X-RateLimit-Limit/-Remaining/-Reset;
an allowed request gets X-RateLimit-Limit/-Remaining of its tightest bucket. When the
bucket store fails (Redis down), requests are let through (fail open, no X-RateLimit-*
headers): an outage of the limiter must not become an outage of payments. The outage is
logged as one warning when it starts and one when Redis answers again, and while it
lasts one request a second tries Redis (the others skip the round trip), so limiting
resumes by itself within a second of Redis coming back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from cedros_pay.core.bounded import BoundedMemo
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.observability.hooks import RateLimitedEvent, RateLimitHook
from cedros_pay.rest.middleware._asgi import request_wallet, state
from cedros_pay.rest.middleware.gate import Outcome, Refusal
from cedros_pay.rest.middleware.state.buckets import Bucket, RateLimiter, Verdict
from cedros_pay.rest.middleware.state.outage import Outage

log = logging.getLogger("cedros_pay.ratelimit")


@dataclass(frozen=True, slots=True)
class Rule:
    limit: int
    window: float  # seconds


@dataclass(frozen=True, slots=True)
class RateLimitRules:
    """The enabled rules; None disables one."""

    global_: Rule | None = None
    per_wallet: Rule | None = None
    per_ip: Rule | None = None


def _bucket(kind: str, key: str, rule: Rule | None) -> tuple[Bucket, ...]:
    if rule is None or rule.limit <= 0 or rule.window <= 0:
        return ()
    return (Bucket(kind, key, rule.limit, rule.window),)


# Buckets are immutable and a client sends many requests: the buckets of each client
# (wallet, IP) are made once and reused.
_CLIENTS_LIMIT = 4096


class RateLimit:
    """The check (gate.py): one token from each of the request's buckets, or a 429."""

    websocket = False

    def __init__(self, *, limiter: RateLimiter, rules: RateLimitRules,
                 hooks: RateLimitHook | None = None, outage: Outage | None = None) -> None:
        self.limiter = limiter
        self.outage = outage or Outage(log, "rate limiter",
                                        meanwhile="requests are let through unlimited")
        self.rules = rules
        self.hooks = hooks
        self._global = _bucket("global", "", rules.global_)
        self._clients: BoundedMemo[tuple[str | None, str], tuple[Bucket, ...]] = \
            BoundedMemo(_CLIENTS_LIMIT)

    def buckets(self, scope: Scope, tier: str) -> tuple[Bucket, ...]:
        if tier == "partner":
            return ()
        if tier == "enterprise":
            return self._global
        st = state(scope)
        wallet = request_wallet(scope)
        if wallet:
            st["wallet"] = wallet
        client = scope.get("client")
        ip = str(st.get("client_ip") or (client[0] if client else ""))
        found = self._clients.get((wallet, ip))
        if found is None:
            rules = self.rules
            found = self._clients.put((wallet, ip), (
                *self._global,
                *(_bucket("wallet", wallet, rules.per_wallet) if wallet else ()),
                *(_bucket("ip", ip, rules.per_ip) if ip else ())))
        return found

    def __call__(self, scope: Scope) -> Outcome | Coroutine[Any, Any, Outcome]:
        tier: str = state(scope).get("api_tier", "free")
        buckets = self.buckets(scope, tier)
        if not buckets:
            return None
        outage = self.outage
        if outage.down and outage.skip():
            return None  # fail open without a round trip until the next probe
        try:
            verdict = self.limiter.acquire_now(buckets)
        except Exception as exc:
            outage.failed(exc)
            return None
        if verdict is None:  # the buckets live elsewhere (Redis): a round trip
            return self._acquire(buckets, tier)
        return self._judge(verdict, tier)

    async def _acquire(self, buckets: tuple[Bucket, ...], tier: str) -> Outcome:
        outage = self.outage
        try:
            verdict = await self.limiter.acquire(buckets)
        except Exception as exc:
            outage.failed(exc)
            return None
        if outage.down:
            outage.ok()
        return self._judge(verdict, tier)

    def _judge(self, verdict: Verdict, tier: str) -> Outcome:
        if verdict.allowed:
            return [(b"x-ratelimit-limit", b"%d" % verdict.limit),
                    (b"x-ratelimit-remaining", b"%d" % verdict.remaining)]
        kind = verdict.denied_by or "global"
        if self.hooks is not None:
            self.hooks.on_rate_limited(RateLimitedEvent(kind, tier))
        retry = verdict.retry_after_seconds
        err = CedrosError(ErrorCode.RATE_LIMIT_EXCEEDED, None,
                          {"limitType": kind, "retryAfterSeconds": retry})
        return Refusal(err, headers=[
            ("Retry-After", str(retry)),
            ("X-RateLimit-Limit", str(verdict.limit)),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(math.ceil(time.time() + verdict.retry_after))),
        ])

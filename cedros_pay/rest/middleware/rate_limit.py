"""Rate limiting (spec 10, spec 13): token buckets, global, per wallet and per IP.

Every request draws from the global bucket, from its IP's bucket, and, when it names a
wallet (X-Wallet, X-Signer, `?wallet=`), from that wallet's bucket too. The reference
uses the IP bucket only when no wallet is named; we always use it, since a client could
otherwise dodge its IP's limit by sending a new made-up wallet with each request.
API key tiers exempt: enterprise skips the wallet and IP buckets, partner skips all.

A refusal is a 429 envelope with Retry-After and X-RateLimit-Limit/-Remaining/-Reset;
an allowed request gets X-RateLimit-Limit/-Remaining of its tightest bucket. When the
bucket store fails (Redis down), requests are let through and the failure is logged:
an outage of the limiter must not become an outage of payments.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.observability import RateLimitedEvent, RateLimitHook
from cedros_pay.core.ratelimit import Bucket, RateLimiter, Verdict
from cedros_pay.rest.middleware._asgi import (
    HeaderBlock,
    edit_response,
    request_wallet,
    send_error,
    state,
)

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


def _bucket(kind: str, key: str, rule: Rule | None) -> list[Bucket]:
    if rule is None or rule.limit <= 0 or rule.window <= 0:
        return []
    return [Bucket(kind, key, rule.limit, rule.window)]


# Buckets are immutable and a client sends many requests: reuse them rather than build
# three per request. Bounded; a full cache is simply dropped and refilled.
_CACHE_LIMIT = 4096


class _Buckets:
    """The buckets of one kind, by key (none when the rule is disabled)."""

    def __init__(self, kind: str, rule: Rule | None) -> None:
        self.kind = kind
        self.rule = rule if rule is not None and rule.limit > 0 and rule.window > 0 else None
        self._cache: dict[str, Bucket] = {}

    def get(self, key: str) -> Bucket | None:
        rule = self.rule
        if rule is None:
            return None
        bucket = self._cache.get(key)
        if bucket is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            bucket = self._cache[key] = Bucket(self.kind, key, rule.limit, rule.window)
        return bucket


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, rules: RateLimitRules,
                 hooks: RateLimitHook | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.rules = rules
        self.hooks = hooks
        self._global = _bucket("global", "", rules.global_)
        self._wallets = _Buckets("wallet", rules.per_wallet)
        self._ips = _Buckets("ip", rules.per_ip)

    def buckets(self, scope: Scope, tier: str) -> list[Bucket]:
        if tier == "partner":
            return []
        out = list(self._global)
        if tier == "enterprise":
            return out
        st = state(scope)
        wallet = request_wallet(scope)
        if wallet:
            st["wallet"] = wallet
            bucket = self._wallets.get(wallet)
            if bucket is not None:
                out.append(bucket)
        client = scope.get("client")
        ip = st.get("client_ip") or (client[0] if client else "")
        if ip:
            bucket = self._ips.get(str(ip))
            if bucket is not None:
                out.append(bucket)
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tier = str(state(scope).get("api_tier", "free"))
        buckets = self.buckets(scope, tier)
        if not buckets:
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        try:
            verdict = limiter.acquire_now(buckets) or await limiter.acquire(buckets)
        except Exception:
            log.exception("rate limiter unavailable; request let through")
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            await self.refuse(scope, receive, send, verdict, tier)
            return
        await self.app(scope, receive, edit_response(scope, send, HeaderBlock(
            [(b"x-ratelimit-limit", b"%d" % verdict.limit),
             (b"x-ratelimit-remaining", b"%d" % verdict.remaining)])))

    async def refuse(self, scope: Scope, receive: Receive, send: Send, verdict: Verdict,
                     tier: str) -> None:
        kind = verdict.denied_by or "global"
        if self.hooks is not None:
            self.hooks.on_rate_limited(RateLimitedEvent(kind, tier))
        retry = verdict.retry_after_seconds
        err = CedrosError(ErrorCode.RATE_LIMIT_EXCEEDED, None,
                          {"limitType": kind, "retryAfterSeconds": retry})
        await send_error(scope, receive, send, err, headers=[
            ("Retry-After", str(retry)),
            ("X-RateLimit-Limit", str(verdict.limit)),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(math.ceil(time.time() + verdict.retry_after))),
        ])

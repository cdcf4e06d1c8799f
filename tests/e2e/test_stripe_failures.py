"""Stripe failing: 5xx and timeouts become `stripe_error`, the breaker opens, and nothing
is half-written (no local session, no payment)."""

from __future__ import annotations

from pathlib import Path

from e2e.stripe_world import StripeWorld, stripe_world

from cedros_pay.core.models import PaymentFilter

SESSIONS = "/v1/checkout/sessions"


async def _nothing_local(w: StripeWorld, session_ids: list[str]) -> None:
    for sid in session_ids:
        assert await w.store.sessions.get("default", sid) is None
    assert await w.store.payments.page("default", PaymentFilter(), 10) == []


async def test_stripe_500s_are_stripe_error_then_the_breaker_opens() -> None:
    async with stripe_world() as w:
        w.fake.fail(500, times=3, should_retry=False)
        for _ in range(3):  # spec 12: stripe_api trips after 3 consecutive failures
            resp = await w.session({"resource": "course"})
            assert resp.status_code == 502, resp.text
            error = resp.json()["error"]
            assert error["code"] == "stripe_error" and error["retryable"] is True
            assert error["details"]["status"] == 500
        assert len(w.fake.requests) == 3
        opened = await w.session({"resource": "course"})
        assert opened.status_code == 502
        assert opened.json()["error"]["details"]["circuit"] == "stripe_api"
        cart = await w.client.post("/paywall/v1/cart/checkout",
                                   json={"items": [{"resource": "course"}]})
        assert cart.status_code == 502 and cart.json()["error"]["code"] == "stripe_error"
        assert len(w.fake.requests) == 3  # an open breaker sends nothing
        assert w.app.infra.breakers["stripe_api"].snapshot()["state"] == "open"
        await _nothing_local(w, list(w.fake.sessions))


async def test_a_transient_500_is_retried_by_the_sdk_under_one_idempotency_key() -> None:
    async with stripe_world() as w:
        w.fake.fail(500, times=1)
        resp = await w.session({"resource": "course"})
        assert resp.status_code == 200, resp.text
        posts = w.fake.posts(SESSIONS)
        assert len(posts) == 2
        assert posts[0].idempotency_key and posts[0].idempotency_key == posts[1].idempotency_key
        assert len(w.fake.sessions) == 1
        assert w.app.infra.breakers["stripe_api"].snapshot()["failures"] == 0


async def test_stripe_timeouts_are_stripe_error_and_open_the_breaker(tmp_path: Path) -> None:
    yaml = tmp_path / "cfg.yaml"
    yaml.write_text("server:\n  request_timeout: 6s\n"
                    "circuit_breaker:\n  stripe_api:\n    consecutive_failures: 2\n")
    async with stripe_world(yaml_path=str(yaml)) as w:
        w.fake.stall(2.0, times=6)  # the SDK waits 1 s per attempt, three attempts
        for _ in range(2):
            resp = await w.session({"resource": "ebook"})
            assert resp.status_code == 502, resp.text  # the SDK's error, not the deadline's 503
            assert resp.json()["error"]["code"] == "stripe_error"
            assert resp.json()["error"]["details"]["stripeError"] == "APIConnectionError"
        # Three attempts each; on a loaded machine the route's deadline may cut a third.
        sent = len(w.fake.posts(SESSIONS))
        assert 4 <= sent <= 6
        opened = await w.session({"resource": "ebook"})  # refused by the open breaker
        assert opened.json()["error"]["details"]["circuit"] == "stripe_api"
        assert len(w.fake.posts(SESSIONS)) == sent  # nothing more reached Stripe
        await _nothing_local(w, list(w.fake.sessions))


async def test_stripe_refusing_a_request_is_stripe_error_without_tripping() -> None:
    async with stripe_world() as w:
        w.fake.prices.pop("price_ebook")  # the catalog names a price Stripe does not know
        for _ in range(4):
            resp = await w.session({"resource": "ebook"})
            assert resp.status_code == 502
            details = resp.json()["error"]["details"]
            assert details["status"] == 400 and details["stripeCode"] == "resource_missing"
        assert w.app.infra.breakers["stripe_api"].snapshot()["state"] == "closed"
        assert len(w.fake.requests) == 4


async def test_a_wrong_secret_key_is_stripe_error() -> None:
    async with stripe_world({"CEDROS_STRIPE_SECRET_KEY": "sk_test_wrong"}) as w:
        resp = await w.session({"resource": "course"})
        assert resp.status_code == 502
        assert resp.json()["error"]["details"]["stripeError"] == "AuthenticationError"

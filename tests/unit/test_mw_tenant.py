"""Tenant extraction (spec 10/13): priority, and the tenant JWT checked by PyJWT against
forged tokens: every forgery is a 401 `unauthorized` envelope, never a 500, never a tenant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from api.conftest import CATALOG_YAML, client_for, config_from
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.app import create_app
from cedros_pay.config.loader import ConfigError
from cedros_pay.rest.middleware import Gate, Tenant
from cedros_pay.rest.middleware.tenant import MAX_TOKEN_CHARS
from cedros_pay.storage.store import memory_store

SECRET = "tenant-secret-0123456789abcdef-xyz"  # 34 bytes: enough for HS256
OTHER = "another-secret-0123456789abcdef-xyz"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the tenant the middleware chose."""
    body = json.dumps({"tenant": scope["state"]["tenant"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def call(app: ASGIApp, *, headers: Mapping[str, str] | None = None,
               base: str = "http://testserver") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
        return await c.get("/", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj: object) -> str:
    return b64(json.dumps(obj).encode())


def forged(head: object, claims: object, secret: str = SECRET,
           digest: Any = hashlib.sha256) -> str:
    """A token signed by hand, whatever its header claims: what an attacker sends."""
    signing = f"{part(head)}.{part(claims)}"
    sig = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return f"{signing}.{b64(sig)}"


def good(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return pyjwt.encode(claims, secret, algorithm=alg)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NOW = int(time.time())  # import time: only for tokens that stay invalid for a day
CLAIMS = {"tenant_id": "acme"}
UNSIGNED = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(CLAIMS)}."


async def test_tenant_priority_header_jwt_subdomain_default() -> None:
    app = Gate(echo, [Tenant(default="main", jwt_secret=SECRET,
                             subdomain_base="pay.example.com")])
    token = good({"tenant_id": "from-jwt"})
    host = "http://acme.pay.example.com"
    both = await call(app, headers={"X-Tenant-ID": "from-header", **bearer(token)}, base=host)
    assert both.json()["tenant"] == "from-header"
    assert (await call(app, headers=bearer(token), base=host)).json()["tenant"] == "from-jwt"
    assert (await call(app, base=host)).json()["tenant"] == "acme"
    assert (await call(app, base="http://www.pay.example.com")).json()["tenant"] == "main"
    assert (await call(app)).json()["tenant"] == "main"


async def test_valid_tokens_select_the_tenant() -> None:
    plain = Gate(echo, [Tenant(jwt_secret=SECRET)])
    bound = Gate(echo, [Tenant(jwt_secret=SECRET, jwt_audience="cedros-pay",
                               jwt_issuer="https://id.example.com")])
    wide = Gate(echo, [Tenant(jwt_secret=SECRET * 2, jwt_algorithm="HS512")])
    now = int(time.time())  # not NOW: a long test session must not expire these
    cases = [
        (plain, good(CLAIMS)),
        (plain, good({**CLAIMS, "exp": now + 300, "nbf": now - 5, "iat": now})),
        (bound, good({**CLAIMS, "aud": "cedros-pay", "iss": "https://id.example.com"})),
        (bound, good({**CLAIMS, "aud": ["other", "cedros-pay"],
                      "iss": "https://id.example.com"})),
        (wide, good(CLAIMS, SECRET * 2, "HS512")),
    ]
    for app, token in cases:
        resp = await call(app, headers=bearer(token))
        assert resp.status_code == 200 and resp.json()["tenant"] == "acme", token
    # A verified token without the claim leaves the choice to the later sources.
    assert (await call(plain, headers=bearer(good({"sub": "x"})))).json()["tenant"] == "default"


FORGERIES = {
    "alg none, unsigned": UNSIGNED,
    "alg None spelled otherwise": f"{part({'alg': 'None'})}.{part(CLAIMS)}.",
    "alg none with a signature": forged({"alg": "none"}, CLAIMS),
    "no alg": forged({"typ": "JWT"}, CLAIMS),
    "wrong key": good(CLAIMS, OTHER),
    "HS/RS confusion: RS256 header, HMAC over the secret": forged({"alg": "RS256"}, CLAIMS),
    "ES256 header": forged({"alg": "ES256"}, CLAIMS),
    "another HMAC than the pinned one": good(CLAIMS, SECRET * 2, "HS512"),
    "expired": good({**CLAIMS, "exp": NOW - 10}),
    "not yet valid": good({**CLAIMS, "nbf": NOW + 86400}),
    "issued in the future": good({**CLAIMS, "iat": NOW + 86400}),
    "exp not a number": forged({"alg": "HS256"}, {**CLAIMS, "exp": "tomorrow"}),
    "audience when none is configured": good({**CLAIMS, "aud": "someone-else"}),
    "payload swapped under a valid signature":
        ".".join([good(CLAIMS).split(".")[0], part({"tenant_id": "victim"}),
                  good(CLAIMS).split(".")[2]]),
    "truncated signature": good(CLAIMS)[:-6],
    "empty signature": good(CLAIMS).rsplit(".", 1)[0] + ".",
    "segments not base64": "!!!.???.***",
    "empty segments": "..",
    "header not JSON": f"{b64(b'not json')}.{part(CLAIMS)}.{b64(b'x' * 32)}",
    "header a JSON list": forged(["alg", "HS256"], CLAIMS),
    "payload a JSON list": forged({"alg": "HS256"}, ["tenant_id", "acme"]),
    "payload not JSON": f"{part({'alg': 'HS256'})}.{b64(b'{{{')}.{b64(b'x' * 32)}",
    "deeply nested header": f"{b64(b'[' * 1200 + b']' * 1200)}.{part(CLAIMS)}.x",
    "unknown critical extension": forged({"alg": "HS256", "crit": ["exp-magic"],
                                          "exp-magic": 1}, CLAIMS),
    "oversized": forged({"alg": "HS256"}, {**CLAIMS, "pad": "x" * MAX_TOKEN_CHARS}),
}


# Why each is refused: the first PyJWT check it fails (or ours, for the length).
REASONS = {
    **dict.fromkeys(["alg none, unsigned", "alg None spelled otherwise",
                     "alg none with a signature", "no alg",
                     "HS/RS confusion: RS256 header, HMAC over the secret", "ES256 header",
                     "another HMAC than the pinned one"], "algorithm is not accepted"),
    **dict.fromkeys(["wrong key", "payload swapped under a valid signature", "empty signature",
                     "payload not JSON"], "signature does not verify"),
    "expired": "has expired", "not yet valid": "not valid yet",
    "issued in the future": "not valid yet",
    "audience when none is configured": "another audience",
    "unknown critical extension": "is not valid", "oversized": "too long",
}


@pytest.mark.parametrize("name", FORGERIES)
async def test_forged_tokens_are_refused(name: str) -> None:
    app = Gate(echo, [Tenant(jwt_secret=SECRET, subdomain_base="pay.example.com")])
    resp = await call(app, headers=bearer(FORGERIES[name]), base="http://acme.pay.example.com")
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == "unauthorized" and error["details"] == {"field": "Authorization"}
    assert error["message"].startswith("tenant token refused: the token")
    assert REASONS.get(name, "is malformed") in error["message"], error["message"]


@pytest.mark.parametrize(("claims", "reason"), [
    ({**CLAIMS, "aud": "other", "iss": "https://id.example.com"}, "another audience"),
    ({**CLAIMS, "iss": "https://id.example.com"}, "lacks a required claim"),
    ({**CLAIMS, "aud": "cedros-pay"}, "lacks a required claim"),
    ({**CLAIMS, "aud": "cedros-pay", "iss": "https://evil.example.com"}, "another issuer"),
])
async def test_audience_and_issuer_are_required_when_configured(
        claims: dict[str, Any], reason: str) -> None:
    app = Gate(echo, [Tenant(jwt_secret=SECRET, jwt_audience="cedros-pay",
                             jwt_issuer="https://id.example.com")])
    resp = await call(app, headers=bearer(good(claims)))
    assert resp.status_code == 401 and reason in resp.json()["error"]["message"]


@pytest.mark.parametrize("value", ["bad tenant!", "", 42, ["acme"], "x" * 65])
async def test_a_verified_token_with_a_malformed_tenant_claim_is_refused(value: object) -> None:
    resp = await call(Gate(echo, [Tenant(jwt_secret=SECRET)]),
                      headers=bearer(good({"tenant_id": value})))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_field"


@pytest.mark.parametrize("auth", ["Bearer admin-api-key", "Bearer a.b", "Basic dXNlcjpwdw==",
                                  f"Token {UNSIGNED}"])
async def test_credentials_that_are_not_tenant_tokens_are_left_alone(auth: str) -> None:
    resp = await call(Gate(echo, [Tenant(jwt_secret=SECRET)]), headers={"Authorization": auth})
    assert resp.status_code == 200 and resp.json()["tenant"] == "default"


async def test_without_a_secret_tokens_are_not_read() -> None:
    resp = await call(Gate(echo, [Tenant()]), headers=bearer(UNSIGNED))
    assert resp.status_code == 200 and resp.json()["tenant"] == "default"


async def test_the_header_wins_without_reading_the_token() -> None:
    resp = await call(Gate(echo, [Tenant(jwt_secret=SECRET)]),
                      headers={"X-Tenant-ID": "named", **bearer(UNSIGNED)})
    assert resp.json()["tenant"] == "named"


async def test_malformed_tenant_header_is_refused() -> None:
    resp = await call(Gate(echo, [Tenant()]), headers={"X-Tenant-ID": "../etc"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_field"


def test_weak_secrets_and_asymmetric_algorithms_are_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Tenant(jwt_secret="s3cret")
    with pytest.raises(ValueError, match="at least 64 bytes"):
        Tenant(jwt_secret=SECRET, jwt_algorithm="HS512")
    with pytest.raises(ValueError, match="algorithm"):
        Tenant(jwt_secret=SECRET, jwt_algorithm="RS256")
    with pytest.raises(ConfigError) as caught:
        config_from({"CEDROS_TENANCY_JWT_SECRET": "short-secret"})
    assert "at least 32 bytes" in str(caught.value) and "short-secret" not in str(caught.value)


async def test_the_configured_token_rules_reach_the_app(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CATALOG_YAML + "tenancy:\n  jwt_algorithm: HS256\n")
    cfg = config_from({"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml",
                       "CEDROS_TENANCY_JWT_SECRET": SECRET,
                       "CEDROS_TENANCY_JWT_AUDIENCE": "cedros-pay",
                       "CEDROS_TENANCY_JWT_ISSUER": "https://id.example.com"},
                      yaml_path=str(path))
    store = memory_store()
    cart = {"items": [{"resource": "p-article", "quantity": 1}]}
    ok = good({**CLAIMS, "aud": "cedros-pay", "iss": "https://id.example.com"})
    async with client_for(create_app(cfg, store=store)) as client:
        created = await client.post("/paywall/v1/cart/quote", json=cart, headers=bearer(ok))
        refused = [await client.post("/paywall/v1/cart/quote", json=cart, headers=bearer(t))
                   for t in (UNSIGNED, good(CLAIMS), good({**CLAIMS, "aud": "cedros-pay"}))]
        gql = await client.post("/graphql", json={"query": "{ __typename }"},
                                headers=bearer(UNSIGNED))
    assert created.status_code == 200
    assert await store.carts.get("acme", created.json()["cartId"]) is not None
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert all(r.json()["error"]["code"] == "unauthorized" for r in refused)
    assert gql.status_code == 401 and gql.json()["error"]["code"] == "unauthorized"

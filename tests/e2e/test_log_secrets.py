"""Secrets never reach the logs (DESIGN §3): a real `cedros-pay serve` at debug level, with
every secret the configuration can hold set to a known value, serves payments, Stripe,
admin, webhook and bad requests; its whole output is then searched for each secret in
every form it could be printed in (raw, URL-quoted, base58, base64, hex, JSON bytes)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import base58
import httpx
import jwt as pyjwt
import pytest
import redis
from solders.keypair import Keypair
from support.fake_stripe import FakeStripe, running_fake_stripe, sign
from support.postgres import PostgresServer
from support.process import ServeProcess, clean_env, free_port, log_tail
from support.webhook_receiver import WebhookReceiver

from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer

TAG = secrets.token_hex(6)  # makes every secret unique to this run
STRIPE_KEY = f"sk_test_logscan{TAG}"
STRIPE_WEBHOOK = f"whsec_logscan{TAG}"
HMAC_SECRET = f"hmac-logscan-{TAG}"
CALLBACK_AUTH = f"Bearer callback-logscan-{TAG}"
ADMIN_KEY = f"admin-logscan-{TAG}"
METRICS_KEY = f"metrics-logscan-{TAG}"
PARTNER_KEY = f"partner-logscan-{TAG}"
JWT_SECRET = f"jwt-logscan-{TAG}-0123456789abcdefghij"
DB_PASSWORD = f"pg-pass/{TAG}@x"  # URL-special characters: quoted in the URL
REDIS_PASSWORD = f"redis-pass-{TAG}"
ALERT_TOKEN = f"alert-logscan-{TAG}"
RPC_KEY = f"rpc-logscan-{TAG}"
BUYER_EMAIL = f"buyer-{TAG}@example.com"  # personal data, not a secret: kept out too

CONFIG = """
server: {{admin_metrics_api_key: "{metrics}"}}
x402:
  network: devnet
  payment_address: {merchant}
  token_mint: {mint}
  rpc_url: {rpc}
  ws_url: {ws}
  gasless_enabled: true
stripe:
  secret_key: "{stripe_key}"
  webhook_secret: "{stripe_webhook}"
  api_base: "{stripe_base}"
  success_url: "https://shop.example/thanks?session={{CHECKOUT_SESSION_ID}}"
  cancel_url: "https://shop.example/cart"
paywall:
  product_source: yaml
  resources:
    article:
      description: An article
      fiat_amount_cents: 500
      crypto_atomic_amount: 1500000
      crypto_token: USDC
coupons: {{coupon_source: disabled}}
storage: {{backend: postgres, postgres_url: "{postgres_url}"}}
redis: {{url: "{redis_url}", key_prefix: "logscan{tag}:"}}
rate_limit: {{backend: redis}}
idempotency: {{backend: redis}}
api_key: {{enabled: true, keys: {{"{partner}": partner}}}}
admin: {{api_keys: ["{admin}"], public_keys: ["{admin_pub}"]}}
tenancy: {{jwt_secret: "{jwt}", jwt_audience: cedros-pay}}
callbacks:
  payment_success_url: "{callback}"
  headers: {{Authorization: "{callback_auth}"}}
  hmac_secret: "{hmac}"
  timeout: 2s
  poll_interval: 200ms
monitoring:
  low_balance_alert_url: "http://127.0.0.1:9/alert?token={alert}"
  low_balance_threshold: 1000000
  check_interval: 1s
logging: {{level: debug}}
"""


def forms(secret: str | bytes) -> set[str]:
    """The ways a secret could be printed: as is, URL-quoted, base58, base64, hex."""
    raw = secret.encode() if isinstance(secret, str) else secret
    out = {base58.b58encode(raw).decode(), base64.b64encode(raw).decode(),
           base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()}
    if isinstance(secret, str):
        out |= {secret, quote(secret, safe=""), quote(secret)}
    else:
        out.add(json.dumps(list(secret)))  # a Solana keypair file's form
    return out


def keypair_forms(wallet: Keypair) -> set[str]:
    secret = bytes(wallet)  # 64 bytes: the 32-byte seed, then the public key
    return forms(secret) | forms(secret[:32]) | {str(wallet)}


@pytest.fixture
def db_with_password(postgres_server: PostgresServer, postgres_url: str) -> Iterator[str]:
    """The test's database reached as a role that has a password."""
    role = f"logscan_{uuid.uuid4().hex[:8]}"
    database = urlsplit(postgres_url).path.lstrip("/")
    password = DB_PASSWORD.replace("'", "''")
    postgres_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    postgres_server.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')
    postgres_server.execute(f"ALTER SCHEMA public OWNER TO {role}", database=database)
    url = urlsplit(postgres_url)
    yield url._replace(netloc=f"{role}:{quote(DB_PASSWORD, safe='')}@{url.hostname}:"
                              f"{url.port}").geturl()
    postgres_server.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER", database=database)
    postgres_server.execute(f"DROP OWNED BY {role}", database=database)
    postgres_server.execute(f"DROP ROLE {role}")


@pytest.fixture
def redis_with_password(redis_url: str) -> Iterator[str]:
    """The session's Redis reached as an ACL user with a password (the default user is
    left as it is for the other tests)."""
    user = f"logscan{TAG}"
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{REDIS_PASSWORD}",
                          f"~logscan{TAG}:*", "+@all")
    url = urlsplit(redis_url)
    try:
        yield url._replace(netloc=f"{user}:{REDIS_PASSWORD}@{url.hostname}:{url.port}").geturl()
    finally:
        for key in admin.scan_iter(match=f"logscan{TAG}:*"):
            admin.delete(key)
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def signed(key: Keypair, message: str) -> dict[str, str]:
    signature = base64.b64encode(bytes(key.sign_message(message.encode()))).decode()
    return {"X-Signer": str(key.pubkey()), "X-Signature": signature, "X-Message": message}


@pytest.mark.postgres
@pytest.mark.redis
async def test_no_configured_secret_appears_in_the_logs(
        tmp_path: Path, db_with_password: str, redis_with_password: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = WebhookReceiver().up()
    admin = Keypair()
    extra_wallet = Keypair()  # a second fee payer, never funded: its health check fails
    async with running_devnet_sandbox() as sb, running_fake_stripe(STRIPE_KEY) as fake:
        server_wallet = sb.wallets.server
        monkeypatch.setenv("X402_SERVER_WALLET_1", str(server_wallet))
        monkeypatch.setenv("X402_SERVER_WALLET_2", str(extra_wallet))
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG.format(
            metrics=METRICS_KEY, merchant=sb.wallets.merchant.pubkey(),
            mint=sb.devnet.usdc_mint, rpc=sb.url, ws=sb.ws_url, stripe_key=STRIPE_KEY,
            stripe_webhook=STRIPE_WEBHOOK, stripe_base=fake.url, postgres_url=db_with_password,
            redis_url=redis_with_password, tag=TAG, partner=PARTNER_KEY, admin=ADMIN_KEY,
            admin_pub=admin.pubkey(), jwt=JWT_SECRET, callback=receiver.url,
            callback_auth=CALLBACK_AUTH, hmac=HMAC_SECRET, alert=ALERT_TOKEN))
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cedros_pay.cli", "migrate", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        migrate_out, _ = await migrate.communicate()
        assert migrate.returncode == 0, migrate_out.decode()
        server = ServeProcess(config, tmp_path, "serve")
        try:
            await asyncio.to_thread(server.started)
            await drive(server.url, sb, fake, admin)
            await asyncio.to_thread(receiver.wait_for, 1, 20)
        finally:
            code = await asyncio.to_thread(server.stop, signal.SIGTERM)
            receiver.down()
    logs = migrate_out.decode() + server.log.read_text()
    assert code == 0, log_tail(server.log)
    # The run did what it claims: payments, Stripe, webhooks and errors were all logged.
    for sign_of_life in ("payment", "stripe", "webhook delivered", '"status": 401',
                         '"status": 400'):
        assert sign_of_life in logs.replace('"status":', '"status": '), sign_of_life
    assert receiver.snapshot()[0].headers.get("authorization") == CALLBACK_AUTH
    wanted = {
        "Stripe secret key": forms(STRIPE_KEY), "Stripe webhook secret": forms(STRIPE_WEBHOOK),
        "webhook HMAC secret": forms(HMAC_SECRET), "callback header": forms(CALLBACK_AUTH),
        "admin API key": forms(ADMIN_KEY), "metrics key": forms(METRICS_KEY),
        "API key": forms(PARTNER_KEY), "tenant JWT secret": forms(JWT_SECRET),
        "database password": forms(DB_PASSWORD), "Redis password": forms(REDIS_PASSWORD),
        "alert URL token": forms(ALERT_TOKEN),
        "server wallet 1": keypair_forms(server_wallet),
        "server wallet 2": keypair_forms(extra_wallet),
        "buyer email": {BUYER_EMAIL},
    }
    leaks = {name: sorted(f for f in found if f in logs) for name, found in wanted.items()}
    assert not {name: f for name, f in leaks.items() if f}, "secrets in the logs"


async def drive(url: str, sb: RunningSandbox, fake: FakeStripe, admin: Keypair) -> None:
    """Payments, Stripe, admin, webhooks and bad requests against the server at `url`."""
    partner = {"X-API-Key": PARTNER_KEY}
    token = pyjwt.encode({"tenant_id": "default", "aud": "cedros-pay"}, JWT_SECRET)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        # Discovery, metrics with and without the key.
        assert (await c.get("/cedros-health")).status_code in (200, 503)
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers={
            "Authorization": f"Bearer {METRICS_KEY}"})).status_code == 200
        # An x402 payment, its replay, an underpayment and a garbled header.
        tx = usdc_transfer(sb.devnet, 1_500_000, blockhash=sb.chain.latest_block.blockhash)
        paid = await c.post("/paywall/v1/verify", headers={
            "X-PAYMENT": v0_payment_header(tx, "article"), **partner})
        assert paid.status_code == 200, paid.text
        again = await c.post("/paywall/v1/verify", headers={
            "X-PAYMENT": v0_payment_header(tx, "article")})
        assert again.status_code == 402
        low = usdc_transfer(sb.devnet, 1, blockhash=sb.chain.latest_block.blockhash)
        assert (await c.post("/paywall/v1/verify", headers={
            "X-PAYMENT": v0_payment_header(low, "article")})).status_code == 402
        assert (await c.post("/paywall/v1/verify", headers={
            "X-PAYMENT": "not base64!"})).status_code in (400, 402)
        # Gasless: the server wallet is the fee payer of the transaction it builds.
        built = await c.post("/paywall/v1/gasless-transaction", json={
            "resourceId": "article", "userWallet": str(sb.wallets.payer.pubkey())})
        assert built.status_code == 200, built.text
        # Stripe: a session, its paid webhook, a forged and a stale signature.
        session = await c.post("/paywall/v1/stripe-session", json={
            "resource": "article", "customerEmail": BUYER_EMAIL},
                               headers={"Idempotency-Key": f"logscan-{TAG}"})
        assert session.status_code == 200, session.text
        session_id = session.json()["sessionId"]
        body = fake.event("checkout.session.completed", fake.complete(session_id))
        hook = {"Content-Type": "application/json"}
        assert (await c.post("/webhook/stripe", content=body, headers={
            **hook, "Stripe-Signature": sign(body, STRIPE_WEBHOOK)})).status_code == 200
        for bad in (sign(body, "whsec_wrong"), sign(body, STRIPE_WEBHOOK, 1), "t=1,v1=00"):
            refused = await c.post("/webhook/stripe", content=body,
                                   headers={**hook, "Stripe-Signature": bad})
            assert refused.json()["error"]["code"] == "invalid_signature", refused.text
        # Admin: the key, a wrong key, a signed request, GraphQL with and without.
        bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert (await c.get("/admin/webhooks", headers=bearer)).status_code == 200
        assert (await c.get("/admin/webhooks", headers={
            "Authorization": f"Bearer {ADMIN_KEY}x"})).status_code == 401
        nonce = (await c.post("/paywall/v1/nonce", json={"purpose": "admin"})).json()["nonce"]
        assert (await c.get("/admin/webhooks", headers=signed(
            admin, f"admin:{nonce}"))).status_code == 200
        query = {"query": "{ payments(first: 5) { edges { node { signature } } } }"}
        assert (await c.post("/graphql", json=query, headers=bearer)).status_code == 200
        assert (await c.post("/graphql", json=query)).status_code == 200  # error inside
        # A refund request signed by the payer, the pending list for the admin.
        refund = await c.post("/paywall/v1/refunds/request", json={
            "originalPurchaseId": str(tx.signatures[0]),
            "recipientWallet": str(sb.wallets.payer.pubkey()), "amount": 1.5, "token": "USDC",
            "reason": "test"}, headers=signed(sb.wallets.payer,
                                              f"request-refund:{tx.signatures[0]}"))
        assert refund.status_code == 201, refund.text
        # Tenant tokens, good and forged; bad bodies and unknown routes.
        assert (await c.get("/paywall/v1/products", headers={
            "Authorization": f"Bearer {token}"})).status_code == 200
        forged = pyjwt.encode({"tenant_id": "x"}, "a-wrong-secret-that-is-32-bytes-long")
        assert (await c.get("/paywall/v1/products", headers={
            "Authorization": f"Bearer {forged}"})).status_code == 401
        assert (await c.post("/paywall/v1/cart/quote", content=b"{not json",
                             headers={"Content-Type": "application/json"})).status_code == 400
        assert (await c.post("/paywall/v1/quote", json={"resource": "nope"})).status_code == 404
        assert (await c.get("/no/such/route")).status_code == 404


BROKEN = """
x402:
  network: devnet
  payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ
  token_mint: 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU
  rpc_url: "{rpc}"
paywall:
  product_source: yaml
  resources: {{a: {{description: A, crypto_atomic_amount: 1, crypto_token: USDC}}}}
coupons: {{coupon_source: disabled}}
storage: {{backend: postgres, postgres_url: "postgresql://bob:{db}@127.0.0.1:{port}/db"}}
redis: {{url: "redis://bob:{redis}@127.0.0.1:{port}/0"}}
stripe: {{secret_key: "{stripe}"}}
callbacks: {{payment_success_url: "{callback}", hmac_secret: "{hmac}"}}
tenancy: {{jwt_secret: "{jwt}"}}
logging: {{level: debug}}
"""


@pytest.mark.parametrize("case", ["unreachable services", "rejected values"])
def test_startup_failures_do_not_print_secrets(tmp_path: Path, case: str) -> None:
    """A server that cannot start says why without echoing what it was given."""
    db, pw = quote(DB_PASSWORD, safe=""), REDIS_PASSWORD
    if case == "unreachable services":  # valid, but nothing listens on the port
        values = {"rpc": f"http://127.0.0.1:9/?api-key={RPC_KEY}", "callback": "",
                  "jwt": JWT_SECRET, "stripe": STRIPE_KEY}
    else:  # refused by the config rules: the messages name the key, not the value
        values = {"rpc": f"ftp://rpc.example/{RPC_KEY}?api-key={RPC_KEY}",
                  "callback": f"ftp://hook:{HMAC_SECRET}@shop.example/?t={RPC_KEY}",
                  "jwt": JWT_SECRET[:20], "stripe": STRIPE_KEY.replace("_test_", "_live_")}
    config = tmp_path / "config.yaml"
    config.write_text(BROKEN.format(db=db, redis=pw, port=free_port(), hmac=HMAC_SECRET,
                                    **values))
    env = clean_env(X402_SERVER_WALLET_1=str(Keypair()) if case != "rejected values"
                    else f"[1,2,{TAG}]")
    done = subprocess.run(
        [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", str(config),
         "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    if case == "rejected values":
        for key in ("x402.rpc_url", "callbacks.payment_success_url", "tenancy",
                    "X402_SERVER_WALLET_1", "stripe.mode"):
            assert key in out, out
    secrets_given = [DB_PASSWORD, db, REDIS_PASSWORD, RPC_KEY, HMAC_SECRET, JWT_SECRET[:20],
                     STRIPE_KEY[8:], TAG + "]"]
    assert [s for s in secrets_given if s in out] == [], out

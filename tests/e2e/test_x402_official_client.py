"""Interoperability: the official x402 Python SDK pays a Cedros resource, unmodified.

The SDK (x402 2.25.0, in its own venv: tests/support/x402_sdk.py) runs as a subprocess
against a real `cedros-pay serve` on a loopback port (on SQLite and on PostgreSQL, one
server per backend for the module); its payer keypair is the sandbox's
payer wallet and its RPC is the sandbox chain, so nothing leaves the machine. The server's
wallet pays the fee (gasless), as the exact scheme requires. Prices stay under the SDK's
default spend limit ($1 per payment), which the client keeps as shipped.

Each test logs the official client's request and response headers (`-s` or the captured
log of a failure shows them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support import served as serving
from support.x402_sdk import CLIENT_SCRIPT, ensure_sdk_venv

from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox
from cedros_pay.storage.store import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")

log = logging.getLogger("tests.x402_official_client")

DEVNET_CAIP2 = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article:
      description: An article
      crypto_atomic_amount: 500000
      crypto_token: USDC
    memo-article:
      description: Needs a memo
      crypto_atomic_amount: 250000
      crypto_token: USDC
      memo_template: "pay:{resource}:{nonce}"
"""


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    return ensure_sdk_venv()


@dataclass
class Served:
    sandbox: RunningSandbox
    url: str
    store: Store
    python: Path

    async def official_client(self, path: str, protocol: str, *, method: str = "GET",
                              body: Any = None) -> dict[str, Any]:
        """Run the SDK client script; its JSON report, with the headers logged."""
        self.sandbox.chain.produce_blocks(1)  # a fresh blockhash: tests share the chain
        args = [str(self.python), str(CLIENT_SCRIPT), "--url", self.url + path,
                "--rpc", self.sandbox.url, "--protocol", protocol, "--method", method,
                "--keypair", str(self.sandbox.wallets.payer)]
        if body is not None:
            args += ["--json", json.dumps(body)]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        report: dict[str, Any] = json.loads(out)
        for n, ex in enumerate(report["exchanges"], start=1):
            req, resp = ex["request"], ex["response"]
            log.warning("official x402 %s client, exchange %d: %s %s\n  request headers: %s"
                        "\n  response %d headers: %s", protocol, n, req["method"], req["url"],
                        json.dumps(req["headers"], indent=None), resp["status"],
                        json.dumps(resp["headers"], indent=None))
            print(f"[{protocol} #{n}] {req['method']} {req['url']}\n"
                  f"  > {json.dumps(req['headers'])}\n"
                  f"  < {resp['status']} {json.dumps(resp['headers'])}")
        return report

    def merchant_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=serving.BACKENDS)
async def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 sdk_python: Path) -> AsyncIterator[Served]:
    backend, postgres = serving.backend_of(request)
    async with running_devnet_sandbox() as sb, serving.served(
            CATALOG, tmp_path_factory.mktemp(f"sdk-{backend}"), backend, postgres=postgres,
            env=serving.sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml",
                                    COUPON_SOURCE="disabled",
                                    CEDROS_X402_GASLESS_ENABLED="true",
                                    X402_SERVER_WALLET_1=str(sb.wallets.server))) as server:
        yield Served(sb, server.url, server.store, sdk_python)


def decoded(value: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(value))
    return doc


def exchange_headers(report: dict[str, Any], n: int, side: str) -> dict[str, str]:
    return {k.lower(): v for k, v in report["exchanges"][n][side]["headers"].items()}


async def test_official_v2_client_pays_the_resource_endpoint(served: Served) -> None:
    before = served.merchant_usdc()
    report = await served.official_client("/paywall/article", "v2")
    assert report["status"] == 200, report
    first, paid = (exchange_headers(report, 0, "response"),
                   exchange_headers(report, 1, "request"))
    offer = decoded(first["payment-required"])
    assert offer["x402Version"] == 2
    accepted = offer["accepts"][0]
    assert (accepted["scheme"], accepted["network"], accepted["amount"]) == (
        "exact", DEVNET_CAIP2, "500000")
    assert accepted["payTo"] == str(served.sandbox.wallets.merchant.pubkey())
    assert accepted["extra"]["feePayer"] == str(served.sandbox.wallets.server.pubkey())
    assert first["cache-control"] == "no-store"
    assert "payment-signature" in paid and "x-payment" not in paid
    settlement = report["settlement"]
    assert settlement["success"] is True and settlement["network"] == DEVNET_CAIP2
    assert settlement["payer"] == str(served.sandbox.wallets.payer.pubkey())
    body = report["body"]
    assert (body["granted"], body["resource"], body["amount"]) == (True, "article", "500000")
    assert body["signature"] == settlement["transaction"]
    assert served.merchant_usdc() - before == 500_000
    recorded = await served.store.payments.get("default", settlement["transaction"])
    assert recorded is not None and recorded.metadata["x402_version"] == "2"


async def test_official_v1_client_pays_with_x_payment(served: Served) -> None:
    before = served.merchant_usdc()
    report = await served.official_client("/paywall/memo-article", "v1")
    assert report["status"] == 200, report
    paid_request = exchange_headers(report, 1, "request")
    sent = decoded(paid_request["x-payment"])
    assert (sent["x402Version"], sent["scheme"], sent["network"]) == (
        1, "exact", "solana-devnet")
    raw = decoded(exchange_headers(report, 1, "response")["x-payment-response"])
    assert raw["success"] is True and raw["network"] == "solana-devnet"
    assert raw["txHash"] == raw["transaction"] and raw["networkId"] == "devnet"
    assert raw["error"] is None and raw["payer"] == str(served.sandbox.wallets.payer.pubkey())
    assert report["settlement"]["transaction"] == raw["transaction"]
    assert served.merchant_usdc() - before == 250_000


async def test_official_v2_client_pays_through_the_quote_endpoint(served: Served) -> None:
    report = await served.official_client("/paywall/v1/quote", "v2", method="POST",
                                          body={"resource": "memo-article"})
    assert report["status"] == 200, report
    assert [e["response"]["status"] for e in report["exchanges"]] == [402, 200]
    offer = decoded(exchange_headers(report, 0, "response")["payment-required"])
    memo = offer["accepts"][0]["extra"]["memo"]
    assert memo.startswith("pay:memo-article:") and len(memo.encode()) <= 256
    assert report["body"]["resource"] == "memo-article"
    recorded = await served.store.payments.get("default", report["settlement"]["transaction"])
    assert recorded is not None and recorded.resource_id == "memo-article"

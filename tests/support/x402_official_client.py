"""Pay a Cedros resource with the official x402 Python SDK, used as published.

Runs inside `.venv-x402` (the SDK needs solana<0.40; Cedros runs solana 0.41), started by
tests/e2e/test_x402_official_client.py as a subprocess. It imports nothing from Cedros.

    python x402_official_client.py --url URL --rpc RPC --keypair BASE58 --protocol v2|v1
                                   [--method POST --json BODY]

Prints one JSON document: the final status and body, the SDK's decoded settlement response,
and every HTTP exchange (request and response headers) the payment took.

v2 is the SDK's own flow end to end: its httpx transport reads PAYMENT-REQUIRED, builds and
signs the transaction, repeats the request with PAYMENT-SIGNATURE. A 402 carrying
PAYMENT-REQUIRED always selects v2 in the SDK, so for v1 this script drives the SDK's public
v1 API instead: the offer is restated in v1 terms (legacy network name,
`maxAmountRequired`), `x402Client` builds the v1 payload, `x402HTTPClient` encodes it as
X-PAYMENT and decodes X-PAYMENT-RESPONSE -- the same calls an older v1 client makes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx
from solders.keypair import Keypair
from x402 import x402Client
from x402.http import x402HTTPClient
from x402.http.clients import x402AsyncTransport
from x402.mechanisms.svm import KeypairSigner
from x402.mechanisms.svm.constants import V1_TO_V2_NETWORK_MAP
from x402.mechanisms.svm.exact.register import register_exact_svm_client
from x402.schemas.v1 import PaymentRequiredV1, PaymentRequirementsV1

V2_TO_V1 = {v2: v1 for v1, v2 in V1_TO_V2_NETWORK_MAP.items()}


class RecordingTransport(httpx.AsyncBaseTransport):
    """The plain HTTP transport, keeping each request's and response's headers."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.exchanges.append({
            "request": {"method": request.method, "url": str(request.url),
                        "headers": dict(request.headers)},
            "response": {"status": response.status_code, "headers": dict(response.headers)},
        })
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def sdk_client(keypair: Keypair, rpc_url: str) -> x402Client:
    client = x402Client()
    register_exact_svm_client(client, KeypairSigner(keypair), rpc_url=rpc_url)
    return client


async def pay_v2(args: argparse.Namespace, client: x402Client,
                 recorder: RecordingTransport) -> httpx.Response:
    async with httpx.AsyncClient(transport=x402AsyncTransport(client, recorder),
                                 timeout=60) as http:
        return await http.request(args.method, args.url, json=args.body)


async def pay_v1(args: argparse.Namespace, client: x402Client,
                 recorder: RecordingTransport) -> httpx.Response:
    http_client = x402HTTPClient(client)
    async with httpx.AsyncClient(transport=recorder, timeout=60) as http:
        first = await http.request(args.method, args.url, json=args.body)
        if first.status_code != 402:
            return first
        offer = http_client.get_payment_required_response(first.headers.get, first.json())
        resource = offer.resource
        v1 = PaymentRequiredV1(x402_version=1, accepts=[
            PaymentRequirementsV1(
                scheme=r.scheme, network=V2_TO_V1[r.network], max_amount_required=r.amount,
                resource=resource.url if resource else args.url,
                description=resource.description if resource else None,
                mime_type=resource.mime_type if resource else None, pay_to=r.pay_to,
                max_timeout_seconds=r.max_timeout_seconds, asset=r.asset, extra=r.extra)
            for r in offer.accepts])
        payload = await client.create_payment_payload(v1)
        headers = http_client.encode_payment_signature_header(payload)
        return await http.request(args.method, args.url, json=args.body, headers=headers)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--keypair", required=True, help="base58 of the 64-byte secret key")
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v2")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--json", dest="body", type=json.loads, default=None)
    args = parser.parse_args()

    client = sdk_client(Keypair.from_base58_string(args.keypair), args.rpc)
    recorder = RecordingTransport()
    pay = pay_v2 if args.protocol == "v2" else pay_v1
    response = await pay(args, client, recorder)
    settlement = None
    try:
        settled = x402HTTPClient(client).get_payment_settle_response(response.headers.get)
        settlement = settled.model_dump(by_alias=True, exclude_none=True)
    except ValueError:
        pass
    json.dump({"status": response.status_code, "body": response.json(),
               "settlement": settlement, "exchanges": recorder.exchanges}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

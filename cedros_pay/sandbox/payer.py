"""`cedros-pay pay RESOURCE --keypair FILE`: pay a resource the way an x402 agent does.

GET the resource → 402 with the requirement → build and sign a TransferChecked (plus the
quoted memo) → repeat the GET with X-PAYMENT → print the settlement. Works against any
Cedros server and any Solana RPC; the defaults point at `make run`'s local setup.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.sandbox import spl


class PaymentFailed(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any
    settlement: Any
    signature: str


def read_keypair(path: Path) -> Keypair:
    """solana-keygen's JSON array of 64 bytes, or a base58 secret on one line."""
    text = path.read_text().strip()
    if text.startswith("["):
        return Keypair.from_bytes(bytes(json.loads(text)))
    return Keypair.from_base58_string(text)


async def _rpc(http: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    resp = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                      "params": params})
    resp.raise_for_status()
    body = resp.json()
    if "error" in body:
        raise PaymentFailed(f"{method}: {body['error'].get('message')}")
    return body["result"]


def v0_payment_header(tx: VersionedTransaction, resource: str, *, network: str = "devnet",
                      scheme: str = "solana-spl-transfer", resource_type: str = "regular",
                      **extra: Any) -> str:
    """The Cedros (x402 version 0) X-PAYMENT header carrying a signed transaction."""
    body = {"x402Version": 0, "scheme": scheme, "network": network,
            "payload": {"transaction": base64.b64encode(bytes(tx)).decode(),
                        "signature": str(tx.signatures[0]), "resource": resource,
                        "resourceType": resource_type, **extra}}
    return base64.b64encode(json.dumps(body).encode()).decode()


def build_transfer(req: dict[str, Any], payer: Keypair, token_program: Pubkey,
                   blockhash: Hash) -> VersionedTransaction:
    mint = Pubkey.from_string(req["asset"])
    destination = Pubkey.from_string(req["payTo"])
    source = spl.associated_token_address(payer.pubkey(), mint, token_program)
    instructions = [spl.transfer_checked(source, mint, destination, payer.pubkey(),
                                         int(req["maxAmountRequired"]),
                                         int(req["extra"]["decimals"]), token_program)]
    memo = req.get("extra", {}).get("memo")
    if memo:
        instructions.append(Instruction(spl.MEMO_PROGRAM_ID, memo.encode(),
                                        [AccountMeta(payer.pubkey(), True, False)]))
    message = MessageV0.try_compile(payer.pubkey(), instructions, [], blockhash)
    return VersionedTransaction(message, [payer])


async def pay(resource_url: str, payer: Keypair, rpc_url: str,
              http: httpx.AsyncClient) -> Outcome:
    first = await http.get(resource_url)
    if first.status_code != 402:
        raise PaymentFailed(f"expected 402 from {resource_url}, got {first.status_code}")
    accepts = first.json().get("accepts") or []
    if not accepts:
        raise PaymentFailed("the resource offers no x402 payment option")
    req = accepts[0]
    mint_info = await _rpc(http, rpc_url, "getAccountInfo",
                           [req["asset"], {"encoding": "base64"}])
    if not mint_info or not mint_info.get("value"):
        raise PaymentFailed(f"mint {req['asset']} not found on {rpc_url}")
    token_program = Pubkey.from_string(mint_info["value"]["owner"])
    latest = await _rpc(http, rpc_url, "getLatestBlockhash", [{"commitment": "confirmed"}])
    tx = build_transfer(req, payer, token_program,
                        Hash.from_string(latest["value"]["blockhash"]))
    header = v0_payment_header(tx, req["resource"], network=req["network"],
                               scheme=req["scheme"])
    paid = await http.get(resource_url, headers={"X-PAYMENT": header})
    raw = paid.headers.get("X-PAYMENT-RESPONSE")
    settlement = json.loads(base64.b64decode(raw)) if raw else None
    return Outcome(paid.status_code, paid.json(), settlement, str(tx.signatures[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cedros-pay pay",
                                     description="Pay an x402 resource as an agent would.")
    parser.add_argument("resource", help="product id, or the resource URL itself")
    parser.add_argument("--keypair", type=Path, required=True,
                        help="payer keypair file (solana-keygen JSON or base58)")
    parser.add_argument("--server", default="http://127.0.0.1:8080",
                        help="Cedros server base URL (default %(default)s)")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8899",
                        help="Solana RPC for the blockhash (default %(default)s)")
    args = parser.parse_args(argv)
    url = args.resource if "://" in args.resource else \
        f"{args.server.rstrip('/')}/paywall/{args.resource}"
    try:
        payer = read_keypair(args.keypair)
    except (OSError, ValueError) as exc:
        print(f"cedros-pay pay: cannot read keypair: {exc}", file=sys.stderr)
        return 1

    async def run() -> Outcome:
        async with httpx.AsyncClient(timeout=60) as http:
            return await pay(url, payer, args.rpc_url, http)

    try:
        outcome = asyncio.run(run())
    except (PaymentFailed, httpx.HTTPError) as exc:
        print(f"cedros-pay pay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"status": outcome.status, "signature": outcome.signature,
                      "settlement": outcome.settlement, "response": outcome.body}, indent=2))
    return 0 if outcome.status == 200 else 1

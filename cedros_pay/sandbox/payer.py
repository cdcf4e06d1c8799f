"""`cedros-pay pay RESOURCE --keypair FILE`: pay a resource the way an x402 agent does.

GET the resource → 402 with the requirement (quote) → build a TransferChecked plus the
quoted memo → sign it → repeat the GET with X-PAYMENT (settle) → print the settlement.
Each step is printed as it happens; `--json` prints only the final JSON document.
`--official` pays with the official x402 SDK instead (scheme `exact`, PAYMENT-SIGNATURE),
when that SDK is importable here. Works against any Cedros server and any Solana RPC; the
defaults point at `make run`'s local setup.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
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

OFFICIAL_DOC = "docs/x402-official-client.md"

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


class PaymentFailed(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    """The machine-readable result `--json` prints."""

    status: int
    body: Any
    settlement: Any
    signature: str
    amount: str = ""  # atomic units of `asset`
    asset: str = ""
    pay_to: str = ""
    network: str = ""
    client: str = "cedros"  # or "x402-official"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["response"] = out.pop("body")
        out["payTo"] = out.pop("pay_to")
        return out


def read_keypair(path: Path) -> Keypair:
    """solana-keygen's JSON array of 64 bytes, or a base58 secret on one line."""
    text = path.read_text().strip()
    if text.startswith("["):
        return Keypair.from_bytes(bytes(json.loads(text)))
    return Keypair.from_base58_string(text)


def show_amount(atomic: int | str, decimals: int | None, symbol: str = "") -> str:
    """"0.01 USDC (10000 atomic)": major units when the decimals are known."""
    atomic = int(atomic)
    unit = f" {symbol}" if symbol else ""
    if decimals is None:
        return f"{atomic} atomic units{unit}"
    major = Decimal(atomic).scaleb(-decimals)
    return f"{major:f}{unit} ({atomic} atomic)"


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


def transfer_instructions(req: dict[str, Any], payer: Pubkey,
                          token_program: Pubkey) -> list[Instruction]:
    """TransferChecked of the quoted amount to `payTo`, then the quoted memo if any."""
    mint = Pubkey.from_string(req["asset"])
    destination = Pubkey.from_string(req["payTo"])
    source = spl.associated_token_address(payer, mint, token_program)
    instructions = [spl.transfer_checked(source, mint, destination, payer,
                                         int(req["maxAmountRequired"]),
                                         int(req["extra"]["decimals"]), token_program)]
    memo = req.get("extra", {}).get("memo")
    if memo:
        instructions.append(Instruction(spl.MEMO_PROGRAM_ID, memo.encode(),
                                        [AccountMeta(payer, True, False)]))
    return instructions


def build_transfer(req: dict[str, Any], payer: Keypair, token_program: Pubkey,
                   blockhash: Hash) -> VersionedTransaction:
    message = MessageV0.try_compile(
        payer.pubkey(), transfer_instructions(req, payer.pubkey(), token_program), [],
        blockhash)
    return VersionedTransaction(message, [payer])


async def pay(resource_url: str, payer: Keypair, rpc_url: str,
              http: httpx.AsyncClient, say: Say = _quiet) -> Outcome:
    """Pay in the Cedros format (x402 version 0): the payer signs and pays the fee."""
    first = await http.get(resource_url)
    if first.status_code != 402:
        raise PaymentFailed(f"expected 402 from {resource_url}, got {first.status_code}")
    accepts = first.json().get("accepts") or []
    if not accepts:
        raise PaymentFailed("the resource offers no x402 payment option")
    req = accepts[0]
    extra = req.get("extra") or {}
    amount = show_amount(req["maxAmountRequired"], extra.get("decimals"),
                         extra.get("tokenSymbol", ""))
    say(f"quote   GET {resource_url} -> 402: {amount} to {req['payTo']} "
        f"on {req['network']} (scheme {req['scheme']})")
    mint_info = await _rpc(http, rpc_url, "getAccountInfo",
                           [req["asset"], {"encoding": "base64"}])
    if not mint_info or not mint_info.get("value"):
        raise PaymentFailed(f"mint {req['asset']} not found on {rpc_url}")
    token_program = Pubkey.from_string(mint_info["value"]["owner"])
    latest = await _rpc(http, rpc_url, "getLatestBlockhash", [{"commitment": "confirmed"}])
    memo = f" + memo {extra['memo']!r}" if extra.get("memo") else ""
    say(f"build   TransferChecked {amount} of {req['asset']} from {payer.pubkey()} "
        f"to {req['payTo']}{memo}")
    tx = build_transfer(req, payer, token_program,
                        Hash.from_string(latest["value"]["blockhash"]))
    signature = str(tx.signatures[0])
    say(f"sign    signed by {payer.pubkey()} (fee payer): signature {signature}")
    header = v0_payment_header(tx, req["resource"], network=req["network"],
                               scheme=req["scheme"])
    paid = await http.get(resource_url, headers={"X-PAYMENT": header})
    raw = paid.headers.get("X-PAYMENT-RESPONSE")
    settlement = json.loads(base64.b64decode(raw)) if raw else None
    say(_settled_line(resource_url, "X-PAYMENT", paid.status_code, settlement, signature))
    return Outcome(paid.status_code, _body(paid), settlement, signature,
                   amount=str(req["maxAmountRequired"]), asset=req["asset"],
                   pay_to=req["payTo"], network=req["network"])


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _settled_line(url: str, header: str, status: int, settlement: Any, signature: str) -> str:
    ok = isinstance(settlement, dict) and settlement.get("success") is True
    what = f"settled, transaction {signature}" if ok else "not settled"
    return f"settle  GET {url} with {header} -> {status}: {what}"


class OfficialSdkMissing(Exception):
    """The official x402 SDK cannot be imported by this interpreter."""


def _load_official_sdk() -> dict[str, Any]:
    """The SDK's client pieces; imported here only, as the SDK is an optional extra."""
    try:
        from x402 import x402Client  # type: ignore[import-not-found, unused-ignore]
        from x402.http import x402HTTPClient  # type: ignore[import-not-found, unused-ignore]
        from x402.mechanisms.svm import (  # type: ignore[import-not-found, unused-ignore]
            KeypairSigner,
        )
        from x402.mechanisms.svm.exact.register import (  # type: ignore[import-not-found, unused-ignore]
            register_exact_svm_client,
        )
    except ImportError as exc:
        raise OfficialSdkMissing(
            f"--official needs the official x402 SDK (x402[svm,httpx]), which this Python "
            f"cannot import ({exc.name or exc}); see {OFFICIAL_DOC}") from None
    return {"Client": x402Client, "HTTPClient": x402HTTPClient, "Signer": KeypairSigner,
            "register": register_exact_svm_client}


async def pay_official(resource_url: str, payer: Keypair, rpc_url: str,
                       http: httpx.AsyncClient, say: Say = _quiet) -> Outcome:
    """Pay with the official x402 SDK (v2 `exact`): it builds and signs the transfer, the
    server's wallet co-signs as fee payer and settles (gasless)."""
    sdk = _load_official_sdk()
    client = sdk["Client"]()
    sdk["register"](client, sdk["Signer"](payer), rpc_url=rpc_url)
    http_client = sdk["HTTPClient"](client)
    first = await http.get(resource_url)
    if first.status_code != 402:
        raise PaymentFailed(f"expected 402 from {resource_url}, got {first.status_code}")
    try:
        offer = http_client.get_payment_required_response(first.headers.get, _body(first))
    except ValueError as exc:
        raise PaymentFailed(f"no x402 offer the SDK can read: {exc}") from None
    if not offer.accepts:
        raise PaymentFailed("the resource offers no x402 `exact` payment option "
                            "(is gasless enabled with a server wallet?)")
    payload = await client.create_payment_payload(offer)
    req = payload.accepted
    extra = req.extra or {}
    amount = show_amount(req.amount, None)
    say(f"quote   GET {resource_url} -> 402: {amount} of {req.asset} to {req.pay_to} "
        f"on {req.network} (scheme {req.scheme}, v{offer.x402_version})")
    memo = f" + memo {extra['memo']!r}" if extra.get("memo") else ""
    say(f"build   official SDK: TransferChecked {amount} to {req.pay_to}{memo}, "
        f"fee payer {extra.get('feePayer', '?')}")
    transaction = VersionedTransaction.from_bytes(
        base64.b64decode(payload.payload["transaction"]))
    keys = list(transaction.message.account_keys)
    signature = str(transaction.signatures[keys.index(payer.pubkey())])
    say(f"sign    signed by {payer.pubkey()}: signature {signature} "
        f"(the server adds the fee payer's)")
    headers = http_client.encode_payment_signature_header(payload)
    paid = await http.get(resource_url, headers=headers)
    settlement: Any = None
    try:
        settled = http_client.get_payment_settle_response(paid.headers.get)
        settlement = settled.model_dump(by_alias=True, exclude_none=True)
    except ValueError:
        pass
    if isinstance(settlement, dict) and settlement.get("transaction"):
        signature = str(settlement["transaction"])
    say(_settled_line(resource_url, next(iter(headers)), paid.status_code, settlement,
                      signature))
    return Outcome(paid.status_code, _body(paid), settlement, signature, amount=str(req.amount),
                   asset=req.asset, pay_to=req.pay_to, network=req.network,
                   client="x402-official")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cedros-pay pay",
                                     description="Pay an x402 resource as an agent would.")
    parser.add_argument("resource", help="product id, or the resource URL itself")
    parser.add_argument("--keypair", type=Path, required=True,
                        help="payer keypair file (solana-keygen JSON or base58)")
    parser.add_argument("--server", default=os.environ.get("CEDROS_PAY_SERVER",
                                                           "http://127.0.0.1:8080"),
                        help="Cedros server base URL (default %(default)s; "
                             "env CEDROS_PAY_SERVER)")
    parser.add_argument("--rpc-url", default=os.environ.get("CEDROS_PAY_RPC_URL",
                                                            "http://127.0.0.1:8899"),
                        help="Solana RPC for the blockhash (default %(default)s; "
                             "env CEDROS_PAY_RPC_URL)")
    parser.add_argument("--json", action="store_true",
                        help="print only the machine-readable result (no step lines)")
    parser.add_argument("--official", action="store_true",
                        help=f"pay with the official x402 SDK instead (see {OFFICIAL_DOC})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = args.resource if "://" in args.resource else \
        f"{args.server.rstrip('/')}/paywall/{args.resource}"
    try:
        payer = read_keypair(args.keypair)
    except (OSError, ValueError) as exc:
        print(f"cedros-pay pay: cannot read keypair: {exc}", file=sys.stderr)
        return 1
    say: Say = _quiet if args.json else _stdout_line
    method = pay_official if args.official else pay

    async def run() -> Outcome:
        async with httpx.AsyncClient(timeout=60) as http:
            return await method(url, payer, args.rpc_url, http, say)

    try:
        outcome = asyncio.run(run())
    except (PaymentFailed, OfficialSdkMissing, httpx.HTTPError) as exc:
        print(f"cedros-pay pay: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(outcome.as_json(), indent=2))
    else:
        verdict = "paid" if outcome.status == 200 else "FAILED"
        print(f"{verdict}  HTTP {outcome.status}; signature {outcome.signature}")
        print(json.dumps(outcome.body, indent=2))
    return 0 if outcome.status == 200 else 1


def _stdout_line(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

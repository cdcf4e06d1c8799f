"""The official x402 `exact` scheme on Solana (protocol versions 1 and 2).

Cedros's own format (x402Version 0, `payload.py`) stays the Cedros UI's; agents built on the
official x402 SDKs speak `exact`, whose transaction has a fixed shape the facilitator must
check before it co-signs as fee payer. This module is that shape check plus the wire forms:

- `ExactRequirement`: one `accepts` entry (v2 wire names; `v1_entry` for the legacy names);
- `parse_exact(header)`: a decoded PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1) document;
- `check_accepted(accepted, requirement)`: the v2 `accepted` echo is the current offer;
- `check_layout(tx, ...)`: instruction-level rules the exact scheme requires.

The transfer itself (mint, decimals, recipient, amount, signatures) is then checked by the
ordinary verifier (`verifier.check`), so both protocols share one set of money rules.

Why the layout is this strict: the server's wallet pays the fee and signs the whole
transaction. Anything beyond budget + transfer + memo (or the Lighthouse assertions Phantom
adds) could make the server's signature authorise something else, so it is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.accounts import token_program_for
from cedros_pay.integrations.solana.payload import PaymentHeader
from cedros_pay.integrations.solana.rpc import RpcCallError
from cedros_pay.integrations.solana.transaction import (
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_PROGRAMS,
    TOKEN_PROGRAMS,
    TRANSFER_CHECKED,
)

log = logging.getLogger("cedros_pay.solana.exact")

SCHEME = "exact"
MAX_COMPUTE_UNIT_PRICE = 5_000_000  # micro-lamports per CU (the scheme's ceiling: 5 lamports)
MAX_MEMO_BYTES = 256
MIN_INSTRUCTIONS, MAX_INSTRUCTIONS = 3, 6
LIGHTHOUSE_PROGRAM_ID = Pubkey.from_string("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95")

# CAIP-2 ids (v2) and legacy names (v1). Localnet wears devnet's identity (the sandbox does).
CAIP2 = {
    "mainnet-beta": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "devnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    "testnet": "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
    "localnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
}
V1_NETWORKS = {"mainnet-beta": "solana", "devnet": "solana-devnet",
               "testnet": "solana-testnet", "localnet": "solana-devnet"}

_SET_CU_LIMIT, _SET_CU_PRICE = 2, 3


class ExactReason(StrEnum):
    """`details["reason"]` of an exact-scheme refusal (alongside the spec code)."""

    UNSUPPORTED_SCHEME = "exact_unsupported_scheme"
    NETWORK_MISMATCH = "exact_network_mismatch"
    MALFORMED_PAYLOAD = "exact_malformed_payload"
    ACCEPTED_MISMATCH = "exact_accepted_mismatch"
    INSTRUCTION_COUNT = "exact_instruction_count"
    COMPUTE_LIMIT = "exact_compute_limit_instruction"
    COMPUTE_PRICE = "exact_compute_price_instruction"
    COMPUTE_PRICE_TOO_HIGH = "exact_compute_price_too_high"
    TRANSFER_POSITION = "exact_transfer_not_third"
    UNKNOWN_INSTRUCTION = "exact_unknown_instruction"
    LOOKUP_TABLES = "exact_lookup_tables"
    FEE_PAYER_NOT_OURS = "exact_fee_payer_not_managed"
    FEE_PAYER_IN_INSTRUCTION = "exact_fee_payer_in_instruction"
    MEMO_MISMATCH = "exact_memo_mismatch"


def caip2(network: str) -> str:
    """The CAIP-2 id of a Cedros network name (`devnet` -> `solana:EtWT...`)."""
    try:
        return CAIP2[network]
    except KeyError:
        raise CedrosError(ErrorCode.CONFIG_ERROR, f"no CAIP-2 id for network {network!r}") \
            from None


def v1_network(network: str) -> str:
    return V1_NETWORKS.get(network, network)


@dataclass(frozen=True, slots=True)
class ExactRequirement:
    """One `accepts` entry of the exact scheme, for one resource at its current price."""

    network: str  # Cedros name (`devnet`); wire forms via caip2()/v1_network()
    asset: str  # mint
    amount_atomic: int
    pay_to: str  # the merchant's OWNER wallet: the transfer goes to its ATA for `asset`
    max_timeout_seconds: int
    fee_payer: str
    memo: str
    url: str
    description: str
    mime_type: str = "application/json"

    def entry(self) -> dict[str, Any]:
        """The v2 `accepts[]` object."""
        return {"scheme": SCHEME, "network": caip2(self.network), "asset": self.asset,
                "amount": str(self.amount_atomic), "payTo": self.pay_to,
                "maxTimeoutSeconds": self.max_timeout_seconds,
                "extra": {"feePayer": self.fee_payer, "memo": self.memo}}

    def v1_entry(self) -> dict[str, Any]:
        """The same offer in v1's names (legacy network name, `maxAmountRequired`)."""
        return {"scheme": SCHEME, "network": v1_network(self.network),
                "maxAmountRequired": str(self.amount_atomic), "resource": self.url,
                "description": self.description, "mimeType": self.mime_type,
                "payTo": self.pay_to, "maxTimeoutSeconds": self.max_timeout_seconds,
                "asset": self.asset, "extra": {"feePayer": self.fee_payer, "memo": self.memo}}


def payment_required(requirements: list[ExactRequirement], *, url: str, description: str,
                     mime_type: str = "application/json",
                     error: str | None = None) -> dict[str, Any]:
    """The v2 PaymentRequired object (the PAYMENT-REQUIRED header's JSON)."""
    doc: dict[str, Any] = {
        "x402Version": 2,
        "resource": {"url": url, "description": description, "mimeType": mime_type},
        "accepts": [r.entry() for r in requirements],
    }
    if error:
        doc["error"] = error
    return doc


@dataclass(frozen=True, slots=True)
class ExactPayment:
    """A decoded exact-scheme payment of either protocol version."""

    version: int  # 1 or 2
    network: str  # as sent: CAIP-2 (v2) or legacy name (v1)
    transaction: str  # base64
    accepted: Mapping[str, Any] | None = None  # v2 only: the offer the client took
    resource: Mapping[str, Any] = field(default_factory=dict)


def parse_exact(header: PaymentHeader) -> ExactPayment:
    """Check the v1/v2 envelope; the transaction bytes are decoded later."""
    doc = header.document
    if header.version == 2:
        accepted = doc.get("accepted")
        if not isinstance(accepted, Mapping):
            _malformed("accepted", "the v2 payment lacks the `accepted` requirement")
        scheme, network = accepted.get("scheme"), accepted.get("network")
        resource = doc.get("resource")
        resource = resource if isinstance(resource, Mapping) else {}
    elif header.version == 1:
        accepted = None
        scheme, network = doc.get("scheme"), doc.get("network")
        resource = {}
    else:
        raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                          f"x402Version {header.version} is not an exact-scheme version",
                          {"reason": "unsupported_version", "x402Version": header.version})
    if scheme != SCHEME:
        _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.UNSUPPORTED_SCHEME,
                f"scheme {scheme!r} is not supported; use 'exact'", field="scheme")
    if not isinstance(network, str) or not network:
        _malformed("network", "the payment names no network")
    body = doc.get("payload")
    transaction = body.get("transaction") if isinstance(body, Mapping) else None
    if not isinstance(transaction, str) or not transaction.strip():
        _malformed("payload.transaction", "the payment carries no transaction")
    return ExactPayment(header.version, network, transaction, accepted, resource)


def check_network(payment: ExactPayment, network: str) -> None:
    """v2 names the chain by CAIP-2, v1 by its legacy name; either must be ours."""
    expected = caip2(network) if payment.version == 2 else v1_network(network)
    if payment.network != expected:
        _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.NETWORK_MISMATCH,
                f"the payment is for {payment.network!r}; this server takes {expected!r}",
                expected=expected, got=payment.network)


def check_accepted(accepted: Mapping[str, Any], requirement: ExactRequirement,
                   *, is_fee_payer: Callable[[str], bool],
                   memo_shape: re.Pattern[str] | None = None) -> None:
    """The v2 `accepted` must be the offer we make now: same network, asset, amount and
    recipient. Fee payer and memo vary per quote, so they are checked for being ours
    (a server wallet; a memo of the shape our quotes produce) rather than for equality."""
    offer = requirement.entry()
    for key in ("scheme", "network", "asset", "amount", "payTo"):
        if accepted.get(key) != offer[key]:
            _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.ACCEPTED_MISMATCH,
                    f"accepted.{key} is not the current requirement's",
                    field=f"accepted.{key}", expected=offer[key], got=accepted.get(key))
    extra = accepted.get("extra")
    extra = extra if isinstance(extra, Mapping) else {}
    fee_payer = extra.get("feePayer")
    if not isinstance(fee_payer, str) or not is_fee_payer(fee_payer):
        _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.FEE_PAYER_NOT_OURS,
                "accepted.extra.feePayer is not a wallet of this server",
                field="accepted.extra.feePayer")
    memo = extra.get("memo")
    quoted = memo is None or (
        isinstance(memo, str) and len(memo.encode()) <= MAX_MEMO_BYTES
        and (memo_shape is None or memo_shape.fullmatch(memo) is not None))
    if not quoted:
        _refuse(ErrorCode.INVALID_MEMO, ExactReason.MEMO_MISMATCH,
                "accepted.extra.memo is not a memo this server quoted",
                field="accepted.extra.memo")


@dataclass(frozen=True, slots=True)
class ExactLayout:
    """What `check_layout` read: the memos and budget the transaction carries."""

    fee_payer: str
    compute_unit_limit: int
    compute_unit_price: int
    memos: tuple[str, ...]


def check_layout(tx: VersionedTransaction, *, is_fee_payer: Callable[[str], bool],
                 memo: str | re.Pattern[str] | None) -> ExactLayout:
    """The exact scheme's transaction shape (see the module docstring for why):

    3-6 instructions; #0 SetComputeUnitLimit; #1 SetComputeUnitPrice <= 5 lamports/CU;
    #2 TransferChecked (Token or Token-2022); the rest only Memo or Lighthouse. The fee payer
    must be a server wallet and appear in no instruction's accounts. `memo`, when given,
    is what one Memo instruction must say (text, or a pattern for v1, which quotes no memo).
    """
    message = tx.message
    keys = list(message.account_keys)
    if isinstance(message, MessageV0) and message.address_table_lookups:
        _layout(ExactReason.LOOKUP_TABLES,
                "exact payments must list every account statically (no lookup tables)")
    ixs = list(message.instructions)
    if not MIN_INSTRUCTIONS <= len(ixs) <= MAX_INSTRUCTIONS:
        _layout(ExactReason.INSTRUCTION_COUNT,
                f"an exact payment has 3 to 6 instructions, not {len(ixs)}", count=len(ixs))

    def program(index: int) -> Pubkey:
        return keys[ixs[index].program_id_index]

    limit_data = bytes(ixs[0].data)
    if (program(0) != COMPUTE_BUDGET_PROGRAM_ID or limit_data[:1] != bytes([_SET_CU_LIMIT])
            or len(limit_data) != 5):
        _layout(ExactReason.COMPUTE_LIMIT, "instruction 0 must set the compute unit limit")
    price_data = bytes(ixs[1].data)
    if (program(1) != COMPUTE_BUDGET_PROGRAM_ID or price_data[:1] != bytes([_SET_CU_PRICE])
            or len(price_data) != 9):
        _layout(ExactReason.COMPUTE_PRICE, "instruction 1 must set the compute unit price")
    price = int.from_bytes(price_data[1:9], "little")
    if price > MAX_COMPUTE_UNIT_PRICE:
        _layout(ExactReason.COMPUTE_PRICE_TOO_HIGH,
                f"compute unit price {price} exceeds {MAX_COMPUTE_UNIT_PRICE} micro-lamports",
                limit=MAX_COMPUTE_UNIT_PRICE, got=price)
    if program(2) not in TOKEN_PROGRAMS or bytes(ixs[2].data)[:1] != bytes([TRANSFER_CHECKED]):
        raise CedrosError(ErrorCode.NOT_SPL_TRANSFER,
                          "instruction 2 of an exact payment must be a TransferChecked",
                          {"reason": ExactReason.TRANSFER_POSITION.value})
    memos: list[str] = []
    for index in range(3, len(ixs)):
        prog = program(index)
        if prog in MEMO_PROGRAMS:
            memos.append(bytes(ixs[index].data).decode("utf-8", errors="replace"))
        elif prog != LIGHTHOUSE_PROGRAM_ID:
            _layout(ExactReason.UNKNOWN_INSTRUCTION,
                    f"instruction {index} calls {prog}, which an exact payment may not",
                    index=index, program=str(prog))

    fee_payer = str(keys[0])
    if not is_fee_payer(fee_payer):
        _refuse(ErrorCode.INVALID_TRANSACTION, ExactReason.FEE_PAYER_NOT_OURS,
                "the transaction's fee payer is not a wallet of this server",
                feePayer=fee_payer)
    # Index 0 is the fee payer: if any instruction names it, our signature would authorise
    # more than the fee (a transfer from our wallet, an account we fund...).
    for index, ix in enumerate(ixs):
        if 0 in bytes(ix.accounts):
            _refuse(ErrorCode.INVALID_TRANSACTION, ExactReason.FEE_PAYER_IN_INSTRUCTION,
                    "the fee payer may not appear in the payment's instructions",
                    index=index)
    if memo is not None and not any(
            (m == memo) if isinstance(memo, str) else bool(memo.fullmatch(m)) for m in memos):
        code = ErrorCode.INVALID_MEMO if memos else ErrorCode.MISSING_MEMO
        _refuse(code, ExactReason.MEMO_MISMATCH,
                "the transaction's memo is not the quoted one")
    return ExactLayout(fee_payer=fee_payer,
                       compute_unit_limit=int.from_bytes(limit_data[1:5], "little"),
                       compute_unit_price=price, memos=tuple(memos))


RpcCall = Callable[[str, list[Any]], Awaitable[Any]]  # SolanaRpc.call


class MintPrograms:
    """Which token program owns a mint, read from the chain once per mint.

    The exact scheme pins the transfer's program to the mint's owner (Token or Token-2022),
    and so does the client, which reads the mint account to build its transfer. A mint's
    owner never changes, so one successful read is cached for good; when the RPC cannot
    answer, the built-in table of known mints (`accounts.token_program_for`) stands in.
    """

    def __init__(self, call: RpcCall) -> None:
        self._call = call
        self._known: dict[str, str] = {}

    async def program_of(self, mint: str) -> str:
        cached = self._known.get(mint)
        if cached is not None:
            return cached
        try:
            result = await self._call("getAccountInfo", [mint, {"encoding": "base64"}])
        except (CedrosError, RpcCallError, OSError, ValueError) as exc:
            log.warning("mint owner lookup failed for %s: %s", mint[:8], exc)
            return str(token_program_for(mint))
        value = result.get("value") if isinstance(result, dict) else None
        owner = value.get("owner") if isinstance(value, dict) else None
        if not isinstance(owner, str):
            return str(token_program_for(mint))
        self._known[mint] = owner
        return owner


def _layout(reason: ExactReason, message: str, **details: Any) -> NoReturn:
    _refuse(ErrorCode.INVALID_TRANSACTION, reason, message, **details)


def _malformed(name: str, message: str) -> NoReturn:
    _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.MALFORMED_PAYLOAD, message, field=name)


def _refuse(code: ErrorCode, reason: ExactReason, message: str, **details: Any) -> NoReturn:
    raise CedrosError(code, message, {"reason": reason.value, **details})

"""The official x402 `exact` scheme on Solana (protocol versions 1 and 2).

Cedros's own format (x402Version 0, `cedros_v0`) stays the Cedros UI's; agents built on the
official x402 SDKs speak `exact`, whose transaction has a fixed shape the facilitator must
check before it co-signs as fee payer. This module is that shape check plus its memo rule:

- `parse_exact(header)`: a decoded PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1) document;
- `check_network`, `check_accepted(accepted, requirement)`: the payment is for the offer
  we make now;
- `check_layout(tx, ...)`: instruction-level rules the exact scheme requires;
- `quote_memo` / `memo_shape`: the memo an offer names, and every memo one could name.

The transfer itself (mint, decimals, recipient, amount, signatures) is then checked by the
ordinary verifier (`integrations/solana/verifier.check`), so both protocols share one set
of money rules.

Why the layout is this strict: the server's wallet pays the fee and signs the whole
transaction. Anything beyond budget + transfer + memo (or the Lighthouse assertions Phantom
adds) could make the server's signature authorise something else, so it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.x402.memo import DEFAULT_TEMPLATE, interpolate_memo, memo_matcher
from cedros_pay.x402.networks import wire_network
from cedros_pay.x402.schemas import EXACT, ExactPayment, ExactRequirement, PaymentHeader
from cedros_pay.x402.svm import (
    COMPUTE_BUDGET_PROGRAM_ID,
    LIGHTHOUSE_PROGRAM_ID,
    MEMO_PROGRAMS,
    SET_COMPUTE_UNIT_LIMIT,
    SET_COMPUTE_UNIT_PRICE,
    TOKEN_PROGRAMS,
    TRANSFER_CHECKED,
)

SCHEME = EXACT
MAX_COMPUTE_UNIT_PRICE = 5_000_000  # micro-lamports per CU (the scheme's ceiling: 5 lamports)
MAX_MEMO_BYTES = 256
MIN_INSTRUCTIONS, MAX_INSTRUCTIONS = 3, 6

_NONCE = re.compile(r"\{\{?\s*nonce\s*\}?\}")


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
    expected = wire_network(network, payment.version)
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
    if (program(0) != COMPUTE_BUDGET_PROGRAM_ID or limit_data[:1] != bytes([SET_COMPUTE_UNIT_LIMIT])
            or len(limit_data) != 5):
        _layout(ExactReason.COMPUTE_LIMIT, "instruction 0 must set the compute unit limit")
    price_data = bytes(ixs[1].data)
    if (program(1) != COMPUTE_BUDGET_PROGRAM_ID or price_data[:1] != bytes([SET_COMPUTE_UNIT_PRICE])
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


def memo_templates(template: str, prefix: str) -> tuple[str, str]:
    """A template made unique per quote with a nonce if it has none; and a short
    `{prefix}:{resource}:{nonce}` fallback for memos that would exceed 256 bytes."""
    base = template or DEFAULT_TEMPLATE
    main = base if _NONCE.search(base) else base + " {nonce}"
    return main, prefix + ":{resource}:{nonce}"


def quote_memo(template: str, prefix: str, values: Mapping[str, str]) -> str:
    """The memo an exact offer names (`values`: resource, nonce, amount)."""
    main, fallback = memo_templates(template, prefix)
    memo = interpolate_memo(main, values)
    if len(memo.encode()) > MAX_MEMO_BYTES:
        memo = interpolate_memo(fallback, values)
    return memo


def memo_shape(template: str, prefix: str, resource: str) -> re.Pattern[str]:
    """Every memo `quote_memo` can produce for `resource` (quotes are not stored)."""
    main, fallback = memo_templates(template, prefix)
    fixed = {"resource": resource}
    return re.compile(f"(?:{memo_matcher(main, fixed).pattern})"
                      f"|(?:{memo_matcher(fallback, fixed).pattern})")


def accepted_memo(accepted: Mapping[str, Any]) -> str | None:
    """The memo a v2 `accepted` echo names, if any."""
    extra = accepted.get("extra")
    memo = extra.get("memo") if isinstance(extra, Mapping) else None
    return memo if isinstance(memo, str) else None


def _layout(reason: ExactReason, message: str, **details: Any) -> NoReturn:
    _refuse(ErrorCode.INVALID_TRANSACTION, reason, message, **details)


def _malformed(name: str, message: str) -> NoReturn:
    _refuse(ErrorCode.INVALID_PAYMENT_PROOF, ExactReason.MALFORMED_PAYLOAD, message, field=name)


def _refuse(code: ErrorCode, reason: ExactReason, message: str, **details: Any) -> NoReturn:
    raise CedrosError(code, message, {"reason": reason.value, **details})

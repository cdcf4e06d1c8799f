"""Transaction fees as the validator computes them (getFeeForMessage).

LiteSVM charges the same formula: 5,000 lamports per signature plus the prioritization fee,
compute-unit price (micro-lamports) times the compute-unit limit, rounded up.
"""

from __future__ import annotations

from solders.message import Message, MessageV0
from solders.pubkey import Pubkey

LAMPORTS_PER_SIGNATURE = 5_000
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
_DEFAULT_UNITS_PER_INSTRUCTION = 200_000
_MAX_UNITS = 1_400_000
_SET_UNIT_LIMIT = 2
_SET_UNIT_PRICE = 3


def fee_for_message(message: Message | MessageV0) -> int:
    keys = message.account_keys
    limit: int | None = None
    price = 0
    other_instructions = 0
    for ix in message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM_ID or not data:
            other_instructions += 1
        elif data[0] == _SET_UNIT_LIMIT and len(data) >= 5:
            limit = int.from_bytes(data[1:5], "little")
        elif data[0] == _SET_UNIT_PRICE and len(data) >= 9:
            price = int.from_bytes(data[1:9], "little")
    if limit is None:
        limit = _DEFAULT_UNITS_PER_INSTRUCTION * other_instructions
    limit = min(limit, _MAX_UNITS)
    priority = (price * limit + 999_999) // 1_000_000
    return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures + priority

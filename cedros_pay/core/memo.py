"""Memo templates (spec 16 "Memo Template Interpolation")."""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_MEMO_BYTES = 566  # Solana's memo limit
DEFAULT_TEMPLATE = "Payment for {resource}"

# `{name}` and `{{name}}` are the same placeholder (DESIGN §7); unknown names stay literal.
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}|\{(\w+)\}")


def interpolate_memo(template: str, values: Mapping[str, str]) -> str:
    """Fill `{resource}`, `{nonce}`, `{wallet}`, `{amount}`; cut to 566 UTF-8 bytes."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        value = values.get(name)
        return match.group(0) if value is None else value

    memo = _PLACEHOLDER.sub(fill, template or DEFAULT_TEMPLATE)
    encoded = memo.encode()
    if len(encoded) <= MAX_MEMO_BYTES:
        return memo
    # Cut on a character boundary so the memo stays valid UTF-8.
    return encoded[:MAX_MEMO_BYTES].decode(errors="ignore")

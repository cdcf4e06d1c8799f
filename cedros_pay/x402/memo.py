"""Memo templates (spec 16 "Memo Template Interpolation"), shared by both schemes: a quote
fills one with a fresh nonce; verification checks a memo's shape (quotes are not stored)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

MAX_MEMO_BYTES = 566  # Solana's memo limit
DEFAULT_TEMPLATE = "Payment for {resource}"

# `{name}` and `{{name}}` are the same placeholder (DESIGN §7); unknown names stay literal.
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}|\{(\w+)\}")


@functools.lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[str, str, str], ...]:
    """The template as (literal text, placeholder name, placeholder as written) triples,
    the last with an empty name: split once per template, filled per quote."""
    out: list[tuple[str, str, str]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        out.append((template[pos:match.start()], match.group(1) or match.group(2),
                    match.group(0)))
        pos = match.end()
    out.append((template[pos:], "", ""))
    return tuple(out)


def interpolate_memo(template: str, values: Mapping[str, str]) -> str:
    """Fill `{resource}`, `{nonce}`, `{wallet}`, `{amount}`; cut to 566 UTF-8 bytes."""
    parts: list[str] = []
    for literal, name, written in _pieces(template or DEFAULT_TEMPLATE):
        parts.append(literal)
        if name:
            value = values.get(name)
            parts.append(written if value is None else value)
    memo = "".join(parts)
    encoded = memo.encode()
    if len(encoded) <= MAX_MEMO_BYTES:
        return memo
    # Cut on a character boundary so the memo stays valid UTF-8.
    return encoded[:MAX_MEMO_BYTES].decode(errors="ignore")


def nonce_slots(template: str, values: Mapping[str, str],
                nonce_length: int) -> tuple[str, ...] | None:
    """The memo of `template` with `values` filled in, as the text around its `{nonce}`
    placeholders: with an ASCII nonce of `nonce_length` characters, the memo is
    `nonce.join(slots)`, equal to `interpolate_memo` with that nonce. A product's quotes
    differ only by their nonce, so this is worked out once per product. None when the
    memo would exceed the byte limit (then `interpolate_memo` cuts it)."""
    slots: list[str] = []
    current: list[str] = []
    for literal, name, written in _pieces(template or DEFAULT_TEMPLATE):
        current.append(literal)
        if name == "nonce":
            slots.append("".join(current))
            current = []
        elif name:
            value = values.get(name)
            current.append(written if value is None else value)
    slots.append("".join(current))
    size = sum(len(slot.encode()) for slot in slots) + nonce_length * (len(slots) - 1)
    return tuple(slots) if size <= MAX_MEMO_BYTES else None


_VALUE_PATTERNS = {
    "nonce": r"[A-Za-z0-9_-]{8}",
    "wallet": r"[1-9A-HJ-NP-Za-km-z]{32,44}",
    "amount": r"[0-9]+(?:\.[0-9]+)?",
}


def memo_matcher(template: str, values: Mapping[str, str]) -> re.Pattern[str]:
    """A pattern accepting exactly the memos `interpolate_memo` can produce for `template`
    with the given fixed values; per-quote parts (`{nonce}`, …) match their format.

    Quotes are not stored, so verification checks a memo's shape instead of its nonce.
    """
    out: list[str] = []
    pos = 0
    source = template or DEFAULT_TEMPLATE
    for match in _PLACEHOLDER.finditer(source):
        out.append(re.escape(source[pos:match.start()]))
        name = match.group(1) or match.group(2)
        if name in values:
            out.append(re.escape(values[name]))
        elif name in _VALUE_PATTERNS:
            out.append(_VALUE_PATTERNS[name])
        else:
            out.append(re.escape(match.group(0)))
        pos = match.end()
    out.append(re.escape(source[pos:]))
    return re.compile("".join(out))

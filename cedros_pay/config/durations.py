"""Go-style duration strings ("90s", "1h30m", "100ms") to and from `timedelta`.

The reference server's YAML and env vars use Go's `time.ParseDuration` syntax; it also
reads a bare number as seconds (its YAML decoder retries "<n>s"), so we do the same.
Sub-microsecond parts are rounded to the nearest microsecond (timedelta's resolution).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["format_duration", "parse_duration"]

# Nanoseconds per unit, as Go spells them (both micro signs included).
_UNIT_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)")


def parse_duration(value: object) -> timedelta:
    """Parse a Go duration string, a number of seconds, or pass a timedelta through.

    Raises ValueError("invalid duration '...'") so callers can prefix the config key.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # bool is an int subclass; `true` is no duration
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return _from_seconds(Decimal(str(value)), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _from_seconds(Decimal(text), value)
    sign = 1
    body = text
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body:
        raise ValueError(f"invalid duration {value!r}")
    total_ns = Decimal(0)
    pos = 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            raise ValueError(f"invalid duration {value!r}")
        total_ns += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(body):
        raise ValueError(f"invalid duration {value!r}")
    micros = (total_ns / 1000).to_integral_value(rounding=ROUND_HALF_UP)
    return timedelta(microseconds=sign * int(micros))


def _from_seconds(seconds: Decimal, original: object) -> timedelta:
    try:
        micros = (seconds * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP)
        return timedelta(microseconds=int(micros))
    except (InvalidOperation, OverflowError) as exc:
        raise ValueError(f"invalid duration {original!r}") from exc


def format_duration(value: timedelta) -> str:
    """Render compactly in the syntax `parse_duration` reads back ("1h30m", "100ms", "0s")."""
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros < 1_000_000:
        if micros % 1000 == 0:
            return f"{sign}{micros // 1000}ms"
        return f"{sign}{micros}us"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    parts = [sign]
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        seconds = Decimal(rest) / 1_000_000
        parts.append(f"{seconds.normalize():f}s")
    return "".join(parts)

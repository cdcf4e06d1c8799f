"""Injected time, RFC 3339 text, and Go-style durations.

A `Clock` is passed to whatever needs "now" so tests move time with `ManualClock` instead
of sleeping. Timestamps go on the wire the way Go's `time.Time` marshals them (RFC 3339 in
UTC with `Z`; fractional seconds only when non-zero, trailing zeros trimmed). Durations
are read and written in Go's syntax because the config (spec 09) and `/cedros-health`
(spec 02, `uptime`) use it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = _aware(when)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return when.astimezone(UTC)


def as_utc(when: datetime) -> datetime:
    """Aware UTC from any datetime; naive ones (e.g. read back from SQLite) are taken as UTC."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# --- RFC 3339 ----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def to_rfc3339(when: datetime) -> str:
    """`2025-12-01T10:00:00Z`; sub-second digits only when present (`…:00.5Z`), like Go."""
    t = _aware(when)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) into aware UTC.

    Digits beyond microseconds are truncated; a malformed value is a ValueError.
    """
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micros = int((m.group(7) or "").ljust(6, "0")[:6])
    if m.group(8):
        tz = UTC
    else:
        hours, minutes = int(m.group(10)), int(m.group(11))
        if hours > 23 or minutes > 59:
            raise ValueError(f"invalid UTC offset in {text!r}")
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if m.group(9) == "-" else offset)
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz).astimezone(UTC)


# --- Go durations --------------------------------------------------------------------------------

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_MAX_NS = 2**63 - 1


def parse_duration(text: str) -> timedelta:
    """Go's `time.ParseDuration`: "90s", "5m", "1h30m", "1.5h", "100ms", "-2h", "0".

    Precision below a microsecond is truncated (timedelta cannot hold it).
    """
    s = text.strip()
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = Fraction(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or not (m.group(1) or m.group(2)):
            raise ValueError(f"invalid duration {text!r}")
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        value = Fraction(int(whole or "0")) + Fraction(int(frac or "0"), 10 ** len(frac))
        total += value * _NS_PER_UNIT[unit]
        pos = m.end()
    nanos = int(total)  # truncate, as Go does
    if nanos > _MAX_NS:
        raise ValueError(f"duration out of range {text!r}")
    return sign * timedelta(microseconds=nanos // 1_000)


def format_duration(delta: timedelta) -> str:
    """Go's `Duration.String()`: "1h2m3s", "2m0s", "1.5s", "100ms", "0s"."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    nanos = abs(micros) * 1_000
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000)):
            if nanos >= size:
                return sign + _with_fraction(nanos, size) + unit
    hours, rest = divmod(nanos, _NS_PER_UNIT["h"])
    minutes, rest = divmod(rest, _NS_PER_UNIT["m"])
    seconds = _with_fraction(rest, _NS_PER_UNIT["s"]) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _with_fraction(amount: int, size: int) -> str:
    whole, frac = divmod(amount, size)
    if not frac:
        return str(whole)
    width = len(str(size)) - 1
    return f"{whole}." + f"{frac:0{width}d}".rstrip("0")

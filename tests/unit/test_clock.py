"""Clocks, RFC 3339 (spec 16 "Date/Time Formats") and Go durations (spec 02, spec 09)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cedros_pay.core.clock import (
    Clock,
    ManualClock,
    SystemClock,
    as_utc,
    format_duration,
    parse_duration,
    parse_rfc3339,
    to_rfc3339,
)

START = datetime(2025, 12, 1, 10, 0, 0, tzinfo=UTC)
EST = timezone(timedelta(hours=-5))


# --- clocks --------------------------------------------------------------------------------------


def test_system_clock_is_aware_utc_now() -> None:
    clock: Clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_manual_clock_only_moves_when_told() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.now() == START
    assert clock.advance(timedelta(minutes=5)) == START + timedelta(minutes=5)
    assert clock.now() == START + timedelta(minutes=5)
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_manual_clock_normalises_to_utc_and_rejects_naive_times() -> None:
    clock = ManualClock(datetime(2025, 12, 1, 5, 0, tzinfo=EST))
    assert clock.now() == START
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError):
        ManualClock(datetime(2025, 12, 1))
    with pytest.raises(ValueError):
        clock.set(datetime(2025, 12, 1))


def test_manual_clock_satisfies_the_clock_protocol() -> None:
    clock: Clock = ManualClock(START)
    assert clock.now() == START


def test_as_utc_treats_naive_times_as_utc() -> None:
    assert as_utc(datetime(2025, 12, 1, 10, 0)) == START
    assert as_utc(datetime(2025, 12, 1, 5, 0, tzinfo=EST)).tzinfo is UTC


# --- RFC 3339 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (START, "2025-12-01T10:00:00Z"),  # spec 16
        (datetime(2025, 12, 1, 5, 0, tzinfo=EST), "2025-12-01T10:00:00Z"),
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), "2025-12-31T23:59:59Z"),
        (datetime(2025, 12, 1, 10, 0, 0, 500_000, tzinfo=UTC), "2025-12-01T10:00:00.5Z"),
        (datetime(2025, 12, 1, 10, 0, 0, 123_456, tzinfo=UTC), "2025-12-01T10:00:00.123456Z"),
        (datetime(2025, 12, 1, 10, 0, 0, 120, tzinfo=UTC), "2025-12-01T10:00:00.00012Z"),
        (datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC), "0005-01-02T03:04:05Z"),
    ],
)
def test_to_rfc3339_is_utc_with_z_and_trimmed_fraction(when: datetime, text: str) -> None:
    assert to_rfc3339(when) == text


def test_to_rfc3339_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        to_rfc3339(datetime(2025, 12, 1))


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("2025-12-01T10:00:00Z", START),  # spec 16, UTC
        ("2025-12-01T10:00:00-05:00", datetime(2025, 12, 1, 15, 0, tzinfo=UTC)),  # with offset
        ("2025-12-01T10:00:00+00:00", START),
        ("2025-12-01t10:00:00z", START),
        ("2025-12-01T12:30:00+02:30", START),
        ("2025-12-01T10:00:00.5Z", START.replace(microsecond=500_000)),
        ("2025-12-01T10:00:00.123456789Z", START.replace(microsecond=123_456)),
        ("2025-12-31T23:59:59Z", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_gives_aware_utc(text: str, when: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == when
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2025-12-01",
        "2025-12-01T10:00:00",  # no offset
        "2025-12-01 10:00:00Z",
        "2025-13-01T10:00:00Z",
        "2025-12-01T25:00:00Z",
        "2025-12-01T10:00:00+24:00",
        "2025-12-01T10:00:00.Z",
        "1701432000",
    ],
)
def test_parse_rfc3339_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_rfc3339_round_trips() -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, 999_999, tzinfo=UTC)
    assert parse_rfc3339(to_rfc3339(when)) == when


# --- Go durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),  # spec 09 product cache TTL
        ("1m", timedelta(minutes=1)),  # spec 09 coupon cache TTL
        ("2160h", timedelta(days=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("100ms", timedelta(milliseconds=100)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("12h30m45s", timedelta(hours=12, minutes=30, seconds=45)),  # spec 02 uptime
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("-1.5h", -timedelta(hours=1, minutes=30)),
        ("+5s", timedelta(seconds=5)),
        (".5s", timedelta(milliseconds=500)),
        ("1.s", timedelta(seconds=1)),
        ("1us", timedelta(microseconds=1)),
        ("1\u00b5s", timedelta(microseconds=1)),
        ("1\u03bcs", timedelta(microseconds=1)),
        ("1500ns", timedelta(microseconds=1)),  # sub-microsecond truncated
        ("1h1m1s1ms1us", timedelta(hours=1, minutes=1, seconds=1, milliseconds=1, microseconds=1)),
        ("2562047h", timedelta(hours=2562047)),
    ],
)
def test_parse_duration_accepts_go_syntax(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    "text",
    ["", "1", "1d", "h", "1x", "--1s", "1h 30m", ".s", "1.5.5s", "s1", "-", "2562048h"],
)
def test_parse_duration_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=12, minutes=30, seconds=45), "12h30m45s"),  # spec 02 example
        (timedelta(hours=1, minutes=2, seconds=3), "1h2m3s"),
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(minutes=2), "2m0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=1, milliseconds=500), "1.5s"),
        (timedelta(milliseconds=100), "100ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=90), "90\u00b5s"),
        (timedelta(days=90), "2160h0m0s"),
        (-timedelta(seconds=90, milliseconds=500), "-1m30.5s"),
        (timedelta(hours=1, microseconds=1), "1h0m0.000001s"),
    ],
)
def test_format_duration_matches_go(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    "text", ["12h30m45s", "1h2m3s", "1.5s", "100ms", "2160h0m0s", "-1m30.5s", "1.5ms"]
)
def test_duration_text_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text

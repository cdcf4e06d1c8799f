"""Billing period arithmetic (spec 18 CalculatePeriodEnd, month ends clamped per DESIGN §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.periods import (
    BillingPeriod,
    Term,
    add_months,
    parse_interval,
    parse_period,
    period_end,
    renewal_start,
)


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 30) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(("start", "period", "interval", "end"), [
    (at(2025, 12, 15), BillingPeriod.DAY, 1, at(2025, 12, 16)),
    (at(2025, 12, 15), BillingPeriod.DAY, 7, at(2025, 12, 22)),
    (at(2025, 12, 15), BillingPeriod.WEEK, 2, at(2025, 12, 29)),
    (at(2025, 1, 31), BillingPeriod.MONTH, 1, at(2025, 2, 28)),
    (at(2025, 1, 31), BillingPeriod.MONTH, 3, at(2025, 4, 30)),
    (at(2024, 2, 29), BillingPeriod.YEAR, 1, at(2025, 2, 28)),
])
def test_period_end_matches_spec_18_table(start: datetime, period: BillingPeriod,
                                          interval: int, end: datetime) -> None:
    assert period_end(start, period, interval) == end


def test_month_end_clamps_to_every_shorter_month() -> None:
    for month in range(1, 13):
        start = at(2025, month, 31) if month in (1, 3, 5, 7, 8, 10, 12) else None
        if start is None:
            continue
        nxt = period_end(start, BillingPeriod.MONTH, 1)
        assert nxt.month == month % 12 + 1
        assert nxt.day == {2: 28, 4: 30, 6: 30, 9: 30, 11: 30}.get(nxt.month, 31)
        assert (nxt.hour, nxt.minute) == (10, 30)


def test_january_31_in_a_leap_year_is_february_29() -> None:
    assert period_end(at(2024, 1, 31), BillingPeriod.MONTH, 1) == at(2024, 2, 29)
    assert period_end(at(2024, 1, 30), BillingPeriod.MONTH, 1) == at(2024, 2, 29)
    assert period_end(at(2100, 1, 31), BillingPeriod.MONTH, 1) == at(2100, 2, 28)  # not leap
    assert period_end(at(2000, 1, 31), BillingPeriod.MONTH, 1) == at(2000, 2, 29)


def test_intervals_beyond_one_cross_years() -> None:
    assert period_end(at(2025, 11, 30), BillingPeriod.MONTH, 3) == at(2026, 2, 28)
    assert period_end(at(2025, 12, 31), BillingPeriod.MONTH, 14) == at(2027, 2, 28)
    assert period_end(at(2025, 3, 31), BillingPeriod.MONTH, 12) == at(2026, 3, 31)
    assert period_end(at(2024, 2, 29), BillingPeriod.YEAR, 4) == at(2028, 2, 29)
    assert add_months(at(2025, 5, 31), -3) == at(2025, 2, 28)


def test_period_end_is_computed_in_utc_keeping_the_time_of_day() -> None:
    plus2 = timezone(timedelta(hours=2))
    start = datetime(2025, 2, 1, 0, 30, 15, 123456, tzinfo=plus2)  # Jan 31 22:30 UTC
    end = period_end(start, BillingPeriod.MONTH, 1)
    assert end == datetime(2025, 2, 28, 22, 30, 15, 123456, tzinfo=UTC)
    assert end.tzinfo == UTC


def test_duration_seconds_is_the_real_length() -> None:
    day = 86400
    assert Term(BillingPeriod.MONTH).duration_seconds(at(2025, 2, 1)) == 28 * day
    assert Term(BillingPeriod.MONTH).duration_seconds(at(2024, 2, 1)) == 29 * day
    assert Term(BillingPeriod.MONTH).duration_seconds(at(2025, 12, 1)) == 31 * day
    assert Term(BillingPeriod.YEAR).duration_seconds(at(2024, 1, 1)) == 366 * day
    assert Term(BillingPeriod.WEEK, 2).duration_seconds(at(2025, 1, 1)) == 14 * day
    assert Term(BillingPeriod.DAY, 30).duration_seconds(at(2025, 1, 1)) == 30 * day


@pytest.mark.parametrize(("word", "days", "term", "back"), [
    ("daily", None, Term(BillingPeriod.DAY), "daily"),
    ("Weekly", None, Term(BillingPeriod.WEEK), "weekly"),
    ("monthly", 0, Term(BillingPeriod.MONTH), "monthly"),
    ("yearly", None, Term(BillingPeriod.YEAR), "yearly"),
    ("custom", 10, Term(BillingPeriod.DAY, 10), "custom"),
])
def test_interval_words(word: str, days: int | None, term: Term, back: str) -> None:
    parsed = parse_interval(word, days)
    assert parsed == term
    assert parsed.word == back


@pytest.mark.parametrize(("word", "days", "field"), [
    ("fortnightly", None, "interval"), ("", None, "interval"),
    ("custom", None, "intervalDays"), ("custom", 0, "intervalDays"),
    ("custom", -3, "intervalDays"), ("custom", 10**6, "intervalDays"),
])
def test_bad_intervals_are_invalid_field(word: str, days: int | None, field: str) -> None:
    with pytest.raises(CedrosError) as err:
        parse_interval(word, days)
    assert err.value.code is ErrorCode.INVALID_FIELD
    assert err.value.details["field"] == field


def test_bad_period_and_interval_are_refused() -> None:
    with pytest.raises(CedrosError):
        parse_period("fortnight")
    assert parse_period(" Month ") is BillingPeriod.MONTH
    with pytest.raises(CedrosError):
        Term(BillingPeriod.MONTH, 0)


def test_renewal_extends_from_the_end_while_active_else_from_now() -> None:
    now = at(2025, 3, 10)
    end = at(2025, 3, 31)
    assert renewal_start(end, True, now) == end
    assert renewal_start(end, False, now) == now
    assert renewal_start(at(2025, 3, 1), True, now) == now  # already past its end
    assert renewal_start(None, True, now) == now

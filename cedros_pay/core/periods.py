"""Billing periods: pure calendar arithmetic in UTC, shared by both subscription rails.

Month and year steps clamp to the last day of a shorter month (Jan 31 + 1 month = Feb 28
or 29, spec 18's table; DESIGN §7), never Go's `AddDate` roll-over into March. The time of
day is kept exactly. Nothing here reads a clock: callers pass "now".
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cedros_pay.core.errors import CedrosError, ErrorCode

MAX_INTERVAL = 3650  # ten years of days: beyond that a "subscription" is a typo


class BillingPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


# Spec 03's interval words; `custom` counts `intervalDays` days.
_INTERVALS = {"daily": BillingPeriod.DAY, "weekly": BillingPeriod.WEEK,
              "monthly": BillingPeriod.MONTH, "yearly": BillingPeriod.YEAR}
_WORDS = {period: word for word, period in _INTERVALS.items()}


@dataclass(frozen=True, slots=True)
class Term:
    """One billing cycle: `interval` periods of `period` (2 + month = every two months)."""

    period: BillingPeriod
    interval: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.interval <= MAX_INTERVAL:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"billing interval must be 1..{MAX_INTERVAL}",
                              {"field": "billingInterval"})

    @property
    def word(self) -> str:
        """Spec 03's `interval`: daily/weekly/monthly/yearly, `custom` for N days."""
        if self.interval == 1 or self.period is not BillingPeriod.DAY:
            return _WORDS[self.period]
        return "custom"

    def end(self, start: datetime) -> datetime:
        """The end of the cycle starting at `start`."""
        return period_end(start, self.period, self.interval)

    def duration_seconds(self, start: datetime) -> int:
        """The real length of the cycle from `start` (a February month is 28 or 29 days)."""
        return int((self.end(start) - start).total_seconds())


def parse_period(value: str) -> BillingPeriod:
    try:
        return BillingPeriod(value.strip().lower())
    except ValueError:
        raise CedrosError(ErrorCode.INVALID_FIELD,
                          "billing period must be day, week, month or year",
                          {"field": "billingPeriod"}) from None


def parse_interval(interval: str, interval_days: int | None) -> Term:
    """Spec 03's request `interval` (+ `intervalDays` for `custom`) as a term."""
    word = interval.strip().lower()
    if word == "custom":
        if interval_days is None or not 1 <= interval_days <= MAX_INTERVAL:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"intervalDays must be 1..{MAX_INTERVAL} for a custom interval",
                              {"field": "intervalDays"})
        return Term(BillingPeriod.DAY, interval_days)
    period = _INTERVALS.get(word)
    if period is None:
        raise CedrosError(ErrorCode.INVALID_FIELD,
                          "interval must be daily, weekly, monthly, yearly or custom",
                          {"field": "interval"})
    return Term(period)


def add_months(start: datetime, months: int) -> datetime:
    """`start` plus `months` calendar months, the day clamped to the target month's end."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_end(start: datetime, period: BillingPeriod, interval: int) -> datetime:
    """Spec 18 CalculatePeriodEnd, in UTC, with month ends clamped."""
    start = start.astimezone(UTC)
    if period is BillingPeriod.DAY:
        return start + timedelta(days=interval)
    if period is BillingPeriod.WEEK:
        return start + timedelta(weeks=interval)
    if period is BillingPeriod.MONTH:
        return add_months(start, interval)
    return add_months(start, 12 * interval)


def renewal_start(current_end: datetime | None, still_active: bool, now: datetime) -> datetime:
    """Where a paid renewal starts: at the current end while active (no gap, no overlap),
    at `now` once lapsed (spec 18 ExtendX402Subscription)."""
    if still_active and current_end is not None and current_end > now:
        return current_end
    return now

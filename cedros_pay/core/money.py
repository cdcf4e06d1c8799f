"""Integer money (spec 05 "Money", spec 16 "Amount Conversion Algorithms").

`Money` holds an asset and an int64 count of atomic units. Nothing here does float
arithmetic: floats coming from JSON are read through their shortest decimal repr and
rounded exactly with `fractions.Fraction`. The only float produced is `to_major()`, for
the JSON fields the spec defines as floats.

Both rounding modes lean towards +infinity: CEILING is the mathematical
ceiling, STANDARD is half-up (x.5 -> x+1, -x.5 -> -x). This makes `round_up_to_cents`
round negatives towards zero, exactly as spec 05 requires for refunds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from cedros_pay.core.assets import Asset
from cedros_pay.core.errors import CedrosError, ErrorCode

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_MAX_TEXT = 100  # longer amount strings are rejected before any arithmetic
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ATOMIC_TEXT = re.compile(r"-?\d+")

Number = int | float | str | Decimal


class RoundingMode(StrEnum):
    """`x402.rounding_mode` (spec 09): how sub-atomic remainders are rounded."""

    STANDARD = "standard"  # half-up: $0.025 -> $0.03, $0.024 -> $0.02
    CEILING = "ceiling"  # always up: $0.024 -> $0.03, $0.001 -> $0.01

    @classmethod
    def parse(cls, value: str | None) -> RoundingMode:
        """Empty means the default (standard); an unknown value is a ValueError."""
        text = (value or "").strip().lower()
        return cls(text) if text else cls.STANDARD


class MoneyError(CedrosError):
    """Base of money failures; each carries the spec code a client should see."""

    code_for_kind = ErrorCode.INVALID_AMOUNT

    def __init__(self, message: str) -> None:
        super().__init__(self.code_for_kind, message)


class MoneyOverflowError(MoneyError):
    """The result does not fit in int64 atomic units."""


class InvalidMoneyFormatError(MoneyError):
    """An amount could not be parsed."""


class NegativeAmountError(MoneyError):
    """A negative amount where only non-negative ones make sense."""


class AssetMismatchError(MoneyError):
    """Arithmetic across assets: a programming error, so it is a 500."""

    code_for_kind = ErrorCode.INTERNAL_ERROR


class MoneyDivisionByZeroError(MoneyError):
    code_for_kind = ErrorCode.INTERNAL_ERROR


def _checked(atomic: int) -> int:
    if not INT64_MIN <= atomic <= INT64_MAX:
        raise MoneyOverflowError("money: arithmetic overflow")
    return atomic


def _round(value: Fraction, mode: RoundingMode) -> int:
    if mode is RoundingMode.CEILING:
        return math.ceil(value)
    return math.floor(value + Fraction(1, 2))


def _exact(value: Number, what: str) -> Fraction:
    """An exact rational for a user-facing number; floats via their shortest repr."""
    if isinstance(value, bool):
        raise InvalidMoneyFormatError(f"money: {what} must be a number")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMoneyFormatError(f"money: {what} must be finite")
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT or not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidMoneyFormatError(f"money: invalid {what} {value[:_MAX_TEXT]!r}")
        value = Decimal(text)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidMoneyFormatError(f"money: {what} must be finite")
        # Bound the exponent so hostile input like 1e999999999 costs nothing to reject.
        if value and not -60 <= value.adjusted() <= 60:
            if value.adjusted() > 0:
                raise MoneyOverflowError("money: arithmetic overflow")
            return Fraction(1 if value > 0 else -1, 10**61)
        return Fraction(value)
    raise InvalidMoneyFormatError(f"money: {what} must be a number")


@dataclass(frozen=True, slots=True, eq=False)
class Money:
    """An immutable amount of one asset in atomic units (cents, micro-USDC, lamports)."""

    asset: Asset
    atomic: int

    def __post_init__(self) -> None:
        if isinstance(self.atomic, bool) or not isinstance(self.atomic, int):
            raise InvalidMoneyFormatError("money: atomic amount must be an int")
        _checked(self.atomic)

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def zero(cls, asset: Asset) -> Money:
        return cls(asset, 0)

    @classmethod
    def from_atomic(cls, asset: Asset, atomic: int | str) -> Money:
        """From atomic units; a string must be a plain integer (x402 `maxAmountRequired`)."""
        if isinstance(atomic, str):
            if len(atomic) > 25 or not _ATOMIC_TEXT.fullmatch(atomic):
                raise InvalidMoneyFormatError(f"money: invalid atomic amount {atomic[:25]!r}")
            atomic = int(atomic)
        return cls(asset, atomic)

    @classmethod
    def from_major(cls, asset: Asset, amount: Number) -> Money:
        """From display units, rounding UP to a whole atomic unit (spec 16 FromMajor).

        Ceiling prevents underpayment: 10.505 USD -> 1051 cents, 1.5000005 USDC -> 1500001.
        """
        scaled = _exact(amount, "amount") * 10**asset.decimals
        if abs(scaled) > INT64_MAX + 1:
            raise MoneyOverflowError("money: arithmetic overflow")
        return cls(asset, math.ceil(scaled))

    # --- conversion -------------------------------------------------------------------------

    def to_major(self) -> float:
        """Display units as a float, only for JSON fields the spec defines as floats."""
        divisor: int = 10**self.asset.decimals
        return self.atomic / divisor

    def to_decimal(self) -> Decimal:
        return Decimal(self.atomic).scaleb(-self.asset.decimals)

    def to_atomic(self) -> int:
        return self.atomic

    def atomic_str(self) -> str:
        return str(self.atomic)

    def major_str(self, min_decimals: int | None = None) -> str:
        """Display units as text: all decimals ("1.500000"), or trailing zeros trimmed
        down to `min_decimals` ("1.50" with 2, "1.5" with 0)."""
        places = self.asset.decimals
        whole, frac = divmod(abs(self.atomic), 10**places)
        sign = "-" if self.atomic < 0 else ""
        digits = f"{frac:0{places}d}" if places else ""
        if min_decimals is not None:
            keep = max(0, min(min_decimals, places))
            digits = digits.rstrip("0").ljust(keep, "0")
        return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"

    # --- arithmetic ---------------------------------------------------------------------------

    def _same(self, other: Money, op: str) -> None:
        if self.asset.code != other.asset.code:
            raise AssetMismatchError(
                f"money: asset mismatch: cannot {op} {self.asset.code} and {other.asset.code}"
            )

    def _new(self, atomic: int) -> Money:
        return Money(self.asset, atomic)

    def add(self, other: Money) -> Money:
        self._same(other, "add")
        return self._new(self.atomic + other.atomic)

    def sub(self, other: Money) -> Money:
        self._same(other, "subtract")
        return self._new(self.atomic - other.atomic)

    def mul(self, quantity: int) -> Money:
        """Multiply by an integer quantity (cart lines)."""
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidMoneyFormatError("money: quantity must be an int")
        return self._new(self.atomic * quantity)

    def div(self, divisor: int, mode: RoundingMode = RoundingMode.STANDARD) -> Money:
        if isinstance(divisor, bool) or not isinstance(divisor, int):
            raise InvalidMoneyFormatError("money: divisor must be an int")
        if divisor == 0:
            raise MoneyDivisionByZeroError("money: division by zero")
        return self._new(_round(Fraction(self.atomic, divisor), mode))

    def multiply_by_float(
        self, factor: Number, mode: RoundingMode = RoundingMode.STANDARD
    ) -> Money:
        """Multiply by a non-integer factor, computed exactly from its decimal form."""
        return self._new(_round(self.atomic * _exact(factor, "factor"), mode))

    def mul_basis_points(self, bps: int, mode: RoundingMode = RoundingMode.STANDARD) -> Money:
        """Multiply by bps/10000 (100 bps = 1%)."""
        if isinstance(bps, bool) or not isinstance(bps, int):
            raise InvalidMoneyFormatError("money: basis points must be an int")
        return self._new(_round(Fraction(self.atomic * bps, 10_000), mode))

    def mul_percent(self, percent: Number, mode: RoundingMode = RoundingMode.STANDARD) -> Money:
        """Multiply by percent/100 (10 -> 10% of the amount)."""
        return self._new(_round(self.atomic * _exact(percent, "percent") / 100, mode))

    def apply_percentage_discount(
        self, percent: Number, mode: RoundingMode = RoundingMode.STANDARD
    ) -> Money:
        """The price after `percent`% off (0..100); the remainder is rounded by `mode`."""
        p = _exact(percent, "percent")
        if not 0 <= p <= 100:
            raise InvalidMoneyFormatError("money: discount percent must be between 0 and 100")
        return self._new(_round(self.atomic * (100 - p) / 100, mode))

    def apply_fixed_discount(self, discount: Money) -> Money:
        """The price minus `discount`, floored at zero.

        A discount in another USD-pegged asset counts 1:1 (spec 05), converted to this
        asset's precision rounding the discount down, so the merchant is never short.
        """
        if discount.is_negative():
            raise NegativeAmountError("money: discount must not be negative")
        off = discount.convert_to(self.asset, mode=None)
        return self._new(max(0, self.atomic - off.atomic))

    def convert_to(self, asset: Asset, mode: RoundingMode | None = RoundingMode.CEILING) -> Money:
        """The same value in an equivalent asset (same code, or both USD-pegged).

        Going to fewer decimals rounds by `mode`; None truncates towards zero.
        """
        if not self.asset.is_usd_equivalent(asset):
            raise AssetMismatchError(
                f"money: asset mismatch: {self.asset.code} is not equivalent to {asset.code}"
            )
        shift = asset.decimals - self.asset.decimals
        if shift >= 0:
            return Money(asset, self.atomic * 10**shift)
        value = Fraction(self.atomic, 10**-shift)
        return Money(asset, math.trunc(value) if mode is None else _round(value, mode))

    def round_to_cents(self, mode: RoundingMode) -> Money:
        """Round to 2 decimal places by `mode`; assets with ≤ 2 decimals are unchanged."""
        places = self.asset.decimals - 2
        if places <= 0:
            return self
        step = 10**places
        return self._new(_round(Fraction(self.atomic, step), mode) * step)

    def round_up_to_cents(self) -> Money:
        """Spec 05: positives round up ($0.184 -> $0.19), negatives towards zero
        (-$0.184 -> -$0.18) — both are the ceiling."""
        return self.round_to_cents(RoundingMode.CEILING)

    def negate(self) -> Money:
        return self._new(-self.atomic)

    def abs(self) -> Money:
        return self._new(abs(self.atomic))

    # --- predicates and comparison -------------------------------------------------------------

    def is_zero(self) -> bool:
        return self.atomic == 0

    def is_positive(self) -> bool:
        return self.atomic > 0

    def is_negative(self) -> bool:
        return self.atomic < 0

    def equal(self, other: Money) -> bool:
        return self.asset.code == other.asset.code and self.atomic == other.atomic

    def less_than(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.atomic < other.atomic

    def greater_than(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.atomic > other.atomic

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and self.equal(other)

    def __hash__(self) -> int:
        return hash((self.asset.code, self.atomic))

    def __lt__(self, other: Money) -> bool:
        return self.less_than(other)

    def __gt__(self, other: Money) -> bool:
        return self.greater_than(other)

    def __le__(self, other: Money) -> bool:
        return not self.greater_than(other)

    def __ge__(self, other: Money) -> bool:
        return not self.less_than(other)

    def __add__(self, other: Money) -> Money:
        return self.add(other)

    def __sub__(self, other: Money) -> Money:
        return self.sub(other)

    def __mul__(self, quantity: int) -> Money:
        return self.mul(quantity)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return self.negate()

    def __abs__(self) -> Money:
        return self.abs()

    # --- text ------------------------------------------------------------------------------------

    def __str__(self) -> str:
        """Full precision and code, e.g. "10.50 USD", "1.500000 USDC"."""
        return f"{self.major_str()} {self.asset.code}"

    def __repr__(self) -> str:
        return f"Money({self.asset.code}, {self.atomic})"


def sum_money(amounts: Iterable[Money], asset: Asset | None = None) -> Money:
    """Sum amounts of one asset; `asset` gives the result for an empty input."""
    total: Money | None = Money.zero(asset) if asset is not None else None
    for amount in amounts:
        total = amount if total is None else total.add(amount)
    if total is None:
        raise InvalidMoneyFormatError("money: cannot sum no amounts without an asset")
    return total


def display(money: Money) -> str:
    """Human text shared by REST and GraphQL: at least 2 decimals, trailing zeros trimmed,
    then the code ("10.50 USD", "1.50 USDC", "0.000001 USDC", "0.50 SOL")."""
    return f"{money.major_str(min_decimals=2)} {money.asset.code}"

"""`Money` as DESIGN §6 fixes it: atomic units as a string, so int64 survives JSON."""

from __future__ import annotations

import strawberry

from cedros_pay.core.money import Money as CoreMoney
from cedros_pay.core.money import display


@strawberry.type(description="An amount of one asset; `atomic` is an integer in a string.")
class Money:
    atomic: str = strawberry.field(description="Atomic units (cents, micro-USDC), base 10.")
    decimals: int
    asset: str = strawberry.field(description="Asset code, e.g. USD or USDC.")
    display: str = strawberry.field(description='Human text, e.g. "10.50 USD".')

    @classmethod
    def from_domain(cls, money: CoreMoney) -> Money:
        # Built eagerly: four plain attributes resolve faster than four resolver calls.
        return cls(atomic=str(money.atomic), decimals=money.asset.decimals,
                   asset=money.asset.code, display=display(money))

    @classmethod
    def maybe(cls, money: CoreMoney | None) -> Money | None:
        return cls.from_domain(money) if money is not None else None

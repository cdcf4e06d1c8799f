"""Reusable field types for the config models: durations, frozen maps, checked strings.

Each validator raises ValueError with a message meant to follow "<key>: " in a problem
line, so the loader can report it verbatim.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import base58
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer
from solders.keypair import Keypair

from cedros_pay.config.durations import format_duration, parse_duration
from cedros_pay.config.tokens import is_solana_address

__all__ = [
    "AwareDatetime",
    "Duration",
    "FrozenDict",
    "IpOrCidr",
    "PositiveDuration",
    "ServerWallets",
    "SolanaAddress",
    "StrList",
    "StrMap",
    "TableName",
    "check_ip_or_cidr",
    "check_table_name",
    "freeze",
    "parse_wallet_secret",
    "secret",
    "split_commas",
]

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A dict that refuses mutation, so a frozen config cannot be changed through its maps.

    A dict subclass (not a Mapping wrapper) so pydantic serializes it, and copy/pickle work.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("configuration maps are read-only")

    def __setitem__(self, key: K, value: V) -> NoReturn:
        self._refuse()

    def __delitem__(self, key: K) -> NoReturn:
        self._refuse()

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse()

    def clear(self) -> NoReturn:
        self._refuse()

    def pop(self, *args: Any) -> NoReturn:
        self._refuse()

    def popitem(self) -> NoReturn:
        self._refuse()

    def setdefault(self, *args: Any) -> NoReturn:
        self._refuse()

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict[K, V]:
        return FrozenDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


def freeze(value: Mapping[K, V]) -> FrozenDict[K, V]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def secret(default: Any = "", how: str = "mask") -> Any:
    """A field hidden from repr(); `how` tells Config.redacted() how to show it in logs."""
    return Field(default=default, repr=False, json_schema_extra={"redact": how})


# --- durations ---------------------------------------------------------------------


def _shown(value: object) -> str:
    return repr(format_duration(value) if isinstance(value, timedelta) else value)


def _non_negative(value: object) -> timedelta:
    parsed = parse_duration(value)
    if parsed < timedelta(0):
        raise ValueError(f"duration must not be negative, got {_shown(value)}")
    return parsed


def _positive(value: object) -> timedelta:
    parsed = parse_duration(value)
    if parsed <= timedelta(0):
        raise ValueError(f"duration must be greater than 0, got {_shown(value)}")
    return parsed


_DURATION_JSON = PlainSerializer(format_duration, return_type=str, when_used="json")
Duration = Annotated[timedelta, BeforeValidator(_non_negative), _DURATION_JSON]
PositiveDuration = Annotated[timedelta, BeforeValidator(_positive), _DURATION_JSON]


# --- strings, lists, maps ----------------------------------------------------------


def _scalar_to_str(value: object) -> object:
    # YAML turns `plan: 1` or `featured: true` into numbers/bools; metadata is text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _stringify_values(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _scalar_to_str(v) for k, v in value.items()}
    return value


StrMap = Annotated[
    Mapping[str, str], BeforeValidator(_stringify_values), AfterValidator(freeze)
]


def split_commas(value: object) -> object:
    # Env vars and some YAML give lists as "a, b"; empty entries are dropped.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return tuple(_scalar_to_str(v) for v in value)
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(split_commas)]


def _check_address(value: str) -> str:
    value = value.strip()
    if not is_solana_address(value):
        raise ValueError(f"invalid Solana address {value!r} (want base58 of 32 bytes)")
    return value


SolanaAddress = Annotated[str, AfterValidator(_check_address)]

_TABLE_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table_name(name: str) -> str:
    """Accept `table` or `schema.table` of identifier characters: names reach SQL text."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_TABLE_PART.match(p) for p in parts):
        raise ValueError(
            f"invalid table name {name!r} (letters, digits and _, at most 63 characters, "
            "optionally schema.table)"
        )
    return name


TableName = Annotated[str, AfterValidator(check_table_name)]


def _assume_utc(value: datetime) -> datetime:
    # YAML timestamps without an offset are taken as UTC (DESIGN §3: UTC everywhere).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


# --- server wallet secrets ---------------------------------------------------------


def parse_wallet_secret(value: str | bytes | Iterable[int]) -> bytes:
    """Decode a 64-byte Solana secret key given as base58, a JSON array, or raw bytes.

    The messages never include the key itself: they end up in logs.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("not a valid JSON array") from None
            return parse_wallet_secret(items) if isinstance(items, list) else _bad_array()
        try:
            raw = base58.b58decode(text)
        except ValueError:
            raise ValueError("neither base58 nor a JSON array of 64 numbers") from None
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        items = list(value)
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 255
                   for i in items):
            _bad_array()
        raw = bytes(items)
    if len(raw) != 64:
        raise ValueError(f"decodes to {len(raw)} bytes, want 64 (a Solana keypair)")
    try:
        Keypair.from_bytes(raw)
    except ValueError:
        raise ValueError("the public half does not match the secret half") from None
    return raw


def _bad_array() -> NoReturn:
    raise ValueError("JSON array must hold 64 integers from 0 to 255")


def _wallets(value: object) -> object:
    if isinstance(value, str | bytes | bytearray):
        value = [value]
    if not isinstance(value, list | tuple):
        return value
    keys = []
    for item in value:
        if not isinstance(item, str | bytes | bytearray | list | tuple):
            raise ValueError("a server wallet must be base58 text, a JSON array or bytes")
        keys.append(parse_wallet_secret(item))
    return tuple(keys)


def _wallets_json(keys: tuple[bytes, ...]) -> list[str]:
    # JSON dumps carry every value (redacted() is the view for logs); base58 reads back.
    return [base58.b58encode(k).decode() for k in keys]


ServerWallets = Annotated[
    tuple[bytes, ...],
    BeforeValidator(_wallets),
    PlainSerializer(_wallets_json, return_type=list[str], when_used="json"),
]


def check_ip_or_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"invalid IP address or CIDR {value!r}") from None


IpOrCidr = Annotated[str, AfterValidator(check_ip_or_cidr)]

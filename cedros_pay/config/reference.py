"""The configuration reference, generated from the models and the environment table.

    python -m cedros_pay.config.reference > docs/configuration.md

Every YAML key of `Config` (its type, default and the field's description) and every
environment variable `env.py` reads. tests/unit/test_config_reference.py regenerates it
and fails when docs/configuration.md differs, so a new key cannot go undocumented.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cedros_pay.config import fields
from cedros_pay.config.durations import format_duration
from cedros_pay.config.env import _SIMPLE
from cedros_pay.config.models import Config

__all__ = [
    "ENV_PATTERNS", "OTHER_ENV", "EnvPattern", "Key", "config_keys", "env_variables", "render",
]

COMMAND = "python -m cedros_pay.config.reference > docs/configuration.md"


@dataclass(frozen=True)
class EnvPattern:
    """A family of variables env.py reads by prefix or number, not by exact name."""

    name: str  # with <N> (1, 2, … up to the first gap) or <NAME>
    path: tuple[str, ...]
    meaning: str


ENV_PATTERNS: tuple[EnvPattern, ...] = (
    EnvPattern("X402_SERVER_WALLET_<N>", ("x402", "server_wallets"),
               "Server wallet secret key (base58 or a JSON byte array); "
               "`CEDROS_X402_SERVER_WALLET_<N>` is the same."),
    EnvPattern("CEDROS_X402_SERVER_WALLET_<N>", ("x402", "server_wallets"),
               "Same as `X402_SERVER_WALLET_<N>`."),
    EnvPattern("CEDROS_ADMIN_PUBLIC_KEY_<N>", ("admin", "public_keys"),
               "Appends an admin signer public key."),
    EnvPattern("CEDROS_ADMIN_API_KEY_<N>", ("admin", "api_keys"),
               "Appends an admin Bearer API key."),
    EnvPattern("CEDROS_API_KEY_<NAME>", ("api_key", "keys"),
               "Adds API key `<name>` (lower-cased) with the value as its tier."),
    EnvPattern("CALLBACK_HEADER_<NAME>", ("callbacks", "headers"),
               "Sets header `<Name>` on webhook deliveries (`_` becomes `-`)."),
    EnvPattern("MONITORING_HEADER_<NAME>", ("monitoring", "headers"),
               "Sets header `<Name>` on balance alerts (`_` becomes `-`)."),
)

# Read outside the configuration tree.
OTHER_ENV: Mapping[str, str] = fields.FrozenDict({
    "CEDROS_BUILD_TIME": "Build time that `cedros-pay version` prints (the image build sets it).",
})

# Placeholder for the key of a map of sections, by the map's field name.
_MAP_KEYS: Mapping[str, str] = fields.FrozenDict(
    {"resources": "<id>", "coupons": "<code>", "deprecated": "<version>"})

# (type, its name, the name of a list of them)
_ALIASES: tuple[tuple[Any, str, str], ...] = (
    (fields.PositiveDuration, "duration > 0", "durations > 0"),
    (fields.Duration, "duration", "durations"),
    (fields.StrList, "list of strings", "lists of strings"),
    (fields.StrMap, "map of strings", "maps of strings"),
    (fields.SolanaAddress, "Solana address", "Solana addresses"),
    (fields.TableName, "table name", "table names"),
    (fields.AwareDatetime, "timestamp", "timestamps"),
    (fields.ServerWallets, "list of secret keys", "lists of secret keys"),
    (fields.IpOrCidr, "IP or CIDR", "IPs or CIDRs"),
    (bool, "bool", "bools"),
    (int, "integer", "integers"),
    (float, "number", "numbers"),
    (str, "string", "strings"),
    (timedelta, "duration", "durations"),
    (datetime, "timestamp", "timestamps"),
    (Any, "value", "values"),
)


@dataclass(frozen=True)
class Key:
    """One documented YAML key."""

    path: str  # dotted YAML path, e.g. "x402.rpc_url" or "paywall.resources.<id>.active"
    type: str
    default: str
    description: str
    env: tuple[str, ...] = ()


def _type_name(hint: Any, plural: bool = False) -> str:
    for alias, one, many in _ALIASES:
        if hint == alias:
            return many if plural else one
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _type_name(args[0], plural)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" if v != "" else '`""`' for v in args)
    if origin in (Union, types.UnionType):
        named = [_type_name(a, plural) for a in args if a is not type(None)]
        return " or ".join(named) + (" or none" if type(None) in args else "")
    if origin is tuple:
        return f"list of {_type_name(args[0], plural=True)}"
    if origin is Mapping:
        return (f"map of {_type_name(args[0], plural=True)} to "
                f"{_type_name(args[1], plural=True)}")
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return "sections" if plural else "section"
    return getattr(hint, "__name__", str(hint))


def _constraints(info: FieldInfo) -> str:
    marks = []
    for item in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if isinstance(item, annotated_types.BaseMetadata) and value is not None:
                marks.append(f"{sign} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            marks.append(f"matching `{pattern}`")
    return f", {', '.join(marks)}" if marks else ""


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, bytes):
        return "(secret)"
    if isinstance(value, tuple | list):
        return f"`{json.dumps(list(value))}`"
    if isinstance(value, Mapping):
        return f"`{json.dumps(dict(value))}`" if value else "`{}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value}`"


def _models_in(hint: Any) -> tuple[type[BaseModel] | None, str | None]:
    """The section model a field holds directly, or as the values of a map."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _models_in(args[0])
    if origin in (Union, types.UnionType):
        for arg in args:
            model, _ = _models_in(arg)
            if model is not None:
                return model, None
    if origin is Mapping and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1], "map"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint, None
    return None, None


def _env_by_path() -> dict[tuple[str, ...], list[str]]:
    out: dict[tuple[str, ...], list[str]] = {}
    for name, (path, _convert) in _SIMPLE.items():
        out.setdefault(path, []).append(name)
    for pattern in ENV_PATTERNS:
        out.setdefault(pattern.path, []).append(pattern.name)
    return out


def _description(info: FieldInfo, model: type[BaseModel] | None) -> str:
    text = info.description or (model.__doc__ if model is not None else None) or ""
    return " ".join(text.split("\n\n")[0].split())


def config_keys(model: type[BaseModel] = Config, prefix: tuple[str, ...] = (),
         defaults: BaseModel | None = None) -> Iterator[Key]:
    """Every key under `model`, depth first in declaration order; sections included.

    `defaults` is the section's default instance, whose values win over the field
    defaults of its model (a breaker's or a table name's default differs per entry).
    """
    hints = get_type_hints(model, include_extras=True)
    env = _env_by_path()
    for name, info in model.model_fields.items():
        yaml_key = info.alias or name
        path = (*prefix, yaml_key)
        hint = hints[name]
        default = (getattr(defaults, name) if defaults is not None
                   else info.get_default(call_default_factory=True))
        inner, kind = _models_in(hint)
        if inner is None:
            type_name, shown = _type_name(hint), _default(default)
        elif kind == "map":
            placeholder = _MAP_KEYS.get(yaml_key, "<key>")
            type_name, shown = f"map of `{placeholder}` to sections", "`{}`"
        else:
            type_name, shown = "section", ""
        yield Key(".".join(path), type_name + _constraints(info), shown,
                  _description(info, inner if kind is None else None),
                  tuple(env.get(path, ())))
        if inner is not None and kind == "map":
            yield from config_keys(inner, (*path, _MAP_KEYS.get(yaml_key, "<key>")))
        elif inner is not None:
            section = default if isinstance(default, BaseModel) else None
            yield from config_keys(inner, path, section)


def env_variables() -> dict[str, str]:
    """Variable (or pattern) -> the dotted YAML key it sets; plus OTHER_ENV's (key "")."""
    out = {name: ".".join(path) for name, (path, _convert) in _SIMPLE.items()}
    out.update({p.name: ".".join(p.path) for p in ENV_PATTERNS})
    out.update(dict.fromkeys(OTHER_ENV, ""))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


_INTRO = f"""\
# Configuration reference

<!-- Generated from cedros_pay/config/models.py and env.py; do not edit by hand.
     Regenerate: {COMMAND} -->

Cedros Pay reads, lowest priority first: the defaults below, the YAML file given by
`--config`, then environment variables (a `.env` file in the working directory counts as
environment; variables already set win over it). An empty variable counts as unset.
Problems are reported all at once, one line each, naming the key or variable.

- **Durations** are Go-style strings: `500ms`, `15s`, `5m`, `1h30m`, `2160h`.
- **Lists** may be given to a variable as comma-separated text
  (`CORS_ALLOWED_ORIGINS=https://a.example,https://b.example`).
- **Numbered variables** (`X402_SERVER_WALLET_<N>`, …) are read from 1 up to the first gap.
- **Secrets** (keys, database URLs) never appear in logs or error messages.
- Some defaults follow other sections: with `storage.backend: postgres`, products, coupons,
  subscriptions and webhooks use the same database; with `redis.url` set, rate limits and
  idempotency keys live in Redis, shared by every instance.

Sections: {{sections}}.
"""


def render() -> str:
    """The whole of docs/configuration.md."""
    all_keys = list(config_keys())
    sections = [k for k in all_keys if "." not in k.path]
    out = [_INTRO.format(sections=", ".join(f"[`{s.path}`](#{s.path.replace('_', '-')})"
                                            for s in sections))]
    for section in sections:
        out.append(f"\n## {section.path}\n\n{section.description}\n")
        out.append("\n| Key | Type | Default | Environment | Meaning |\n|---|---|---|---|---|\n")
        for key in all_keys:
            if not key.path.startswith(section.path + "."):
                continue
            env = "<br>".join(f"`{name}`" for name in key.env)
            out.append(f"| `{key.path}` | {_cell(key.type)} | {_cell(key.default)} | {env} "
                       f"| {_cell(key.description)} |\n")
    out.append("\n## Environment variables\n\n| Variable | Sets | Meaning |\n|---|---|---|\n")
    by_path = {k.path: k for k in all_keys}
    patterns = {p.name: p.meaning for p in ENV_PATTERNS}
    for name, path in sorted(env_variables().items()):
        meaning = patterns.get(name) or OTHER_ENV.get(name) or by_path[path].description
        where = f"`{path}`" if path else "—"
        out.append(f"| `{name}` | {where} | {_cell(meaning)} |\n")
    return "".join(out)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()

"""`load_config`: .env, then the YAML file, then environment overrides, then defaults.

Every problem found is reported at once in a `ConfigError`; pydantic and YAML errors are
turned into "<key>: <what is wrong>" lines instead of escaping raw. A malformed value is
dropped after it is reported so the remaining checks (spec 17) still run on the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cedros_pay.config import models
from cedros_pay.config.env import apply_env
from cedros_pay.config.models import Config
from cedros_pay.config.validate import find_problems, find_warnings

__all__ = ["ConfigError", "load_config", "validate_config"]

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The configuration cannot be used; `problems` has one line per problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"invalid configuration ({count} problem{'s' if count != 1 else ''}):\n{lines}"


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | None = ".env",
    *,
    validate: bool = True,
) -> Config:
    """Build the validated config, or raise ConfigError listing every problem.

    With `environ` given, only it is read (no process environment, no .env file): tests
    and embedders stay hermetic. Otherwise `.env` fills variables the process lacks; it
    is read, not exported, so os.environ is left untouched.

    `validate=False` skips the startup rules (spec 17: payment address, mint, catalog...)
    but still rejects malformed values: for commands such as `migrate` that need only a
    part of the configuration.
    """
    env = _environment(environ, dotenv_path)
    raw = _read_yaml(Path(path)) if path is not None else {}
    problems: list[str] = []
    _apply_yaml_aliases(raw, problems)
    applied = apply_env(raw, env)
    problems += applied.problems
    cfg, reported = _build(raw, applied.sources, problems)
    warnings = list(applied.warnings)
    if cfg is not None and validate:
        problems += [p for p in find_problems(cfg) if not _covered(p, reported)]
        warnings += find_warnings(cfg)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    for warning in warnings:
        log.warning("config: %s", warning)
    assert cfg is not None
    return cfg


def validate_config(cfg: Config) -> Config:
    """Run the startup rules on a Config built in code; raise ConfigError if any fails."""
    problems = find_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _environment(environ: Mapping[str, str] | None, dotenv_path: str | None) -> dict[str, str]:
    if environ is not None:
        return dict(environ)
    merged: dict[str, str] = {}
    if dotenv_path and os.path.isfile(dotenv_path):
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ)  # already-set variables win over .env
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    # An unreadable file stops here: checking defaults instead would only add noise.
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"config file {path}: not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"config file {path}: cannot be read ({exc})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"config file {path}: invalid YAML{where}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"config file {path}: invalid YAML: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"config file {path}: the top level must be a mapping of sections, "
             f"got {type(data).__name__}"])
    cleaned = _drop_nulls(data)
    assert isinstance(cleaned, dict)
    return cleaned


def _drop_nulls(value: Any) -> Any:
    """`key:` with no value means "use the default", as in the reference's YAML decoding."""
    if isinstance(value, dict):
        return {str(k): _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _move(raw: MutableMapping[str, Any], source: tuple[str, str], target: tuple[str, str],
          problems: list[str]) -> None:
    section = raw.get(source[0])
    if not isinstance(section, MutableMapping) or source[1] not in section:
        return
    value = section.pop(source[1])
    dest = raw.setdefault(target[0], {})
    if not isinstance(dest, MutableMapping):
        return
    if target[1] in dest and dest[target[1]] != value:
        problems.append(f"{source[0]}.{source[1]} and {target[0]}.{target[1]} disagree; "
                        "set only one")
    dest.setdefault(target[1], value)


def _apply_yaml_aliases(raw: MutableMapping[str, Any], problems: list[str]) -> None:
    """Spec 23's `products:` / `coupons.backend` spellings, and secrets kept out of files."""
    _move(raw, ("products", "backend"), ("paywall", "product_source"), problems)
    _move(raw, ("products", "cache_ttl"), ("paywall", "product_cache_ttl"), problems)
    _move(raw, ("coupons", "backend"), ("coupons", "coupon_source"), problems)
    products = raw.pop("products", None)
    if isinstance(products, Mapping):
        problems += [f"products.{key}: unknown key" for key in products]
    elif products is not None:
        problems.append("products: must be a mapping with backend and cache_ttl")
    _normalize_shapes(raw)
    x402 = raw.get("x402")
    if isinstance(x402, MutableMapping):
        for key in ("server_wallets", "server_wallet_keys"):
            if x402.pop(key, None) is not None:
                problems.append(f"x402.{key}: server wallet keys are read only from the "
                                "X402_SERVER_WALLET_N environment variables, not the file")


def _normalize_shapes(raw: MutableMapping[str, Any]) -> None:
    """Bring list and flat forms to the keyed/nested form up front, so that an error in one
    product prunes that product, not the whole list. A shape the helpers refuse is left
    for model validation to report."""
    for section, key, convert in (
        ("paywall", "resources", models.resources_by_id),
        ("coupons", "coupons", models.coupons_by_code),
    ):
        node = raw.get(section)
        if isinstance(node, MutableMapping) and key in node:
            with contextlib.suppress(ValueError):
                node[key] = convert(node[key])
    if isinstance(raw.get("rate_limit"), Mapping):
        with contextlib.suppress(ValueError):
            raw["rate_limit"] = models.nest_rate_limits(raw["rate_limit"])


# --- pydantic errors -> problem lines ----------------------------------------------


def _secret_field_names() -> frozenset[str]:
    names: set[str] = set()
    for obj in vars(models).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            names.update(n for n, f in obj.model_fields.items() if f.repr is False)
    return frozenset(names)


_SECRET_FIELDS = _secret_field_names()


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if loc[index - 2: index] == ("api_key", "keys"):
            part = f"{part[:4]}***"  # the map key is the API key itself
        text += f".{part}" if text else part
    return text


def _describe(err: ErrorDetails) -> str:
    loc = tuple(err["loc"])
    path = _format_loc(loc)
    kind = err["type"]
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    ctx = err.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])  # our validators' own wording, value included
    else:
        message = err["msg"][:1].lower() + err["msg"][1:]
        value = err.get("input")
        secret = any(part in _SECRET_FIELDS for part in loc if isinstance(part, str))
        if not secret and isinstance(value, str | int | float | bool):
            message += f" ({value!r})" if " got " in message else f", got {value!r}"
    return f"{path}: {message}" if path else message


def _prune(raw: MutableMapping[str, Any], loc: tuple[int | str, ...], kind: str) -> bool:
    """Drop the value an error is about (or its container) so defaults take its place."""
    parents: list[tuple[MutableMapping[str, Any], str]] = []
    node: Any = raw
    for part in loc:
        if isinstance(node, MutableMapping) and isinstance(part, str) and part in node:
            parents.append((node, part))
            node = node[part]
        else:
            break
    if kind == "missing" and len(parents) == len(loc):
        parents.pop()
    if not parents:
        return False
    container, key = parents[-1]
    del container[key]
    return True


def _build(
    raw: dict[str, Any], sources: Mapping[str, str], problems: list[str]
) -> tuple[Config | None, list[str]]:
    """Validate, reporting and pruning bad values until the rest validates."""
    reported: list[str] = []
    for _ in range(50):
        try:
            return Config.model_validate(raw), reported
        except ValidationError as exc:
            pruned = False
            for err in exc.errors():
                loc = tuple(err["loc"])
                path = _format_loc(loc)
                # A value dropped in an earlier round can leave its field "missing" now.
                if not _covered(path, reported):
                    line = _describe(err)
                    source = sources.get(path)
                    problems.append(f"{line} (from {source})" if source else line)
                    reported.append(path)
                pruned = _prune(raw, loc, err["type"]) or pruned
            if not pruned:
                break
    return None, reported


def _covered(problem: str, reported: Sequence[str]) -> bool:
    """True when `problem` is about a key already reported as malformed, or about what
    contains it (dropping a bad value can make its parent look incomplete)."""
    key = problem.split(" ", 1)[0].rstrip(":")
    for path in reported:
        if not path:
            continue
        if key == path or any(
                a.startswith(b) and a[len(b)] in ".[" for a, b in ((key, path), (path, key))
                if len(a) > len(b)):
            return True
    return False

"""Environment variable overrides (spec 09), applied to the raw YAML tree before typing.

Values are converted here so a bad one is reported under the variable's own name
("CALLBACK_TIMEOUT: invalid duration 'soon'"). An empty variable counts as unset, as in
the reference server. Secrets are never echoed in messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from cedros_pay.config.durations import parse_duration
from cedros_pay.config.fields import parse_wallet_secret
from cedros_pay.config.tokens import is_solana_address

__all__ = ["EnvResult", "apply_env"]

# How many numbered variables (wallets, admin keys) are read at most (spec 09: 100).
MAX_NUMBERED = 100

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (want true or false)")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None


def _str(text: str) -> str:
    return text


def _duration(text: str) -> Any:
    return parse_duration(text)


# variable -> (path in the YAML tree, converter). Spec 09's table, plus the storage
# archival/cleanup variables that specs 08 and 11 name.
_SIMPLE: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "CEDROS_SERVER_ADDRESS": (("server", "address"), _str),
    "CEDROS_ROUTE_PREFIX": (("server", "route_prefix"), _str),
    "CEDROS_ADMIN_METRICS_API_KEY": (("server", "admin_metrics_api_key"), _str),
    "CORS_ALLOWED_ORIGINS": (("server", "cors_allowed_origins"), _str),
    "CEDROS_STRIPE_SECRET_KEY": (("stripe", "secret_key"), _str),
    "CEDROS_STRIPE_WEBHOOK_SECRET": (("stripe", "webhook_secret"), _str),
    "CEDROS_STRIPE_PUBLISHABLE_KEY": (("stripe", "publishable_key"), _str),
    "CEDROS_STRIPE_SUCCESS_URL": (("stripe", "success_url"), _str),
    "CEDROS_STRIPE_CANCEL_URL": (("stripe", "cancel_url"), _str),
    "CEDROS_STRIPE_TAX_RATE_ID": (("stripe", "tax_rate_id"), _str),
    "CEDROS_STRIPE_MODE": (("stripe", "mode"), _str),
    "CEDROS_STRIPE_API_BASE": (("stripe", "api_base"), _str),
    "CEDROS_X402_PAYMENT_ADDRESS": (("x402", "payment_address"), _str),
    "CEDROS_X402_TOKEN_MINT": (("x402", "token_mint"), _str),
    "CEDROS_X402_NETWORK": (("x402", "network"), _str),
    "CEDROS_X402_RPC_URL": (("x402", "rpc_url"), _str),
    "CEDROS_X402_WS_URL": (("x402", "ws_url"), _str),
    "CEDROS_X402_MEMO_PREFIX": (("x402", "memo_prefix"), _str),
    "CEDROS_X402_SKIP_PREFLIGHT": (("x402", "skip_preflight"), _bool),
    "CEDROS_X402_COMMITMENT": (("x402", "commitment"), _str),
    "CEDROS_X402_GASLESS_ENABLED": (("x402", "gasless_enabled"), _bool),
    "CEDROS_X402_AUTO_CREATE_TOKEN_ACCOUNT": (("x402", "auto_create_token_account"), _bool),
    "POSTGRES_URL": (("storage", "postgres_url"), _str),
    "MONGODB_URL": (("storage", "mongodb_url"), _str),
    "MONGODB_DATABASE": (("storage", "mongodb_database"), _str),
    "CEDROS_STORAGE_CLEANUP_INTERVAL": (("storage", "cleanup_interval"), _duration),
    "CEDROS_STORAGE_ARCHIVAL_ENABLED": (("storage", "archival", "enabled"), _bool),
    "CEDROS_STORAGE_ARCHIVAL_RETENTION_PERIOD": (
        ("storage", "archival", "retention_period"), _duration),
    "CEDROS_STORAGE_ARCHIVAL_RUN_INTERVAL": (("storage", "archival", "run_interval"), _duration),
    "CALLBACK_PAYMENT_SUCCESS_URL": (("callbacks", "payment_success_url"), _str),
    "CALLBACK_TIMEOUT": (("callbacks", "timeout"), _duration),
    "CALLBACK_HMAC_SECRET": (("callbacks", "hmac_secret"), _str),  # issue 12
    "CEDROS_PAYWALL_QUOTE_TTL": (("paywall", "quote_ttl"), _duration),
    "CEDROS_PAYWALL_PRODUCT_SOURCE": (("paywall", "product_source"), _str),
    "CEDROS_PAYWALL_PRODUCT_CACHE_TTL": (("paywall", "product_cache_ttl"), _duration),
    "CEDROS_PAYWALL_POSTGRES_URL": (("paywall", "postgres_url"), _str),
    "CEDROS_PAYWALL_MONGODB_URL": (("paywall", "mongodb_url"), _str),
    "CEDROS_PAYWALL_MONGODB_DATABASE": (("paywall", "mongodb_database"), _str),
    "CEDROS_PAYWALL_MONGODB_COLLECTION": (("paywall", "mongodb_collection"), _str),
    "COUPON_SOURCE": (("coupons", "coupon_source"), _str),
    "COUPON_CACHE_TTL": (("coupons", "cache_ttl"), _duration),
    "COUPON_POSTGRES_URL": (("coupons", "postgres_url"), _str),
    "COUPON_MONGODB_URL": (("coupons", "mongodb_url"), _str),
    "COUPON_MONGODB_DATABASE": (("coupons", "mongodb_database"), _str),
    "COUPON_MONGODB_COLLECTION": (("coupons", "mongodb_collection"), _str),
    "CEDROS_API_KEY_ENABLED": (("api_key", "enabled"), _bool),
    "MONITORING_LOW_BALANCE_ALERT_URL": (("monitoring", "low_balance_alert_url"), _str),
    "MONITORING_LOW_BALANCE_THRESHOLD": (("monitoring", "low_balance_threshold"), _float),
    "MONITORING_CHECK_INTERVAL": (("monitoring", "check_interval"), _duration),
    "MONITORING_TIMEOUT": (("monitoring", "timeout"), _duration),
    # Shared state for several instances (issue 6): not in spec 09, named in its style.
    "CEDROS_REDIS_URL": (("redis", "url"), _str),
    "CEDROS_RATE_LIMIT_BACKEND": (("rate_limit", "backend"), _str),
    "CEDROS_IDEMPOTENCY_BACKEND": (("idempotency", "backend"), _str),
    "CEDROS_TRUSTED_PROXIES": (("server", "trusted_proxies"), _str),
    "CEDROS_TENANCY_JWT_SECRET": (("tenancy", "jwt_secret"), _str),
    "CEDROS_TENANCY_JWT_AUDIENCE": (("tenancy", "jwt_audience"), _str),
    "CEDROS_TENANCY_JWT_ISSUER": (("tenancy", "jwt_issuer"), _str),
}

# Variables whose value must not appear in a problem line.
_SECRET_VARS = {
    "CEDROS_ADMIN_METRICS_API_KEY", "CEDROS_STRIPE_SECRET_KEY", "CEDROS_STRIPE_WEBHOOK_SECRET",
    "POSTGRES_URL", "MONGODB_URL", "CEDROS_PAYWALL_POSTGRES_URL", "CEDROS_PAYWALL_MONGODB_URL",
    "COUPON_POSTGRES_URL", "COUPON_MONGODB_URL", "MONITORING_LOW_BALANCE_ALERT_URL",
    "CEDROS_REDIS_URL", "CEDROS_TENANCY_JWT_SECRET",
}

_API_KEY_PREFIX = "CEDROS_API_KEY_"


@dataclass
class EnvResult:
    """What applying the environment found besides the values it set."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # "x402.network" -> "CEDROS_X402_NETWORK", so later errors can name the variable.
    sources: dict[str, str] = field(default_factory=dict)


def apply_env(raw: MutableMapping[str, Any], env: Mapping[str, str]) -> EnvResult:
    """Overlay `env` on the raw config tree in place (env wins over YAML, spec 09)."""
    result = EnvResult()
    env = {k: v.strip() for k, v in env.items() if v is not None and v.strip()}
    if env.get("POSTGRES_URL") or env.get("MONGODB_URL"):
        _note_explicit_backend(raw, env, result)
    for name, (path, convert) in _SIMPLE.items():
        if name not in env:
            continue
        try:
            _set(raw, path, convert(env[name]))
            result.sources[".".join(path)] = name
        except ValueError as exc:
            message = "invalid value" if name in _SECRET_VARS else str(exc)
            result.problems.append(f"{name}: {message}")
    _apply_headers(raw, env, "CALLBACK_HEADER_", ("callbacks", "headers"))
    _apply_headers(raw, env, "MONITORING_HEADER_", ("monitoring", "headers"))
    _apply_api_keys(raw, env, result)
    _apply_server_wallets(raw, env, result)
    _apply_admin_keys(raw, env, result)
    return result


def _note_explicit_backend(raw: Mapping[str, Any], env: Mapping[str, str], out: EnvResult) -> None:
    # The URL selects the backend only when none was chosen (spec 09 inference).
    storage = raw.get("storage")
    backend = storage.get("backend") if isinstance(storage, Mapping) else None
    if isinstance(backend, str) and backend.strip().lower() in ("file", "sqlite", "memory"):
        names = [n for n in ("POSTGRES_URL", "MONGODB_URL") if env.get(n)]
        out.warnings.append(
            f"{' and '.join(names)} set but storage.backend is {backend.strip()!r}; "
            "the URL is unused"
        )


def _set(raw: MutableMapping[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, MutableMapping):
            child = dict(child) if isinstance(child, Mapping) else {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _get_map(raw: MutableMapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = raw
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    current = dict(node) if isinstance(node, Mapping) else {}
    _set(raw, path, current)
    return current


def _header_name(suffix: str) -> str:
    """CALLBACK_HEADER_X_API_KEY -> "X-Api-Key" (Go's canonical MIME header form)."""
    return "-".join(word[:1].upper() + word[1:].lower() for word in suffix.split("_"))


def _apply_headers(
    raw: MutableMapping[str, Any], env: Mapping[str, str], prefix: str, path: tuple[str, ...]
) -> None:
    found = {_header_name(k[len(prefix):]): v for k, v in sorted(env.items())
             if k.startswith(prefix) and len(k) > len(prefix)}
    if not found:
        return
    headers = _get_map(raw, path)
    for name, value in found.items():
        # Header names are case-insensitive: the env value replaces a YAML spelling.
        for existing in [h for h in headers if str(h).lower() == name.lower()]:
            del headers[existing]
        headers[name] = value


def _apply_api_keys(raw: MutableMapping[str, Any], env: Mapping[str, str], out: EnvResult) -> None:
    """CEDROS_API_KEY_<NAME>=<tier>: the key is NAME in lower case (reference behaviour)."""
    found = {k[len(_API_KEY_PREFIX):].lower(): v.lower() for k, v in sorted(env.items())
             if k.startswith(_API_KEY_PREFIX) and k != "CEDROS_API_KEY_ENABLED"
             and len(k) > len(_API_KEY_PREFIX)}
    if found:
        keys = _get_map(raw, ("api_key", "keys"))
        keys.update(found)


def _numbered(env: Mapping[str, str], *prefixes: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Values of PREFIX1, PREFIX2, ... up to the first gap, and the names skipped after it.

    With several prefixes (aliases), the first one set for a number wins.
    """
    values: list[tuple[str, str]] = []
    index = 1
    while index <= MAX_NUMBERED:
        hit = next(((p + str(index), env[p + str(index)]) for p in prefixes
                    if p + str(index) in env), None)
        if hit is None:
            break
        values.append(hit)
        index += 1
    pattern = re.compile("^(?:" + "|".join(map(re.escape, prefixes)) + r")(\d+)$")
    later = sorted((int(m.group(1)), name) for name in env if (m := pattern.match(name)))
    return values, [name for number, name in later if number >= index]


def _gap_warning(skipped: list[str], first_missing: int, stem: str) -> list[str]:
    if not skipped:
        return []
    return [f"{', '.join(skipped)} ignored: {stem}N are read from 1 up to the first "
            f"missing number ({stem}{first_missing} is not set)"]


def _apply_server_wallets(
    raw: MutableMapping[str, Any], env: Mapping[str, str], out: EnvResult
) -> None:
    """CEDROS_X402_SERVER_WALLET_N or X402_SERVER_WALLET_N (DESIGN §7), 1.. until a gap."""
    prefixes = ("CEDROS_X402_SERVER_WALLET_", "X402_SERVER_WALLET_")
    found, skipped = _numbered(env, *prefixes)
    out.warnings += _gap_warning(skipped, len(found) + 1, "X402_SERVER_WALLET_")
    if not found:
        return
    wallets: list[bytes] = []
    for index, (name, value) in enumerate(found, start=1):
        other = f"X402_SERVER_WALLET_{index}"
        if name != other and env.get(other, value) != value:
            out.problems.append(f"{name} and {other} are both set, to different keys")
        try:
            key = parse_wallet_secret(value)
        except ValueError as exc:
            out.problems.append(f"{name}: invalid server wallet key: {exc}")
            continue
        if key in wallets:
            out.problems.append(f"{name}: the same key as an earlier server wallet")
            continue
        wallets.append(key)
    _set(raw, ("x402", "server_wallets"), wallets)


def _apply_admin_keys(
    raw: MutableMapping[str, Any], env: Mapping[str, str], out: EnvResult
) -> None:
    """CEDROS_ADMIN_PUBLIC_KEY_N and CEDROS_ADMIN_API_KEY_N append to the YAML lists."""
    for stem, key, check in (
        ("CEDROS_ADMIN_PUBLIC_KEY_", "public_keys", True),
        ("CEDROS_ADMIN_API_KEY_", "api_keys", False),
    ):
        found, skipped = _numbered(env, stem)
        out.warnings += _gap_warning(skipped, len(found) + 1, stem)
        if not found:
            continue
        admin = _get_map(raw, ("admin",))
        current = admin.get(key)
        merged = list(current) if isinstance(current, list | tuple) else (
            [current] if isinstance(current, str) else [])
        for name, value in found:
            if check and not is_solana_address(value):
                out.problems.append(
                    f"{name}: invalid Solana address {value!r} (want base58 of 32 bytes)")
            elif value not in merged:
                merged.append(value)
        admin[key] = merged

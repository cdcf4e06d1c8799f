"""Startup rules that span fields (spec 17 "Configuration Validation", spec 09, spec 13).

Each rule adds one line starting with the key it is about, so the loader can drop lines
about keys it already reported as malformed. Spec 17's own messages are used verbatim
where it gives one. Rules never echo a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from cedros_pay.config.models import Config, ResourceConfig, mask_url
from cedros_pay.config.tokens import (
    DEV_NETWORKS,
    STABLECOINS,
    is_solana_address,
    stablecoin_for_mint,
    supported_mints,
)
from cedros_pay.core.catalog_rules import coupon_problems, has_price
from cedros_pay.core.ids import is_product_id

__all__ = ["find_problems", "find_warnings"]

# Spec 22 wallet health: below CRITICAL a wallet is disabled, below HEALTHY it is warned.
CRITICAL_BALANCE_SOL = 0.001
MIN_HEALTHY_BALANCE_SOL = 0.005

_SYMBOLS = tuple(dict.fromkeys(c.symbol for c in STABLECOINS))


def find_problems(cfg: Config) -> list[str]:
    """Every rule violation in `cfg`, one line each (empty when the config is usable)."""
    problems: list[str] = []
    for rule in _RULES:
        problems += rule(cfg)
    return problems


def _shown_url(value: str) -> str:
    """A rejected URL as an error may show it: where it points, never its password, path
    or query (an RPC or webhook URL often carries an API key there)."""
    if urlsplit(value).netloc:
        return mask_url(value)
    return "***" if "@" in value or "?" in value else value


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _stripe(cfg: Config) -> list[str]:
    s = cfg.stripe
    out = []
    if s.publishable_key and not s.secret_key:
        out.append("stripe.secret_key is required when publishable key is set")
    live_key = s.secret_key.startswith(("sk_live_", "rk_live_"))
    test_key = s.secret_key.startswith(("sk_test_", "rk_test_"))
    if (s.mode == "test" and live_key) or (s.mode == "live" and test_key):
        kind = "live" if live_key else "test"
        out.append(f"stripe.mode is {s.mode!r} but stripe.secret_key is a {kind} key")
    for key, url in (("success_url", s.success_url), ("cancel_url", s.cancel_url),
                     ("api_base", s.api_base)):
        if url and not _is_http_url(url):
            out.append(f"stripe.{key}: must be an http(s) URL, got {_shown_url(url)!r}")
    return out


def _x402_address_and_mint(cfg: Config) -> list[str]:
    x = cfg.x402
    out = []
    if not x.payment_address:
        out.append("x402.payment_address is required")
    elif not is_solana_address(x.payment_address):
        out.append(
            f"x402.payment_address: invalid Solana address {x.payment_address!r} "
            "(want base58 of 32 bytes)"
        )
    if not x.token_mint:
        out.append("x402.token_mint is required")
        return out
    coin = stablecoin_for_mint(x.token_mint, x.network)
    if coin is None:
        known = ", ".join(f"{c.symbol} {c.mint}" for c in supported_mints(x.network))
        hint = "" if x.network in DEV_NETWORKS else " (devnet USDC only on devnet/testnet)"
        out.append(
            f"x402.token_mint validation failed: {x.token_mint!r} is not a supported "
            f"stablecoin mint on {x.network}; use one of: {known}{hint}"
        )
    elif x.token_decimals != coin.decimals:
        out.append(
            f"x402.token_decimals: {coin.symbol} has {coin.decimals} decimals, "
            f"got {x.token_decimals}"
        )
    return out


def _x402_network(cfg: Config) -> list[str]:
    x = cfg.x402
    out = []
    if not x.rpc_url:
        out.append("x402.rpc_url is required")
    elif not _is_http_url(x.rpc_url):
        out.append(f"x402.rpc_url: must be an http(s) URL, got {_shown_url(x.rpc_url)!r}")
    if x.ws_url and urlsplit(x.ws_url).scheme not in ("ws", "wss"):
        out.append(f"x402.ws_url: must be a ws:// or wss:// URL, got {_shown_url(x.ws_url)!r}")
    unknown = [t for t in x.allowed_tokens if t not in _SYMBOLS]
    if unknown:
        out.append(
            f"x402.allowed_tokens: unknown token symbol(s) {', '.join(unknown)} "
            f"(want {', '.join(_SYMBOLS)})"
        )
    if (x.gasless_enabled or x.auto_create_token_account) and not x.server_wallets:
        out.append(
            "x402.server_wallet_keys required when gasless_enabled or "
            "auto_create_token_account is enabled (set X402_SERVER_WALLET_1, "
            "X402_SERVER_WALLET_2, ...)"
        )
    return out


def _resource(cfg: Config, key: str, r: ResourceConfig) -> list[str]:
    where = f"paywall.resources.{key}"
    out = []
    if not is_product_id(key):
        out.append(f"{where}: product id must be 1 to 255 characters long")
    if r.resource_id != key:
        out.append(f"{where}: resource_id {r.resource_id!r} differs from its key {key!r}")
    if not has_price(r.fiat_amount_cents, r.crypto_atomic_amount, r.stripe_price_id):
        out.append(f"{where}: must define fiat_amount_cents, crypto_atomic_amount, "
                   "or stripe_price_id")
    if len(r.fiat_currency) != 3 or not r.fiat_currency.isalpha():
        out.append(f"{where}.fiat_currency: want a 3-letter ISO code, got {r.fiat_currency!r}")
    if r.crypto_token and r.crypto_token.upper() not in cfg.x402.allowed_tokens:
        out.append(f"{where}.crypto_token: {r.crypto_token!r} is not in x402.allowed_tokens")
    if r.crypto_account and not is_solana_address(r.crypto_account):
        out.append(f"{where}.crypto_account: invalid Solana address {r.crypto_account!r}")
    return out


def _paywall(cfg: Config) -> list[str]:
    p = cfg.paywall
    out = []
    if p.product_source == "yaml" and not p.resources:
        out.append(
            "paywall.resources must define at least one resource when product_source is 'yaml'"
        )
    for key, resource in p.resources.items():
        out += _resource(cfg, key, resource)
    return out


def _coupons(cfg: Config) -> list[str]:
    out = []
    for key, c in cfg.coupons.coupons.items():
        where = f"coupons.coupons.{key}"
        if c.code != key:
            out.append(f"{where}: code {c.code!r} differs from its key {key!r}")
        out += [f"{where}.{p.field}: {p.message}" for p in coupon_problems(
            discount_type=c.discount_type, discount_value=c.discount_value, scope=c.scope,
            product_ids=c.product_ids, starts_at=c.starts_at, expires_at=c.expires_at)]
    return out


def _url_scheme_ok(url: str, schemes: tuple[str, ...]) -> bool:
    return urlsplit(url).scheme in schemes


_PG = ("postgres", "postgresql", "postgresql+asyncpg")
_MONGO = ("mongodb", "mongodb+srv")


def _databases(cfg: Config) -> list[str]:
    """Each backend or source that needs a server needs its URL (and Mongo a database)."""
    out = []
    s = cfg.storage
    needs: list[tuple[str, str, str, str, str]] = []  # (what, value, key, url, database)
    if s.backend == "postgres":
        needs.append(("storage.backend is 'postgres'", "postgres", "storage", s.postgres_url, ""))
    if s.backend == "mongodb":
        needs.append(("storage.backend is 'mongodb'", "mongodb", "storage", s.mongodb_url,
                      s.mongodb_database))
    if s.backend == "sqlite" and not s.file_path.strip():
        out.append("storage.file_path is required when storage.backend is 'sqlite'")
    for section, source, label in (
        (cfg.paywall, cfg.paywall.product_source, "paywall.product_source"),
        (cfg.coupons, cfg.coupons.coupon_source, "coupons.coupon_source"),
    ):
        name = label.split(".")[0]
        what = f"{label} is {source!r}"
        if source == s.backend:
            continue  # its URLs come from storage, whose own check covers them
        if source == "postgres":
            needs.append((what, "postgres", name, section.postgres_url, ""))
        elif source == "mongodb":
            needs.append((what, "mongodb", name, section.mongodb_url, section.mongodb_database))
        elif source == "sqlite" and s.backend != "sqlite":
            out.append(f"{label}: 'sqlite' needs storage.backend 'sqlite', "
                       f"not {s.backend!r}")
    subs = cfg.subscriptions
    if subs.enabled and subs.backend == "postgres" and (
            s.backend != "postgres" or subs.postgres_url != s.postgres_url):
        needs.append(("subscriptions.backend is 'postgres'", "postgres", "subscriptions",
                      subs.postgres_url, ""))
    if subs.backend in ("sqlite", "mongodb") and subs.backend != s.backend:
        out.append(f"subscriptions.backend: {subs.backend!r} needs storage.backend "
                   f"{subs.backend!r}, not {s.backend!r}")
    for what, kind, key, url, database in needs:
        url_key = f"{key}.{kind}_url"
        if not url:
            out.append(f"{url_key} is required when {what}")
        elif not _url_scheme_ok(url, _PG if kind == "postgres" else _MONGO):
            schemes = " or ".join(f"{p}://" for p in (_PG[:2] if kind == "postgres" else _MONGO))
            out.append(f"{url_key}: must be a {schemes} URL")
        if kind == "mongodb" and not database:
            out.append(f"{key}.mongodb_database is required when {what}")
    for key, pool in (("storage", s.postgres_pool), ("paywall", cfg.paywall.postgres_pool),
                      ("coupons", cfg.coupons.postgres_pool)):
        if pool.max_idle_conns > pool.max_open_conns:
            out.append(f"{key}.postgres_pool.max_idle_conns ({pool.max_idle_conns}) exceeds "
                       f"max_open_conns ({pool.max_open_conns})")
    return list(dict.fromkeys(out))


def _rate_limits(cfg: Config) -> list[str]:
    rl = cfg.rate_limit
    return [
        f"rate_limit.{name}.limit must be greater than 0 when enabled"
        for name, rule in (("global", rl.global_), ("per_wallet", rl.per_wallet),
                           ("per_ip", rl.per_ip))
        if rule.enabled and rule.limit <= 0
    ]


def _callbacks_and_monitoring(cfg: Config) -> list[str]:
    c, m = cfg.callbacks, cfg.monitoring
    out = []
    if c.payment_success_url and not _is_http_url(c.payment_success_url):
        out.append(f"callbacks.payment_success_url: must be an http(s) URL, "
                   f"got {_shown_url(c.payment_success_url)!r}")
    if c.retry.initial_interval > c.retry.max_interval:
        out.append("callbacks.retry.initial_interval: must not exceed retry.max_interval")
    if c.dlq_enabled and not c.dlq_path.strip():
        out.append("callbacks.dlq_path is required when dlq_enabled is true")
    if m.low_balance_alert_url and not _is_http_url(m.low_balance_alert_url):
        out.append("monitoring.low_balance_alert_url: must be an http(s) URL")
    if (cfg.x402.gasless_enabled and m.low_balance_alert_url
            and m.low_balance_threshold < CRITICAL_BALANCE_SOL):
        out.append(
            f"monitoring.low_balance_threshold ({m.low_balance_threshold:.6f} SOL) is below the "
            f"critical wallet balance ({CRITICAL_BALANCE_SOL:.6f} SOL): alerts would arrive after "
            f"wallets are disabled; use {MIN_HEALTHY_BALANCE_SOL:.6f} SOL or more"
        )
    return out


def _shared_state(cfg: Config) -> list[str]:
    """A Redis backend needs a Redis URL; versions must name one that is served."""
    out = []
    url = cfg.redis.url
    for key, backend in (("rate_limit.backend", cfg.rate_limit.backend),
                         ("idempotency.backend", cfg.idempotency.backend)):
        if backend == "redis" and not url:
            out.append(f"{key} is 'redis' but redis.url is not set (CEDROS_REDIS_URL)")
    if url and not _url_scheme_ok(url, ("redis", "rediss", "unix")):
        out.append("redis.url: must be a redis://, rediss:// or unix:// URL")
    v = cfg.api_version
    if v.current not in v.supported:
        out.append(f"api_version.current: {v.current} is not in api_version.supported")
    unknown = sorted(set(v.deprecated) - set(v.supported))
    if unknown:
        out.append(f"api_version.deprecated: version(s) {', '.join(map(str, unknown))} "
                   "are not in api_version.supported")
    return out


_RULES: tuple[Callable[[Config], list[str]], ...] = (
    _stripe,
    _x402_address_and_mint,
    _x402_network,
    _paywall,
    _coupons,
    _databases,
    _rate_limits,
    _callbacks_and_monitoring,
    _shared_state,
)


def find_warnings(cfg: Config) -> list[str]:
    """Things worth a log line at startup that do not stop the server."""
    out = []
    x, m = cfg.x402, cfg.monitoring
    if (x.gasless_enabled and m.low_balance_alert_url
            and CRITICAL_BALANCE_SOL <= m.low_balance_threshold < MIN_HEALTHY_BALANCE_SOL):
        out.append(
            f"monitoring.low_balance_threshold ({m.low_balance_threshold:.6f} SOL) is below "
            f"{MIN_HEALTHY_BALANCE_SOL:.6f} SOL: alerts may come only as wallets turn unhealthy"
        )
    if not cfg.admin.public_keys and not cfg.admin.api_keys:
        out.append("no admin keys configured (admin.public_keys, CEDROS_ADMIN_PUBLIC_KEY_N): "
                   "only x402.payment_address can sign admin requests")
    if cfg.api_key.enabled and not cfg.api_key.keys:
        out.append("api_key.enabled is true but api_key.keys is empty")
    if cfg.storage.backend == "memory":
        out.append("storage.backend is 'memory': payments and replay protection are lost "
                   "on restart; never use it in production")
    if cfg.paywall.product_source == "yaml":
        known = set(cfg.paywall.resources)
        for code, coupon in cfg.coupons.coupons.items():
            missing = [p for p in coupon.product_ids if p not in known]
            if missing:
                out.append(f"coupons.coupons.{code}.product_ids: unknown product(s) "
                           f"{', '.join(missing)}")
    return out

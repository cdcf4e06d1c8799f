"""The typed, frozen configuration tree (spec 09 keys, reference YAML nesting).

Field names are the YAML keys. Shape variants the project accepts (DESIGN §7) are
normalised by "before" validators here, so `Config(...)` built in code behaves like a
loaded file. Cross-field *rules* (spec 17) live in `validate.py`; this module only
types values and fills derived defaults.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import base58
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cedros_pay.config.durations import format_duration
from cedros_pay.config.fields import (
    AwareDatetime,
    Duration,
    FrozenDict,
    IpOrCidr,
    PositiveDuration,
    ServerWallets,
    SolanaAddress,
    StrList,
    StrMap,
    TableName,
    check_table_name,
    freeze,
    secret,
    split_commas,
)
from cedros_pay.config.tokens import stablecoin_for_mint

__all__ = [
    "TABLE_DEFAULTS",
    "APIKeyConfig",
    "APIVersionConfig",
    "AdminConfig",
    "ArchivalConfig",
    "BreakerConfig",
    "CallbacksConfig",
    "CircuitBreakerConfig",
    "Config",
    "CouponConfig",
    "CouponsConfig",
    "IdempotencyConfig",
    "LoggingConfig",
    "MonitoringConfig",
    "PaywallConfig",
    "PostgresPoolConfig",
    "RateLimitConfig",
    "RateLimitRule",
    "RedisConfig",
    "ResourceConfig",
    "ResourceSubscriptionConfig",
    "RetryConfig",
    "SchemaMappingConfig",
    "ServerConfig",
    "SharedStateBackend",
    "StorageBackend",
    "StorageConfig",
    "StripeConfig",
    "SubscriptionsConfig",
    "TableMappingConfig",
    "TenancyConfig",
    "VersionDeprecation",
    "X402Config",
    "derive_ws_url",
]

StorageBackend = Literal["memory", "sqlite", "postgres", "mongodb"]
_BACKENDS = frozenset(get_args(StorageBackend))
ApiKeyTier = Literal["free", "pro", "enterprise", "partner"]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        coerce_numbers_to_str=True,  # YAML `stripe_price_id: 123` is still an id
        populate_by_name=True,
    )


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


_LOWER = BeforeValidator(_lower)


def _plain(value: object) -> dict[str, Any] | None:
    """A mutable copy of a section given as a mapping or a model (None for anything else)."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, Mapping):
        return dict(value)
    return None


def _with_defaults(data: Any, defaults: Mapping[str, Mapping[str, Any]]) -> Any:
    """Merge per-entry defaults into partial sub-sections (they differ per entry)."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for name, base in defaults.items():
        given = out.get(name)
        if given is None:
            out[name] = dict(base)
        elif isinstance(given, Mapping):
            out[name] = {**base, **given}
    return out


# --- server, logging ---------------------------------------------------------------

_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]*$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def _check_listen_address(value: str) -> str:
    value = value.strip()
    host, sep, port = value.rpartition(":")
    ok = bool(sep) and port.isdigit() and int(port) <= 65535
    if ok and host.startswith("["):
        try:
            ok = host.endswith("]") and ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            ok = False
    elif ok:
        ok = bool(_HOSTNAME.match(host))
    if not ok:
        raise ValueError(f"invalid listen address {value!r} (want host:port, e.g. ':8080')")
    return value


def _normalize_prefix(value: str) -> str:
    """Leading "/" and no trailing "/" ("api/" -> "/api"); "" and "/" mean no prefix."""
    value = value.strip().rstrip("/")
    if value and not value.startswith("/"):
        value = "/" + value
    if not _PREFIX.match(value):
        raise ValueError(f"invalid route prefix {value!r} (path segments of URL-safe characters)")
    return value


def _check_origin(value: str) -> str:
    value = value.strip().rstrip("/")
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise ValueError(f"invalid CORS origin {value!r} (want '*' or scheme://host[:port])")
    return value


class ServerConfig(_Model):
    address: Annotated[str, AfterValidator(_check_listen_address)] = ":8080"
    read_timeout: PositiveDuration = timedelta(seconds=15)
    write_timeout: PositiveDuration = timedelta(seconds=15)
    idle_timeout: PositiveDuration = timedelta(seconds=60)
    cors_allowed_origins: tuple[Annotated[str, AfterValidator(_check_origin)], ...] = ()
    route_prefix: Annotated[str, AfterValidator(_normalize_prefix)] = ""
    admin_metrics_api_key: str = secret()
    # Forwarding headers count only from these addresses; none by default (DESIGN §7).
    trusted_proxies: tuple[IpOrCidr, ...] = ()
    # Per-route deadlines (spec 10): health/discovery/metrics, and everything else.
    discovery_timeout: PositiveDuration = timedelta(seconds=5)
    request_timeout: PositiveDuration = timedelta(seconds=60)

    @field_validator("cors_allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return split_commas(value)

    @property
    def host(self) -> str:
        """The host to bind; Go's ":8080" (empty host) means every IPv4 interface."""
        host = self.address.rpartition(":")[0]
        return host.strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


class LoggingConfig(_Model):
    level: Literal["debug", "info", "warn", "error"] = "info"
    format: Annotated[Literal["json", "console"], _LOWER] = "json"
    environment: str = "production"

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        value = _lower(value)
        return "warn" if value == "warning" else value


# --- stripe, x402 ------------------------------------------------------------------


class StripeConfig(_Model):
    secret_key: str = secret()
    webhook_secret: str = secret()
    publishable_key: str = ""
    success_url: str = ""
    cancel_url: str = ""
    tax_rate_id: str = ""
    mode: Annotated[Literal["test", "live"], _LOWER] = "test"

    @property
    def enabled(self) -> bool:
        """Card payments are offered only with a secret key."""
        return bool(self.secret_key)


def derive_ws_url(rpc_url: str) -> str | None:
    """The websocket endpoint beside an RPC URL (http->ws, https->wss), None if unknown."""
    parts = urlsplit(rpc_url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        return None
    return urlunsplit(parts._replace(scheme=scheme))


class X402Config(_Model):
    payment_address: str = ""
    token_mint: str = ""
    network: Literal["mainnet-beta", "devnet", "testnet", "localnet"] = "mainnet-beta"
    rpc_url: str = ""
    ws_url: str = ""  # derived from rpc_url when empty
    memo_prefix: str = "cedros"
    skip_preflight: bool = False
    commitment: Literal["processed", "confirmed", "finalized"] = "confirmed"
    gasless_enabled: bool = False
    auto_create_token_account: bool = False
    # 64-byte secret keys, from X402_SERVER_WALLET_N only (never from the YAML file).
    server_wallets: ServerWallets = secret((), "wallets")
    token_decimals: int = Field(6, ge=0, le=18)
    allowed_tokens: StrList = ("USDC",)
    tx_queue_min_time_between: Duration = timedelta(0)  # 0 = no spacing
    tx_queue_max_in_flight: int = Field(0, ge=0)  # 0 = unlimited
    compute_unit_limit: int = Field(200_000, ge=1, le=1_400_000)
    compute_unit_price_micro_lamports: int = Field(1, ge=0)
    rounding_mode: Literal["standard", "ceiling"] = "standard"

    @model_validator(mode="before")
    @classmethod
    def _derive_ws_url(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("ws_url"):
            rpc = data.get("rpc_url")
            ws = derive_ws_url(rpc) if isinstance(rpc, str) else None
            if ws:
                return {**data, "ws_url": ws}
        return data

    @field_validator("network", "rounding_mode", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return _lower(value)

    @field_validator("commitment", mode="before")
    @classmethod
    def _commitment(cls, value: object) -> object:
        value = _lower(value)
        return "finalized" if value == "finalised" else value

    @field_validator("payment_address", "token_mint", "rpc_url", "ws_url", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("allowed_tokens", mode="after")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.upper() for v in value)

    @property
    def server_wallet_pubkeys(self) -> tuple[str, ...]:
        """Base58 public keys of the server wallets (safe to log, truncated or not)."""
        return tuple(base58.b58encode(k[32:]).decode() for k in self.server_wallets)


# --- catalog: paywall resources and coupons ----------------------------------------


def _keyed(value: object, id_fields: tuple[str, ...], key_field: str, kind: str) -> object:
    """Accept a map keyed by id (the reference file) or a list of items carrying their id.

    The key is copied into `key_field` so an item knows its own id either way.
    """
    if isinstance(value, list | tuple):
        out: dict[str, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ValueError(f"item {index} is not a mapping")
            key = next((item[f] for f in id_fields if item.get(f)), None)
            if key is None:
                raise ValueError(f"item {index} has no {' or '.join(id_fields)}")
            key = str(key)
            if key in out:
                raise ValueError(f"duplicate {kind} {key!r}")
            entry = {k: v for k, v in item.items() if k != "id"}
            entry.setdefault(key_field, key)
            out[key] = entry
        return out
    if isinstance(value, Mapping):
        return {
            str(key): (
                {**item, key_field: item.get(key_field) or str(key)}
                if isinstance(item, Mapping) else item
            )
            for key, item in value.items()
        }
    return value


def resources_by_id(value: object) -> object:
    return _keyed(value, ("id", "resource_id"), "resource_id", "product id")


def coupons_by_code(value: object) -> object:
    return _keyed(value, ("code", "id"), "code", "coupon code")


class ResourceSubscriptionConfig(_Model):
    """Recurring billing attached to a product (spec 05 SubscriptionConfig)."""

    billing_period: Annotated[Literal["day", "week", "month", "year"], _LOWER]
    billing_interval: int = Field(1, ge=1)
    trial_days: int = Field(0, ge=0)
    stripe_price_id: str = ""
    allow_x402: bool = False
    grace_period_hours: int = Field(0, ge=0)


class ResourceConfig(_Model):
    """One product of the YAML catalog; amounts are atomic units (cents, token units)."""

    resource_id: str = ""  # filled from the map key / list item id
    description: str = ""
    stripe_price_id: str = ""
    fiat_amount_cents: int = Field(0, ge=0)
    fiat_currency: Annotated[str, _LOWER] = "usd"
    crypto_atomic_amount: int = Field(0, ge=0)
    crypto_token: str = ""  # a symbol; defaults to x402.token_mint's
    crypto_account: str = ""
    memo_template: str = ""
    metadata: StrMap = FrozenDict()
    extras: Annotated[Mapping[str, Any], AfterValidator(freeze)] = FrozenDict()
    subscription: ResourceSubscriptionConfig | None = None
    active: bool = True


class CouponConfig(_Model):
    code: str = ""  # filled from the map key / list item
    discount_type: Literal["percentage", "fixed"]
    discount_value: float
    currency: str = ""
    scope: Literal["all", "specific"] = "all"
    product_ids: StrList = ()
    payment_method: Literal["", "stripe", "x402"] = ""
    auto_apply: bool = False
    applies_at: Literal["catalog", "checkout"] = "checkout"
    usage_limit: int | None = Field(None, ge=0)  # None = unlimited
    usage_count: int = Field(0, ge=0)
    starts_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    active: bool = True
    metadata: StrMap = FrozenDict()

    @field_validator("discount_type", "scope", "payment_method", "applies_at", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return _lower(value)


class PostgresPoolConfig(_Model):
    max_open_conns: int = Field(25, ge=1)
    max_idle_conns: int = Field(5, ge=0)
    conn_max_lifetime: PositiveDuration = timedelta(minutes=5)


class PaywallConfig(_Model):
    quote_ttl: PositiveDuration = timedelta(minutes=5)
    # Derived from storage.backend when absent: postgres/mongodb, else yaml.
    product_source: Annotated[Literal["yaml", "postgres", "mongodb", "sqlite"], _LOWER] = "yaml"
    product_cache_ttl: Duration = timedelta(minutes=5)  # 0 disables the cache
    postgres_url: str = secret("", "url")  # from storage.postgres_url when empty
    postgres_table_name: TableName = "products"
    mongodb_url: str = secret("", "url")
    mongodb_database: str = ""
    mongodb_collection: str = "products"
    resources: Annotated[Mapping[str, ResourceConfig], AfterValidator(freeze)] = FrozenDict()
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()

    @field_validator("resources", mode="before")
    @classmethod
    def _resources(cls, value: object) -> object:
        return resources_by_id(value)


class CouponsConfig(_Model):
    # Derived from storage.backend when absent; "disabled" turns coupons off.
    coupon_source: Annotated[
        Literal["yaml", "postgres", "mongodb", "sqlite", "disabled"], _LOWER
    ] = "yaml"
    cache_ttl: Duration = timedelta(minutes=1)
    postgres_url: str = secret("", "url")
    postgres_table_name: TableName = "coupons"
    mongodb_url: str = secret("", "url")
    mongodb_database: str = ""
    mongodb_collection: str = "coupons"
    coupons: Annotated[Mapping[str, CouponConfig], AfterValidator(freeze)] = FrozenDict()
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()

    @field_validator("coupons", mode="before")
    @classmethod
    def _coupons(cls, value: object) -> object:
        return coupons_by_code(value)


# --- storage -----------------------------------------------------------------------

TABLE_DEFAULTS: Mapping[str, str] = FrozenDict({
    "payments": "payment_transactions",
    "sessions": "stripe_sessions",
    "products": "products",
    "coupons": "coupons",
    "cart_quotes": "cart_quotes",
    "refund_quotes": "refund_quotes",
    "admin_nonces": "admin_nonces",
    "webhook_queue": "webhook_queue",
    "subscriptions": "subscriptions",
    "idempotency_keys": "idempotency_keys",
})


class TableMappingConfig(_Model):
    table_name: TableName


class SchemaMappingConfig(_Model):
    """Custom table/collection names (spec 08); empty or absent entries keep the default."""

    payments: TableMappingConfig = TableMappingConfig(table_name="payment_transactions")
    sessions: TableMappingConfig = TableMappingConfig(table_name="stripe_sessions")
    products: TableMappingConfig = TableMappingConfig(table_name="products")
    coupons: TableMappingConfig = TableMappingConfig(table_name="coupons")
    cart_quotes: TableMappingConfig = TableMappingConfig(table_name="cart_quotes")
    refund_quotes: TableMappingConfig = TableMappingConfig(table_name="refund_quotes")
    admin_nonces: TableMappingConfig = TableMappingConfig(table_name="admin_nonces")
    webhook_queue: TableMappingConfig = TableMappingConfig(table_name="webhook_queue")
    subscriptions: TableMappingConfig = TableMappingConfig(table_name="subscriptions")
    idempotency_keys: TableMappingConfig = TableMappingConfig(table_name="idempotency_keys")

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for key, value in data.items():
            if isinstance(value, str):  # shorthand `payments: my_table`
                value = {"table_name": value}
            if isinstance(value, Mapping) and not value.get("table_name") and key in TABLE_DEFAULTS:
                value = {**value, "table_name": TABLE_DEFAULTS[key]}
            out[key] = value
        return out

    def table_name(self, key: str) -> str:
        """The configured name for `key` (payments, sessions, products, ...)."""
        if key not in TABLE_DEFAULTS:
            raise KeyError(f"unknown schema_mapping key {key!r}")
        mapping: TableMappingConfig = getattr(self, key)
        return mapping.table_name

    def as_dict(self) -> dict[str, str]:
        return {key: self.table_name(key) for key in TABLE_DEFAULTS}


class ArchivalConfig(_Model):
    enabled: bool = False
    retention_period: PositiveDuration = timedelta(hours=2160)  # 90 days
    run_interval: PositiveDuration = timedelta(hours=24)


def storage_backend(data: Mapping[str, Any]) -> str | None:
    """The backend a raw storage section selects, or None when it cannot say.

    `file` is the reference's name for the one-file store, which SQLite serves here
    (DESIGN §7). Without an explicit backend, a postgres or mongodb URL selects it
    (spec 09); with neither, SQLite is the embedded default (DESIGN §4).
    """
    backend = data.get("backend")
    if isinstance(backend, str) and backend.strip():
        backend = backend.strip().lower()
        return "sqlite" if backend == "file" else backend
    if backend not in (None, ""):
        return None
    postgres, mongo = data.get("postgres_url"), data.get("mongodb_url")
    if postgres and mongo:
        return None
    if postgres:
        return "postgres"
    if mongo:
        return "mongodb"
    return "sqlite"


class StorageConfig(_Model):
    backend: StorageBackend = "sqlite"
    postgres_url: str = secret("", "url")
    mongodb_url: str = secret("", "url")
    mongodb_database: str = ""
    file_path: str = "./data/cedros-pay.db"  # the SQLite file (`file` / `sqlite`)
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()
    archival: ArchivalConfig = ArchivalConfig()
    cart_quote_ttl: PositiveDuration = timedelta(minutes=15)
    refund_quote_ttl: PositiveDuration = timedelta(minutes=15)
    cleanup_interval: PositiveDuration = timedelta(minutes=5)
    schema_mapping: SchemaMappingConfig = SchemaMappingConfig()

    @model_validator(mode="before")
    @classmethod
    def _backend(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        if data.get("backend") in (None, "") and data.get("postgres_url") and data.get(
                "mongodb_url"):
            raise ValueError(
                "both postgres_url and mongodb_url are set; choose one with storage.backend"
            )
        backend = storage_backend(data)
        return {**data, "backend": backend if backend is not None else data.get("backend")}


# --- subscriptions, callbacks, monitoring ------------------------------------------


class SubscriptionsConfig(_Model):
    enabled: bool = False
    backend: StorageBackend = "sqlite"  # defaults to storage.backend
    postgres_url: str = secret("", "url")  # from storage.postgres_url when empty
    grace_period_hours: int = Field(0, ge=0)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        value = _lower(value)
        return "sqlite" if value == "file" else value


class RetryConfig(_Model):
    enabled: bool = True
    max_attempts: int = Field(5, ge=1)
    initial_interval: PositiveDuration = timedelta(seconds=1)
    max_interval: PositiveDuration = timedelta(minutes=5)
    multiplier: float = Field(2.0, ge=1.0)


class CallbacksConfig(_Model):
    payment_success_url: str = ""
    # Refund / subscription events go to payment_success_url unless these are set.
    refund_success_url: str = ""
    subscription_url: str = ""
    headers: StrMap = secret(FrozenDict(), "values")  # often carries Authorization
    body: str = ""
    body_template: str = ""
    timeout: PositiveDuration = timedelta(seconds=3)
    retry: RetryConfig = RetryConfig()
    dlq_enabled: bool = False
    dlq_path: str = "./data/webhook-dlq.json"
    poll_interval: PositiveDuration = timedelta(seconds=5)  # spec 20 queue worker
    backend: StorageBackend = "sqlite"  # spec 20's key; defaults to storage.backend
    hmac_secret: str = secret()  # signs X-Cedros-Signature when set (spec 13)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        value = _lower(value)
        return "sqlite" if value == "file" else value


class MonitoringConfig(_Model):
    # The URL of a Discord/Slack webhook is itself a credential.
    low_balance_alert_url: str = secret("", "url")
    low_balance_threshold: float = Field(0.01, gt=0)  # SOL
    check_interval: PositiveDuration = timedelta(minutes=15)
    timeout: PositiveDuration = timedelta(seconds=5)
    headers: StrMap = secret(FrozenDict(), "values")
    body_template: str = ""


# --- rate limits, api keys, breakers, admin, tenancy -------------------------------


class RateLimitRule(_Model):
    enabled: bool = True
    limit: int = Field(0, ge=0)
    window: PositiveDuration = timedelta(minutes=1)


SharedStateBackend = Literal["memory", "redis"]

_RATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "global": {"limit": 1000},
    "per_wallet": {"limit": 60},
    "per_ip": {"limit": 120},
}


def nest_rate_limits(data: Any) -> Any:
    """Turn the flat form (`global_limit: 1000`) into the nested one (`global: {limit}`)."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    if "global_" in out and "global" not in out:
        out["global"] = out.pop("global_")
    for bucket in _RATE_DEFAULTS:
        for attr in ("enabled", "limit", "window"):
            flat = f"{bucket}_{attr}"
            if flat not in out:
                continue
            value = out.pop(flat)
            nested = out.get(bucket)
            nested = dict(nested) if isinstance(nested, Mapping) else {}
            if attr in nested and nested[attr] != value:
                raise ValueError(f"both {bucket}.{attr} and {flat} are set; use one form")
            nested[attr] = value
            out[bucket] = nested
    return _with_defaults(out, _RATE_DEFAULTS)


class RateLimitConfig(_Model):
    """Token buckets (spec 13). YAML may use the nested form (spec 09) or the flat
    `global_limit` form (the reference file); both are accepted (DESIGN §7)."""

    global_: RateLimitRule = Field(RateLimitRule(limit=1000), alias="global")
    per_wallet: RateLimitRule = RateLimitRule(limit=60)
    per_ip: RateLimitRule = RateLimitRule(limit=120)
    # Where buckets live: this process, or Redis (shared by every instance). Defaults to
    # redis when redis.url is set.
    backend: Annotated[SharedStateBackend, _LOWER] = "memory"
    max_entries: int = Field(10_000, ge=1)  # memory backend: LRU beyond this many buckets
    cleanup_interval: PositiveDuration = timedelta(minutes=5)  # memory backend sweep

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        return nest_rate_limits(data)


class APIKeyConfig(_Model):
    enabled: bool = False
    keys: Annotated[Mapping[str, ApiKeyTier], AfterValidator(freeze)] = secret(
        FrozenDict(), "keys"
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): _lower(v) for k, v in value.items()}
        return value


class BreakerConfig(_Model):
    max_requests: int = Field(3, ge=1)  # allowed while half-open
    interval: Duration = timedelta(seconds=60)  # closed-state stats reset; 0 = never
    timeout: PositiveDuration = timedelta(seconds=30)  # open -> half-open
    consecutive_failures: int = Field(5, ge=1)
    failure_ratio: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(10, ge=0)


# Spec 12's defaults, which differ per service.
_BREAKER_DEFAULTS: dict[str, dict[str, Any]] = {
    "solana_rpc": {"max_requests": 3, "interval": timedelta(seconds=60),
                   "timeout": timedelta(seconds=30), "consecutive_failures": 5,
                   "failure_ratio": 0.5, "min_requests": 10},
    "stripe_api": {"max_requests": 3, "interval": timedelta(seconds=60),
                   "timeout": timedelta(seconds=30), "consecutive_failures": 3,
                   "failure_ratio": 0.5, "min_requests": 5},
    "webhook": {"max_requests": 5, "interval": timedelta(seconds=60),
                "timeout": timedelta(seconds=60), "consecutive_failures": 10,
                "failure_ratio": 0.7, "min_requests": 20},
}


class CircuitBreakerConfig(_Model):
    enabled: bool = True
    solana_rpc: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["solana_rpc"])
    stripe_api: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["stripe_api"])
    webhook: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["webhook"])

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _with_defaults(data, _BREAKER_DEFAULTS)


def _check_admin_api_key(value: str) -> str:
    if not value.strip():
        raise ValueError("admin API keys must not be empty")
    return value.strip()


class AdminConfig(_Model):
    """Admin credentials (spec 13): Ed25519 signer keys and Bearer API keys."""

    public_keys: tuple[SolanaAddress, ...] = ()
    api_keys: tuple[Annotated[str, AfterValidator(_check_admin_api_key)], ...] = secret(
        (), "list"
    )

    @field_validator("public_keys", "api_keys", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class TenancyConfig(_Model):
    """Where a request's tenant comes from (spec 13), in priority order: the X-Tenant-ID
    header, a JWT claim, the subdomain, then `default_tenant` (single-tenant mode)."""

    default_tenant: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "default"
    header_enabled: bool = True
    # HS256 secret for `Authorization: Bearer <jwt>`; the claim is read only when set.
    jwt_secret: str = secret()
    jwt_claim: str = "tenant_id"
    # "pay.example.com": a request to acme.pay.example.com is tenant "acme".
    subdomain_base: Annotated[str, _LOWER] = ""

    @field_validator("subdomain_base", mode="after")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.strip(".")


class RedisConfig(_Model):
    """The Redis server that rate limits and idempotency share across instances."""

    url: str = secret("", "url")
    key_prefix: str = "cedros:"

    @field_validator("url", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class IdempotencyConfig(_Model):
    """Idempotency-Key replay on the spec's idempotent POST endpoints (spec 10)."""

    enabled: bool = True
    backend: Annotated[SharedStateBackend, _LOWER] = "memory"  # redis when redis.url is set
    ttl: PositiveDuration = timedelta(hours=24)
    max_entries: int = Field(10_000, ge=1)  # memory backend: LRU beyond this many
    cleanup_interval: PositiveDuration = timedelta(minutes=5)
    # How long a request waits for an earlier one with the same key before a 409.
    wait: Duration = timedelta(seconds=10)


class VersionDeprecation(_Model):
    since: AwareDatetime | None = None  # Deprecation: @<unix seconds> (RFC 9745)
    sunset: AwareDatetime | None = None  # Sunset: <HTTP-date> (RFC 8594)
    link: str = ""  # Link: <url>; rel="deprecation"


class APIVersionConfig(_Model):
    """API version negotiation (spec 10): versions served, and which are deprecated."""

    current: int = Field(1, ge=1)  # used when a request asks for none
    supported: tuple[int, ...] = (1,)
    deprecated: Annotated[Mapping[int, VersionDeprecation], AfterValidator(freeze)] = (
        FrozenDict())

    @field_validator("supported", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, int):
            return (value,)
        return split_commas(value)


# --- the root ----------------------------------------------------------------------


class Config(_Model):
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()
    stripe: StripeConfig = StripeConfig()
    x402: X402Config = X402Config()
    paywall: PaywallConfig = PaywallConfig()
    storage: StorageConfig = StorageConfig()
    coupons: CouponsConfig = CouponsConfig()
    subscriptions: SubscriptionsConfig = SubscriptionsConfig()
    callbacks: CallbacksConfig = CallbacksConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    api_key: APIKeyConfig = APIKeyConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    admin: AdminConfig = AdminConfig()
    tenancy: TenancyConfig = TenancyConfig()
    redis: RedisConfig = RedisConfig()
    idempotency: IdempotencyConfig = IdempotencyConfig()
    api_version: APIVersionConfig = APIVersionConfig()

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        """Fill defaults that depend on other sections ("unified storage" of the reference).

        Never raises: a section it cannot read is left for its own validation to report.
        """
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        storage = _plain(out.get("storage")) or {}
        backend = storage_backend(storage)
        if backend not in _BACKENDS:
            backend = None  # invalid: reported once, under storage.backend
        _derive_catalog(out, storage, backend)
        _derive_shared_state(out)
        for name in ("subscriptions", "callbacks"):
            section = _plain(out.get(name, {}))
            if section is not None and backend is not None:
                section.setdefault("backend", backend)
                if name == "subscriptions" and not section.get("postgres_url"):
                    section["postgres_url"] = storage.get("postgres_url") or ""
                out[name] = section
        _default_crypto_token(out)
        return out

    def redacted(self) -> dict[str, Any]:
        """A JSON-friendly view for logs: secrets masked, wallets shown as short pubkeys."""
        return _redact_model(self)


def _table_from_mapping(storage: Mapping[str, Any], key: str) -> str | None:
    """A custom name from schema_mapping, if it is safe (a bad one is reported there)."""
    mapping = storage.get("schema_mapping")
    entry = mapping.get(key) if isinstance(mapping, Mapping) else None
    if isinstance(entry, Mapping):
        entry = entry.get("table_name")
    if not isinstance(entry, str) or not entry:
        return None
    try:
        return check_table_name(entry)
    except ValueError:
        return None


def _derive_catalog(out: dict[str, Any], storage: Mapping[str, Any], backend: str | None) -> None:
    """Products and coupons follow storage.backend and reuse its URLs and table names."""
    db_source = {"postgres": "postgres", "mongodb": "mongodb"}
    for name, source_key, table_key in (
        ("paywall", "product_source", "products"),
        ("coupons", "coupon_source", "coupons"),
    ):
        section = _plain(out.get(name, {}))
        if section is None:
            continue
        if not section.get(source_key) and backend is not None:
            section[source_key] = db_source.get(backend, "yaml")
        for key in ("postgres_url", "mongodb_url", "mongodb_database"):
            if not section.get(key) and storage.get(key):
                section[key] = storage[key]
        table = _table_from_mapping(storage, table_key)
        if table:
            section.setdefault("postgres_table_name", table)
            section.setdefault("mongodb_collection", table)
        out[name] = section


def _derive_shared_state(out: dict[str, Any]) -> None:
    """With a Redis URL, rate limits and idempotency default to it (several instances)."""
    redis = _plain(out.get("redis")) or {}
    url = redis.get("url")
    default = "redis" if isinstance(url, str) and url.strip() else "memory"
    for name in ("rate_limit", "idempotency"):
        section = _plain(out.get(name, {}))
        if section is not None and not section.get("backend"):
            section["backend"] = default
            out[name] = section


def _default_crypto_token(out: dict[str, Any]) -> None:
    """A product without crypto_token is priced in the configured mint's token."""
    x402 = _plain(out.get("x402")) or {}
    paywall = _plain(out.get("paywall"))
    mint, network = x402.get("token_mint"), x402.get("network", "mainnet-beta")
    if paywall is None or not isinstance(mint, str) or not isinstance(network, str):
        return
    coin = stablecoin_for_mint(mint.strip(), network.strip().lower())
    resources = paywall.get("resources")
    if coin is None or not isinstance(resources, Mapping | list):
        return
    items = resources.values() if isinstance(resources, Mapping) else resources
    filled = [
        {**item, "crypto_token": coin.symbol}
        if isinstance(item, Mapping) and not item.get("crypto_token") else item
        for item in items
    ]
    if isinstance(resources, Mapping):
        paywall["resources"] = dict(zip(resources.keys(), filled, strict=True))
    else:
        paywall["resources"] = filled
    out["paywall"] = paywall


# --- redaction ---------------------------------------------------------------------


def _short(text: str) -> str:
    return f"{text[:4]}...{text[-3:]}" if len(text) > 10 else text


def _mask(text: str) -> str:
    return "***" if text else ""


def _mask_url(text: str) -> str:
    """Keep where it points (scheme, user, host, port); hide password, path and query."""
    if not text:
        return ""
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    user = f"{parts.username}:***@" if parts.username else ""
    tail = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{tail}"


def _redact_secret(how: str, value: Any) -> Any:
    if how == "url":
        return _mask_url(value)
    if how == "values":
        return {name: _mask(v) for name, v in value.items()}
    if how == "keys":
        return [{"key": _mask(k), "tier": tier} for k, tier in value.items()]
    if how == "list":
        return [_mask(v) for v in value]
    if how == "wallets":
        return [_short(base58.b58encode(k[32:]).decode()) for k in value]
    return _mask(value)


def _redact_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _redact_model(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_redact_value(v) for v in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return _mask(value.hex())
    return value


def _redact_model(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = info.alias or name
        if info.repr is False:
            extra = info.json_schema_extra
            how = extra.get("redact", "mask") if isinstance(extra, dict) else "mask"
            out[key] = _redact_secret(str(how), value)
        else:
            out[key] = _redact_value(value)
    return out

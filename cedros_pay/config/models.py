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
    "GraphQLConfig",
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
        use_attribute_docstrings=True,  # the docstring under a field is its description
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
    """The HTTP server: where it listens, its timeouts, CORS and proxies."""

    address: Annotated[str, AfterValidator(_check_listen_address)] = ":8080"
    """Listen address `host:port`; `:8080` listens on every IPv4 interface."""
    read_timeout: PositiveDuration = timedelta(seconds=15)
    """Longest time to read a request."""
    write_timeout: PositiveDuration = timedelta(seconds=15)
    """Longest time to write a response."""
    idle_timeout: PositiveDuration = timedelta(seconds=60)
    """How long an idle keep-alive connection stays open."""
    cors_allowed_origins: tuple[Annotated[str, AfterValidator(_check_origin)], ...] = ()
    """Origins allowed by CORS (`*` or `scheme://host[:port]`); none = CORS off."""
    route_prefix: Annotated[str, AfterValidator(_normalize_prefix)] = ""
    """Path prefix for every API route (`api` becomes `/api`); empty = none."""
    admin_metrics_api_key: str = secret()
    """Bearer key that `/metrics` requires; empty = metrics open."""
    # Forwarding headers count only from these addresses; none by default (DESIGN §7).
    trusted_proxies: tuple[IpOrCidr, ...] = ()
    """Proxy addresses/CIDRs whose X-Forwarded-For / X-Real-IP are believed."""
    # Per-route deadlines (spec 10): health/discovery/metrics, and everything else.
    discovery_timeout: PositiveDuration = timedelta(seconds=5)
    """Deadline of health, discovery and metrics requests."""
    request_timeout: PositiveDuration = timedelta(seconds=60)
    """Deadline of every other request."""

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
    """Log level and format (structured JSON for production)."""

    level: Literal["debug", "info", "warn", "error"] = "info"
    """Lowest level logged (`warning` means `warn`)."""
    format: Annotated[Literal["json", "console"], _LOWER] = "json"
    """`json` (one object a line) or `console` (for people)."""
    environment: str = "production"
    """Environment name added to every log line."""

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        value = _lower(value)
        return "warn" if value == "warning" else value


# --- stripe, x402 ------------------------------------------------------------------


class StripeConfig(_Model):
    """Card payments by Stripe Checkout; off unless `secret_key` is set."""

    secret_key: str = secret()
    """Stripe secret API key (`sk_test_…` / `sk_live_…`); empty = cards off."""
    webhook_secret: str = secret()
    """Signing secret of the Stripe webhook endpoint (`whsec_…`)."""
    publishable_key: str = ""
    """Publishable key, handed to browser clients."""
    success_url: str = ""
    """Where Checkout sends the buyer after paying."""
    cancel_url: str = ""
    """Where Checkout sends the buyer after cancelling."""
    tax_rate_id: str = ""
    """Stripe tax rate applied to Checkout line items (`txr_…`)."""
    mode: Annotated[Literal["test", "live"], _LOWER] = "test"
    """`test` or `live`; must match the secret key's kind."""
    api_base: str = "https://api.stripe.com"
    """Where the Stripe SDK sends its requests: Stripe itself, or a local stand-in in tests."""

    @property
    def enabled(self) -> bool:
        """Card payments are offered only with a secret key."""
        return bool(self.secret_key)


def derive_ws_url(rpc_url: str) -> str | None:
    """The websocket endpoint beside a Solana RPC URL (spec 12: http->ws, https->wss,
    ws(s) unchanged), None for any other scheme. The config fills `x402.ws_url` with it;
    the verifier falls back on it when built without one."""
    parts = urlsplit(rpc_url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        return None
    return urlunsplit(parts._replace(scheme=scheme))


class X402Config(_Model):
    """x402 payments on Solana: the receiving wallet, token, network and RPC, fees."""

    payment_address: str = ""
    """Merchant wallet (base58) that receives x402 payments."""
    token_mint: str = ""
    """Mint of the default payment token (e.g. USDC's)."""
    network: Literal["mainnet-beta", "devnet", "testnet", "localnet"] = "mainnet-beta"
    """Solana cluster; the token mint must belong to it."""
    rpc_url: str = ""
    """Solana JSON-RPC endpoint (http or https)."""
    ws_url: str = ""  # derived from rpc_url when empty
    """Solana WebSocket endpoint; derived from `rpc_url` when empty."""
    memo_prefix: str = "cedros"
    """Prefix of the memos the server generates."""
    skip_preflight: bool = False
    """Send transactions without the RPC's preflight simulation."""
    commitment: Literal["processed", "confirmed", "finalized"] = "confirmed"
    """Commitment level a payment must reach to count."""
    gasless_enabled: bool = False
    """Server wallets pay the network fee; needed by official x402 clients (scheme `exact`)."""
    auto_create_token_account: bool = False
    """Server wallets create a missing recipient token account."""
    # 64-byte secret keys, from X402_SERVER_WALLET_N only (never from the YAML file).
    server_wallets: ServerWallets = secret((), "wallets")
    """Secret keys of the fee-paying server wallets; environment only, never YAML."""
    token_decimals: int = Field(6, ge=0, le=18)
    """Decimals of the default token."""
    allowed_tokens: StrList = ("USDC",)
    """Token symbols accepted for payment."""
    tx_queue_min_time_between: Duration = timedelta(0)  # 0 = no spacing
    """Least time between two sent transactions; 0 = no spacing."""
    tx_queue_max_in_flight: int = Field(0, ge=0)  # 0 = unlimited
    """Most transactions awaiting confirmation at once; 0 = unlimited."""
    compute_unit_limit: int = Field(200_000, ge=1, le=1_400_000)
    """Compute unit limit of the transactions the server builds."""
    compute_unit_price_micro_lamports: int = Field(1, ge=0)
    """Priority fee per compute unit, in micro-lamports."""
    rounding_mode: Literal["standard", "ceiling"] = "standard"
    """How amounts are rounded to cents: `standard` or `ceiling` (spec 05)."""

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
    """Unit of the billing period."""
    billing_interval: int = Field(1, ge=1)
    """Periods per billing cycle (2 + month = every two months)."""
    trial_days: int = Field(0, ge=0)
    """Free days before the first charge (Stripe)."""
    stripe_price_id: str = ""
    """Stripe recurring price (`price_…`) for card subscriptions."""
    allow_x402: bool = False
    """Whether the period can be bought with x402."""
    grace_period_hours: int = Field(0, ge=0)
    """Hours access lasts past the period's end."""


class ResourceConfig(_Model):
    """One product of the YAML catalog; amounts are atomic units (cents, token units)."""

    resource_id: str = ""  # filled from the map key / list item id
    """The product id; taken from the map key or list item id."""
    description: str = ""
    """Shown to buyers and in the 402 offer."""
    stripe_price_id: str = ""
    """Stripe price (`price_…`) used for card checkout."""
    fiat_amount_cents: int = Field(0, ge=0)
    """Card price in minor units (cents); 0 = no card price."""
    fiat_currency: Annotated[str, _LOWER] = "usd"
    """ISO currency of the card price."""
    crypto_atomic_amount: int = Field(0, ge=0)
    """x402 price in the token's atomic units; 0 = no x402 price."""
    crypto_token: str = ""  # a symbol; defaults to x402.token_mint's
    """Token symbol of the x402 price; defaults to `x402.token_mint`'s."""
    crypto_account: str = ""
    """Token account receiving this product's payments, instead of the default."""
    memo_template: str = ""
    """Memo the payment must carry; `{resource}` and `{nonce}` are filled in."""
    metadata: StrMap = FrozenDict()
    """Strings returned with the product and stored with its payments."""
    extras: Annotated[Mapping[str, Any], AfterValidator(freeze)] = FrozenDict()
    """Free-form data passed through to clients."""
    subscription: ResourceSubscriptionConfig | None = None
    """Makes the product a subscription."""
    active: bool = True
    """Inactive products are not sold."""


class CouponConfig(_Model):
    """One coupon of the YAML catalog, keyed by its code."""

    code: str = ""  # filled from the map key / list item
    """The code buyers enter; taken from the map key or list item."""
    discount_type: Literal["percentage", "fixed"]
    """`percentage` off, or a `fixed` amount off."""
    discount_value: float
    """Percent (0-100) or amount in major units of `currency`."""
    currency: str = ""
    """Currency of a fixed discount; empty = USD (and USD stablecoins)."""
    scope: Literal["all", "specific"] = "all"
    """`all` products or the `specific` ones in `product_ids`."""
    product_ids: StrList = ()
    """Products a `specific` coupon applies to."""
    payment_method: Literal["", "stripe", "x402"] = ""
    """Restrict to `stripe` or `x402`; empty = both."""
    auto_apply: bool = False
    """Applied without being entered."""
    applies_at: Literal["catalog", "checkout"] = "checkout"
    """`catalog` (product prices) or `checkout` (the cart total)."""
    usage_limit: int | None = Field(None, ge=0)  # None = unlimited
    """Most redemptions; none = unlimited."""
    usage_count: int = Field(0, ge=0)
    """Redemptions so far (the starting count)."""
    starts_at: AwareDatetime | None = None
    """Not valid before this time."""
    expires_at: AwareDatetime | None = None
    """Not valid after this time."""
    active: bool = True
    """Inactive coupons are refused."""
    metadata: StrMap = FrozenDict()
    """Strings stored with the coupon."""

    @field_validator("discount_type", "scope", "payment_method", "applies_at", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return _lower(value)


class PostgresPoolConfig(_Model):
    """Connection pool of a PostgreSQL client."""

    max_open_conns: int = Field(25, ge=1)
    """Most open connections."""
    max_idle_conns: int = Field(5, ge=0)
    """Most idle connections kept."""
    conn_max_lifetime: PositiveDuration = timedelta(minutes=5)
    """Age after which a connection is replaced."""


class PaywallConfig(_Model):
    """The product catalog and its quotes: YAML `resources` or a database."""

    quote_ttl: PositiveDuration = timedelta(minutes=5)
    """How long a quoted price (402 offer) stays payable."""
    # Derived from storage.backend when absent: postgres/mongodb, else yaml.
    product_source: Annotated[Literal["yaml", "postgres", "mongodb", "sqlite"], _LOWER] = "yaml"
    """Where products come from; follows `storage.backend` when absent."""
    product_cache_ttl: Duration = timedelta(minutes=5)  # 0 disables the cache
    """How long the product catalog is cached; 0 disables the cache."""
    postgres_url: str = secret("", "url")  # from storage.postgres_url when empty
    """PostgreSQL of the product table; defaults to `storage.postgres_url`."""
    postgres_table_name: TableName = "products"
    """Product table name."""
    mongodb_url: str = secret("", "url")
    """MongoDB of the product collection; defaults to `storage.mongodb_url`."""
    mongodb_database: str = ""
    """MongoDB database of the products; defaults to `storage.mongodb_database`."""
    mongodb_collection: str = "products"
    """Product collection name."""
    resources: Annotated[Mapping[str, ResourceConfig], AfterValidator(freeze)] = FrozenDict()
    """The YAML catalog: products keyed by id (a list with `id` works too)."""
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()
    """Pool of the product database connection."""

    @field_validator("resources", mode="before")
    @classmethod
    def _resources(cls, value: object) -> object:
        return resources_by_id(value)


class CouponsConfig(_Model):
    """Coupons: YAML `coupons` or a database table."""

    # Derived from storage.backend when absent; "disabled" turns coupons off.
    coupon_source: Annotated[
        Literal["yaml", "postgres", "mongodb", "sqlite", "disabled"], _LOWER
    ] = "yaml"
    """Where coupons come from (`disabled` = none); follows `storage.backend` when absent."""
    cache_ttl: Duration = timedelta(minutes=1)
    """How long coupons are cached; 0 disables the cache."""
    postgres_url: str = secret("", "url")
    """PostgreSQL of the coupon table; defaults to `storage.postgres_url`."""
    postgres_table_name: TableName = "coupons"
    """Coupon table name."""
    mongodb_url: str = secret("", "url")
    """MongoDB of the coupon collection; defaults to `storage.mongodb_url`."""
    mongodb_database: str = ""
    """MongoDB database of the coupons; defaults to `storage.mongodb_database`."""
    mongodb_collection: str = "coupons"
    """Coupon collection name."""
    coupons: Annotated[Mapping[str, CouponConfig], AfterValidator(freeze)] = FrozenDict()
    """The YAML coupons, keyed by code (a list with `code` works too)."""
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()
    """Pool of the coupon database connection."""

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
    """One custom table/collection name."""

    table_name: TableName
    """Table (or collection) name: letters, digits and `_`."""


class SchemaMappingConfig(_Model):
    """Custom table/collection names (spec 08); empty or absent entries keep the default."""

    payments: TableMappingConfig = TableMappingConfig(table_name="payment_transactions")
    """Payment records."""
    sessions: TableMappingConfig = TableMappingConfig(table_name="stripe_sessions")
    """Stripe Checkout sessions."""
    products: TableMappingConfig = TableMappingConfig(table_name="products")
    """Products (database catalog)."""
    coupons: TableMappingConfig = TableMappingConfig(table_name="coupons")
    """Coupons (database catalog)."""
    cart_quotes: TableMappingConfig = TableMappingConfig(table_name="cart_quotes")
    """Cart quotes."""
    refund_quotes: TableMappingConfig = TableMappingConfig(table_name="refund_quotes")
    """Refund requests."""
    admin_nonces: TableMappingConfig = TableMappingConfig(table_name="admin_nonces")
    """Single-use admin nonces."""
    webhook_queue: TableMappingConfig = TableMappingConfig(table_name="webhook_queue")
    """Queued webhook deliveries."""
    subscriptions: TableMappingConfig = TableMappingConfig(table_name="subscriptions")
    """Subscriptions."""
    idempotency_keys: TableMappingConfig = TableMappingConfig(table_name="idempotency_keys")
    """Stored Idempotency-Key responses."""

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
    """Archival of old payment records (spec 11 worker)."""

    enabled: bool = False
    """Run the archival worker."""
    retention_period: PositiveDuration = timedelta(hours=2160)  # 90 days
    """Age after which payment records are archived."""
    run_interval: PositiveDuration = timedelta(hours=24)
    """How often the worker runs."""


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
    """Where payments, carts, refunds, nonces and webhooks are stored."""

    backend: StorageBackend = "sqlite"
    """`sqlite` (`file` too), `postgres`, `mongodb` or `memory`; inferred from the URL set."""
    postgres_url: str = secret("", "url")
    """PostgreSQL URL (`postgresql://user:pass@host:5432/db`)."""
    mongodb_url: str = secret("", "url")
    """MongoDB URL."""
    mongodb_database: str = ""
    """MongoDB database name."""
    file_path: str = "./data/cedros-pay.db"  # the SQLite file (`file` / `sqlite`)
    """The SQLite file (`sqlite` / `file` backends)."""
    postgres_pool: PostgresPoolConfig = PostgresPoolConfig()
    """PostgreSQL connection pool."""
    archival: ArchivalConfig = ArchivalConfig()
    """Archival of old payments."""
    cart_quote_ttl: PositiveDuration = timedelta(minutes=15)
    """How long a cart quote stays payable."""
    refund_quote_ttl: PositiveDuration = timedelta(minutes=15)
    """How long a refund quote stays valid."""
    cleanup_interval: PositiveDuration = timedelta(minutes=5)
    """How often expired quotes and nonces are deleted."""
    schema_mapping: SchemaMappingConfig = SchemaMappingConfig()
    """Custom table/collection names (spec 08); a string is shorthand for `{table_name}`."""

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
    """Recurring access (Stripe-billed or x402 time-boxed)."""

    enabled: bool = False
    """Serve the subscription endpoints and workers."""
    backend: StorageBackend = "sqlite"  # defaults to storage.backend
    """Subscription store; defaults to `storage.backend`."""
    postgres_url: str = secret("", "url")  # from storage.postgres_url when empty
    """PostgreSQL of the subscriptions; defaults to `storage.postgres_url`."""
    grace_period_hours: int = Field(0, ge=0)
    """Hours access lasts past a period's end (products may override)."""

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        value = _lower(value)
        return "sqlite" if value == "file" else value


class RetryConfig(_Model):
    """Exponential backoff of webhook deliveries."""

    enabled: bool = True
    """Retry failed deliveries."""
    max_attempts: int = Field(5, ge=1)
    """Attempts in all, the first included; then the dead-letter queue."""
    initial_interval: PositiveDuration = timedelta(seconds=1)
    """Wait before the first retry."""
    max_interval: PositiveDuration = timedelta(minutes=5)
    """Longest wait between retries."""
    multiplier: float = Field(2.0, ge=1.0)
    """Growth of the wait after each failure."""


class CallbacksConfig(_Model):
    """Webhooks to the merchant's backend (payments, refunds, subscriptions)."""

    payment_success_url: str = ""
    """URL that receives a POST for each successful payment; empty = none."""
    refund_success_url: str = ""
    """URL for refund events; empty = `payment_success_url`."""
    subscription_url: str = ""
    """URL for subscription events; empty = `payment_success_url`."""
    headers: StrMap = secret(FrozenDict(), "values")  # often carries Authorization
    """Extra request headers (e.g. Authorization)."""
    body: str = ""
    """Static request body (for testing a receiver); empty = the event JSON."""
    body_template: str = ""
    """Template of the request body; empty = the event JSON."""
    timeout: PositiveDuration = timedelta(seconds=3)
    """HTTP timeout of one delivery."""
    retry: RetryConfig = RetryConfig()
    """Retries with exponential backoff."""
    dlq_enabled: bool = False
    """Keep deliveries that exhausted their retries in a dead-letter queue."""
    dlq_path: str = "./data/webhook-dlq.json"
    """File of the dead-letter queue."""
    poll_interval: PositiveDuration = timedelta(seconds=5)  # spec 20 queue worker
    """How often the delivery worker polls the queue (spec 20)."""
    backend: StorageBackend = "sqlite"  # spec 20's key; defaults to storage.backend
    """Webhook queue store; defaults to `storage.backend`."""
    hmac_secret: str = secret()  # signs X-Cedros-Signature when set (spec 13)
    """Signs each delivery (X-Cedros-Signature) when set (spec 13)."""

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        value = _lower(value)
        return "sqlite" if value == "file" else value


class MonitoringConfig(_Model):
    """Low-balance alerts for the server wallets (gasless fee payers)."""

    # The URL of a Discord/Slack webhook is itself a credential.
    low_balance_alert_url: str = secret("", "url")
    """Discord/Slack-style webhook alerted on a low balance; empty = off."""
    low_balance_threshold: float = Field(0.01, gt=0)  # SOL
    """Balance (SOL) below which a server wallet alerts."""
    check_interval: PositiveDuration = timedelta(minutes=15)
    """How often balances are checked."""
    timeout: PositiveDuration = timedelta(seconds=5)
    """HTTP timeout of an alert."""
    headers: StrMap = secret(FrozenDict(), "values")
    """Extra alert request headers."""
    body_template: str = ""
    """Alert body template; empty = a Discord-style `content` line."""


# --- rate limits, api keys, breakers, admin, tenancy -------------------------------


class RateLimitRule(_Model):
    """One token bucket: `limit` requests per `window`."""

    enabled: bool = True
    """Enforce this bucket."""
    limit: int = Field(0, ge=0)
    """Requests allowed per window."""
    window: PositiveDuration = timedelta(minutes=1)
    """Length of the window."""


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
    """One bucket for all requests."""
    per_wallet: RateLimitRule = RateLimitRule(limit=60)
    """A bucket per paying wallet."""
    per_ip: RateLimitRule = RateLimitRule(limit=120)
    """A bucket per client IP."""
    # Where buckets live: this process, or Redis (shared by every instance). Defaults to
    # redis when redis.url is set.
    backend: Annotated[SharedStateBackend, _LOWER] = "memory"
    """Where buckets live: `memory` (this process) or `redis` (every instance); redis when
    `redis.url` is set."""
    max_entries: int = Field(10_000, ge=1)  # memory backend: LRU beyond this many buckets
    """Memory backend: buckets kept (least recently used dropped beyond)."""
    cleanup_interval: PositiveDuration = timedelta(minutes=5)  # memory backend sweep
    """Memory backend: sweep of idle buckets."""

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        return nest_rate_limits(data)


class APIKeyConfig(_Model):
    """API keys (X-API-Key) and their rate-limit tiers (spec 13)."""

    enabled: bool = False
    """Read X-API-Key and apply its tier's rate limits."""
    keys: Annotated[Mapping[str, ApiKeyTier], AfterValidator(freeze)] = secret(
        FrozenDict(), "keys"
    )
    """API key -> tier (`free`, `pro`, `enterprise`, `partner`)."""

    @field_validator("keys", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): _lower(v) for k, v in value.items()}
        return value


class BreakerConfig(_Model):
    """One circuit breaker (spec 12): when it opens and how it recovers."""

    max_requests: int = Field(3, ge=1)  # allowed while half-open
    """Requests let through while half-open."""
    interval: Duration = timedelta(seconds=60)  # closed-state stats reset; 0 = never
    """Closed state: how often failure counts reset; 0 = never."""
    timeout: PositiveDuration = timedelta(seconds=30)  # open -> half-open
    """Open state: time before trying again (half-open)."""
    consecutive_failures: int = Field(5, ge=1)
    """Consecutive failures that open the breaker."""
    failure_ratio: float = Field(0.5, gt=0, le=1)
    """Failure ratio that opens it (after `min_requests`)."""
    min_requests: int = Field(10, ge=0)
    """Requests needed before the ratio counts."""


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
    """Circuit breakers around the outside services (spec 12)."""

    enabled: bool = True
    """Use circuit breakers."""
    solana_rpc: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["solana_rpc"])
    """Around the Solana RPC."""
    stripe_api: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["stripe_api"])
    """Around the Stripe API."""
    webhook: BreakerConfig = BreakerConfig(**_BREAKER_DEFAULTS["webhook"])
    """Around webhook deliveries."""

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
    """Ed25519 (Solana) public keys whose signed requests are admin."""
    api_keys: tuple[Annotated[str, AfterValidator(_check_admin_api_key)], ...] = secret(
        (), "list"
    )
    """Bearer keys that authorise admin requests."""

    @field_validator("public_keys", "api_keys", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class TenancyConfig(_Model):
    """Where a request's tenant comes from (spec 13), in priority order: the X-Tenant-ID
    header, a JWT claim, the subdomain, then `default_tenant` (single-tenant mode)."""

    default_tenant: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "default"
    """Tenant of requests that name none (single-tenant mode)."""
    header_enabled: bool = True
    """Read the tenant from the X-Tenant-ID header."""
    # HMAC secret for `Authorization: Bearer <jwt>`; the claim is read only when set.
    jwt_secret: str = secret()
    """HMAC secret (`jwt_algorithm`): the tenant comes from a Bearer JWT's claim when set."""
    jwt_claim: str = "tenant_id"
    """JWT claim holding the tenant id."""
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    """The one algorithm a tenant JWT may use; the token's own `alg` never chooses it."""
    jwt_audience: str = ""
    """When set, a tenant JWT must carry this `aud`; when unset, one carrying any is refused."""
    jwt_issuer: str = ""
    """When set, a tenant JWT must carry this `iss`."""
    # "pay.example.com": a request to acme.pay.example.com is tenant "acme".
    subdomain_base: Annotated[str, _LOWER] = ""
    """With `pay.example.com`, `acme.pay.example.com` is tenant `acme`."""

    @field_validator("subdomain_base", mode="after")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.strip(".")

    @model_validator(mode="after")
    def _secret_length(self) -> TenancyConfig:
        # RFC 7518 §3.2: an HMAC key at least as long as the hash output.
        need = int(self.jwt_algorithm[2:]) // 8
        if self.jwt_secret and len(self.jwt_secret.encode()) < need:
            raise ValueError(f"jwt_secret must be at least {need} bytes "
                             f"for {self.jwt_algorithm}")
        return self


class RedisConfig(_Model):
    """The Redis server that rate limits and idempotency share across instances."""

    url: str = secret("", "url")
    """Redis URL (`redis://host:6379/0`); rate limits and idempotency use it when set."""
    key_prefix: str = "cedros:"
    """Prefix of every Redis key."""

    @field_validator("url", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class IdempotencyConfig(_Model):
    """Idempotency-Key replay on the spec's idempotent POST endpoints (spec 10)."""

    enabled: bool = True
    """Replay answers to a repeated Idempotency-Key."""
    backend: Annotated[SharedStateBackend, _LOWER] = "memory"  # redis when redis.url is set
    """`memory` or `redis` (shared by instances); redis when `redis.url` is set."""
    ttl: PositiveDuration = timedelta(hours=24)
    """How long an answer is kept."""
    max_entries: int = Field(10_000, ge=1)  # memory backend: LRU beyond this many
    """Memory backend: answers kept (least recently used dropped beyond)."""
    cleanup_interval: PositiveDuration = timedelta(minutes=5)
    """Memory backend: sweep of expired answers."""
    # How long a request waits for an earlier one with the same key before a 409.
    wait: Duration = timedelta(seconds=10)
    """How long a request waits for an in-flight one with its key before a 409."""


class VersionDeprecation(_Model):
    """Deprecation headers sent for one API version."""

    since: AwareDatetime | None = None  # Deprecation: @<unix seconds> (RFC 9745)
    """Sent as `Deprecation: @<unix seconds>` (RFC 9745)."""
    sunset: AwareDatetime | None = None  # Sunset: <HTTP-date> (RFC 8594)
    """Sent as `Sunset: <HTTP-date>` (RFC 8594)."""
    link: str = ""  # Link: <url>; rel="deprecation"
    """Sent as `Link: <url>; rel="deprecation"`."""


class APIVersionConfig(_Model):
    """API version negotiation (spec 10): versions served, and which are deprecated."""

    current: int = Field(1, ge=1)  # used when a request asks for none
    """Version used when a request asks for none."""
    supported: tuple[int, ...] = (1,)
    """Versions served."""
    deprecated: Annotated[Mapping[int, VersionDeprecation], AfterValidator(freeze)] = (
        FrozenDict())
    """Version -> its deprecation headers."""

    @field_validator("supported", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, int):
            return (value,)
        return split_commas(value)


class GraphQLConfig(_Model):
    """The GraphQL endpoint (`{prefix}/graphql`)."""

    result_cache: bool = True
    """Keep the answers of catalog-only queries (`products`) with the catalog snapshot
    they were made from; off, every such query is executed (benchmarks, debugging)."""


# --- the root ----------------------------------------------------------------------


class Config(_Model):
    """The whole configuration: one section per top-level YAML key."""

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
    graphql: GraphQLConfig = GraphQLConfig()

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


def mask_url(text: str) -> str:
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
        return mask_url(value)
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

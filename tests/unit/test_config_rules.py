"""Validation rules: one bad input -> its problem line (spec 17, spec 09, spec 13)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import base58
import pytest
import yaml
from solders.keypair import Keypair

from cedros_pay.config import (
    DEVNET_USDC_MINT,
    Config,
    ConfigError,
    CouponConfig,
    ResourceConfig,
    ResourceSubscriptionConfig,
    find_problems,
    load_config,
    validate_config,
)
from cedros_pay.core.errors import CedrosError
from cedros_pay.schema.inputs import CouponInput, ProductInput
from cedros_pay.schema.types.enums import CouponScope, DiscountType

PAY_TO = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
WSOL = "So11111111111111111111111111111111111111112"
PG = "postgresql://u:p@db/pay"

BASE: dict[str, Any] = {
    "x402": {
        "payment_address": PAY_TO,
        "token_mint": USDC,
        "rpc_url": "https://api.mainnet-beta.solana.com",
    },
    "paywall": {"resources": {"article": {"crypto_atomic_amount": 1_000_000}}},
}


@dataclass(frozen=True)
class Replace:
    """In a patch: put this value instead of merging into the base's mapping."""

    value: Any


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, Replace):
            out[key] = value.value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def problems_for(tmp_path: Path, patch: dict[str, Any],
                 env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merged(BASE, patch)))
    try:
        load_config(path, environ=env or {})
    except ConfigError as exc:
        return exc.problems
    return []


def wallet_env() -> dict[str, str]:
    return {"X402_SERVER_WALLET_1": base58.b58encode(bytes(Keypair())).decode()}


LONG_ID = "p" * 256

# (id, patch, env, expected line). An expected line ending in "..." is a prefix.
RULES: list[tuple[str, dict[str, Any], dict[str, str] | None, str]] = [
    # spec 17, with its messages
    ("stripe-publishable-without-secret", {"stripe": {"publishable_key": "pk_test_1"}}, None,
     "stripe.secret_key is required when publishable key is set"),
    ("payment-address-required", {"x402": {"payment_address": ""}}, None,
     "x402.payment_address is required"),
    ("payment-address-invalid", {"x402": {"payment_address": "recipient-wallet"}}, None,
     "x402.payment_address: invalid Solana address 'recipient-wallet' (want base58 of 32 bytes)"),
    ("token-mint-required", {"x402": {"token_mint": ""}}, None, "x402.token_mint is required"),
    ("token-mint-unknown", {"x402": {"token_mint": WSOL}}, None,
     f"x402.token_mint validation failed: '{WSOL}' is not a supported stablecoin mint on "
     "mainnet-beta; use one of: USDC EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v, ..."),
    ("devnet-usdc-on-mainnet", {"x402": {"token_mint": DEVNET_USDC_MINT}}, None,
     f"x402.token_mint validation failed: '{DEVNET_USDC_MINT}' is not a supported ..."),
    ("rpc-url-required", {"x402": {"rpc_url": ""}}, None, "x402.rpc_url is required"),
    ("rpc-url-scheme", {"x402": {"rpc_url": "ftp://rpc.test"}}, None,
     "x402.rpc_url: must be an http(s) URL, got 'ftp://rpc.test'"),
    ("gasless-without-wallets", {"x402": {"gasless_enabled": True}}, None,
     "x402.server_wallet_keys required when gasless_enabled or auto_create_token_account is "
     "enabled (set X402_SERVER_WALLET_1, X402_SERVER_WALLET_2, ...)"),
    ("auto-create-without-wallets", {"x402": {"auto_create_token_account": True}}, None,
     "x402.server_wallet_keys required when gasless_enabled..."),
    ("yaml-source-without-resources", {"paywall": {"resources": Replace({})}}, None,
     "paywall.resources must define at least one resource when product_source is 'yaml'"),
    ("resource-without-price", {"paywall": {"resources": {"free": {"description": "x"}}}}, None,
     "paywall.resources.free: must define fiat_amount_cents, crypto_atomic_amount, "
     "or stripe_price_id"),
    # x402 extras
    ("token-decimals-mismatch", {"x402": {"token_decimals": 9}}, None,
     "x402.token_decimals: USDC has 6 decimals, got 9"),
    ("allowed-token-unknown", {"x402": {"allowed_tokens": ["USDC", "BONK"]}}, None,
     "x402.allowed_tokens: unknown token symbol(s) BONK (want USDC, USDT, PYUSD, CASH)"),
    ("ws-url-scheme", {"x402": {"ws_url": "http://rpc.test"}}, None,
     "x402.ws_url: must be a ws:// or wss:// URL, got 'http://rpc.test'"),
    ("network-unknown", {"x402": {"network": "mainnet"}}, None,
     "x402.network: input should be 'mainnet-beta', 'devnet', 'testnet' or 'localnet', "
     "got 'mainnet'"),
    ("commitment-unknown", {"x402": {"commitment": "instant"}}, None,
     "x402.commitment: input should be 'processed', 'confirmed' or 'finalized', got 'instant'"),
    ("rounding-mode-unknown", {"x402": {"rounding_mode": "floor"}}, None,
     "x402.rounding_mode: input should be 'standard' or 'ceiling', got 'floor'"),
    ("compute-unit-limit-zero", {"x402": {"compute_unit_limit": 0}}, None,
     "x402.compute_unit_limit: input should be greater than or equal to 1, got 0"),
    # stripe extras
    ("stripe-live-key-in-test-mode", {"stripe": {"secret_key": "sk_live_x"}}, None,
     "stripe.mode is 'test' but stripe.secret_key is a live key"),
    ("stripe-test-key-in-live-mode", {"stripe": {"secret_key": "sk_test_x", "mode": "live"}},
     None, "stripe.mode is 'live' but stripe.secret_key is a test key"),
    ("stripe-mode-unknown", {"stripe": {"mode": "prod"}}, None,
     "stripe.mode: input should be 'test' or 'live', got 'prod'"),
    ("stripe-success-url", {"stripe": {"success_url": "/ok"}}, None,
     "stripe.success_url: must be an http(s) URL, got '/ok'"),
    # products
    ("resource-id-differs", {"paywall": {"resources": {"article": {"resource_id": "other"}}}},
     None, "paywall.resources.article: resource_id 'other' differs from its key 'article'"),
    ("resource-currency", {"paywall": {"resources": {"article": {"fiat_currency": "dollars"}}}},
     None, "paywall.resources.article.fiat_currency: want a 3-letter ISO code, got 'dollars'"),
    ("resource-token-not-allowed",
     {"paywall": {"resources": {"article": {"crypto_token": "USDT"}}}}, None,
     "paywall.resources.article.crypto_token: 'USDT' is not in x402.allowed_tokens"),
    ("resource-crypto-account", {"paywall": {"resources": {"article": {"crypto_account": "x"}}}},
     None, "paywall.resources.article.crypto_account: invalid Solana address 'x'"),
    ("resource-id-too-long",
     {"paywall": {"resources": {LONG_ID: {"crypto_atomic_amount": 1}}}}, None,
     f"paywall.resources.{LONG_ID}: product id must be 1 to 255 characters long"),
    ("resource-negative-amount",
     {"paywall": {"resources": {"article": {"fiat_amount_cents": -1}}}}, None,
     "paywall.resources.article.fiat_amount_cents: input should be greater than or equal "
     "to 0, got -1"),
    ("resource-billing-period",
     {"paywall": {"resources": {"article": {"subscription": {"billing_period": "fortnight"}}}}},
     None, "paywall.resources.article.subscription.billing_period: input should be 'day', "
           "'week', 'month' or 'year', got 'fortnight'"),
    ("resource-billing-interval",
     {"paywall": {"resources": {"article": {"subscription": {
         "billing_period": "month", "billing_interval": 0}}}}},
     None, "paywall.resources.article.subscription.billing_interval: input should be greater "
           "than or equal to 1, got 0"),
    ("resource-list-without-id",
     {"paywall": {"resources": Replace([{"crypto_atomic_amount": 1}])}}, None,
     "paywall.resources: item 0 has no id or resource_id"),
    ("resource-list-duplicate",
     {"paywall": {"resources": Replace([{"id": "a", "crypto_atomic_amount": 1},
                                        {"id": "a", "crypto_atomic_amount": 2}])}}, None,
     "paywall.resources: duplicate product id 'a'"),
    # coupons
    ("coupon-type-required", {"coupons": {"coupons": {"X": {"discount_value": 1}}}}, None,
     "coupons.coupons.X.discount_type is required"),
    ("coupon-code-differs", {"coupons": {"coupons": {"X": {
        "code": "Y", "discount_type": "fixed", "discount_value": 1}}}}, None,
     "coupons.coupons.X: code 'Y' differs from its key 'X'"),
    ("coupon-percentage-range", {"coupons": {"coupons": {"X": {
        "discount_type": "percentage", "discount_value": 120}}}}, None,
     "coupons.coupons.X.discount_value: a percentage must be above 0 and at most 100, got 120"),
    ("coupon-fixed-positive", {"coupons": {"coupons": {"X": {
        "discount_type": "fixed", "discount_value": 0}}}}, None,
     "coupons.coupons.X.discount_value: a fixed discount must be above 0, got 0"),
    ("coupon-specific-needs-products", {"coupons": {"coupons": {"X": {
        "discount_type": "fixed", "discount_value": 1, "scope": "specific"}}}}, None,
     "coupons.coupons.X.product_ids: required when scope is 'specific'"),
    ("coupon-dates-order", {"coupons": {"coupons": {"X": {
        "discount_type": "fixed", "discount_value": 1, "starts_at": "2026-01-01T00:00:00Z",
        "expires_at": "2025-01-01T00:00:00Z"}}}}, None,
     "coupons.coupons.X.expires_at: must be after starts_at"),
    ("coupon-payment-method", {"coupons": {"coupons": {"X": {
        "discount_type": "fixed", "discount_value": 1, "payment_method": "cash"}}}}, None,
     "coupons.coupons.X.payment_method: input should be '', 'stripe' or 'x402', got 'cash'"),
    ("coupon-source-unknown", {"coupons": {"coupon_source": "redis"}}, None,
     "coupons.coupon_source: input should be 'yaml', 'postgres', 'mongodb', 'sqlite' or "
     "'disabled', got 'redis'"),
    # storage and databases
    ("postgres-needs-url", {"storage": {"backend": "postgres"}}, None,
     "storage.postgres_url is required when storage.backend is 'postgres'"),
    ("postgres-url-scheme", {"storage": {"backend": "postgres",
                                         "postgres_url": "mysql://u:hunter2@h/db"}}, None,
     "storage.postgres_url: must be a postgres:// or postgresql:// URL"),
    ("mongodb-needs-url", {"storage": {"backend": "mongodb", "mongodb_database": "d"}}, None,
     "storage.mongodb_url is required when storage.backend is 'mongodb'"),
    ("mongodb-needs-database", {"storage": {"backend": "mongodb",
                                            "mongodb_url": "mongodb://h"}}, None,
     "storage.mongodb_database is required when storage.backend is 'mongodb'"),
    ("sqlite-needs-file", {"storage": {"backend": "file", "file_path": " "}}, None,
     "storage.file_path is required when storage.backend is 'sqlite'"),
    ("backend-unknown", {"storage": {"backend": "redis"}}, None,
     "storage.backend: input should be 'memory', 'sqlite', 'postgres' or 'mongodb', "
     "got 'redis'"),
    ("backend-ambiguous", {"storage": {"postgres_url": PG, "mongodb_url": "mongodb://h"}}, None,
     "storage: both postgres_url and mongodb_url are set; choose one with storage.backend"),
    ("product-source-postgres-needs-url", {"paywall": {"product_source": "postgres"}}, None,
     "paywall.postgres_url is required when paywall.product_source is 'postgres'"),
    ("coupon-source-mongodb-needs-url",
     {"coupons": {"coupon_source": "mongodb", "mongodb_database": "promo"}}, None,
     "coupons.mongodb_url is required when coupons.coupon_source is 'mongodb'"),
    ("product-source-sqlite-needs-sqlite",
     {"storage": {"backend": "postgres", "postgres_url": PG},
      "paywall": {"product_source": "sqlite"}}, None,
     "paywall.product_source: 'sqlite' needs storage.backend 'sqlite', not 'postgres'"),
    ("subscriptions-postgres-needs-url",
     {"subscriptions": {"enabled": True, "backend": "postgres"}}, None,
     "subscriptions.postgres_url is required when subscriptions.backend is 'postgres'"),
    ("subscriptions-backend-follows-storage", {"subscriptions": {"backend": "mongodb"}}, None,
     "subscriptions.backend: 'mongodb' needs storage.backend 'mongodb', not 'sqlite'"),
    ("pool-idle-exceeds-open",
     {"storage": {"postgres_pool": {"max_open_conns": 5, "max_idle_conns": 10}}}, None,
     "storage.postgres_pool.max_idle_conns (10) exceeds max_open_conns (5)"),
    ("table-name-injection",
     {"storage": {"schema_mapping": {"payments": {"table_name": "pay; DROP TABLE x"}}}}, None,
     "storage.schema_mapping.payments.table_name: invalid table name 'pay; DROP TABLE x' ..."),
    ("table-name-too-long",
     {"storage": {"schema_mapping": {"coupons": {"table_name": "t" * 64}}}}, None,
     f"storage.schema_mapping.coupons.table_name: invalid table name '{'t' * 64}' ..."),
    ("table-name-three-parts",
     {"storage": {"schema_mapping": {"sessions": "a.b.c"}}}, None,
     "storage.schema_mapping.sessions.table_name: invalid table name 'a.b.c' ..."),
    ("schema-mapping-unknown", {"storage": {"schema_mapping": {"carts": "x"}}}, None,
     "storage.schema_mapping.carts: unknown key"),
    ("cart-quote-ttl-invalid", {"storage": {"cart_quote_ttl": "abc"}}, None,
     "storage.cart_quote_ttl: invalid duration 'abc'"),
    ("cart-quote-ttl-negative", {"storage": {"cart_quote_ttl": "-5m"}}, None,
     "storage.cart_quote_ttl: duration must be greater than 0, got '-5m'"),
    ("cache-ttl-negative", {"coupons": {"cache_ttl": "-1s"}}, None,
     "coupons.cache_ttl: duration must not be negative, got '-1s'"),
    # server, logging
    ("address-invalid", {"server": {"address": "8080"}}, None,
     "server.address: invalid listen address '8080' (want host:port, e.g. ':8080')"),
    ("address-port-range", {"server": {"address": ":70000"}}, None,
     "server.address: invalid listen address ':70000' (want host:port, e.g. ':8080')"),
    ("route-prefix-invalid", {"server": {"route_prefix": "/a b"}}, None,
     "server.route_prefix: invalid route prefix '/a b' (path segments of URL-safe characters)"),
    ("cors-origin-invalid", {"server": {"cors_allowed_origins": ["localhost:3000"]}}, None,
     "server.cors_allowed_origins[0]: invalid CORS origin 'localhost:3000' "
     "(want '*' or scheme://host[:port])"),
    ("trusted-proxy-invalid", {"server": {"trusted_proxies": ["10.0.0.0/33"]}}, None,
     "server.trusted_proxies[0]: invalid IP address or CIDR '10.0.0.0/33'"),
    ("logging-format", {"logging": {"format": "xml"}}, None,
     "logging.format: input should be 'json' or 'console', got 'xml'"),
    ("logging-level", {"logging": {"level": "trace"}}, None,
     "logging.level: input should be 'debug', 'info', 'warn' or 'error', got 'trace'"),
    # rate limits, api keys, breakers
    ("rate-limit-zero", {"rate_limit": {"per_ip": {"limit": 0}}}, None,
     "rate_limit.per_ip.limit must be greater than 0 when enabled"),
    ("rate-limit-zero-flat", {"rate_limit": {"global_limit": 0}}, None,
     "rate_limit.global.limit must be greater than 0 when enabled"),
    ("rate-limit-both-forms", {"rate_limit": {"global": {"limit": 5}, "global_limit": 6}}, None,
     "rate_limit: both global.limit and global_limit are set; use one form"),
    ("api-key-tier", {"api_key": {"keys": {"abcdefgh": "gold"}}}, None,
     "api_key.keys.abcd***: input should be 'free', 'pro', 'enterprise' or 'partner'"),
    ("breaker-ratio", {"circuit_breaker": {"webhook": {"failure_ratio": 1.5}}}, None,
     "circuit_breaker.webhook.failure_ratio: input should be less than or equal to 1, got 1.5"),
    # callbacks, monitoring
    ("callback-url", {"callbacks": {"payment_success_url": "hooks.test/pay"}}, None,
     "callbacks.payment_success_url: must be an http(s) URL, got 'hooks.test/pay'"),
    ("retry-intervals", {"callbacks": {"retry": {"initial_interval": "10m"}}}, None,
     "callbacks.retry.initial_interval: must not exceed retry.max_interval"),
    ("retry-attempts", {"callbacks": {"retry": {"max_attempts": 0}}}, None,
     "callbacks.retry.max_attempts: input should be greater than or equal to 1, got 0"),
    ("dlq-path", {"callbacks": {"dlq_enabled": True, "dlq_path": ""}}, None,
     "callbacks.dlq_path is required when dlq_enabled is true"),
    ("alert-url", {"monitoring": {"low_balance_alert_url": "discord"}}, None,
     "monitoring.low_balance_alert_url: must be an http(s) URL"),
    ("threshold-below-critical",
     {"x402": {"gasless_enabled": True},
      "monitoring": {"low_balance_alert_url": "https://hooks.test/a",
                     "low_balance_threshold": 0.0005}}, wallet_env(),
     "monitoring.low_balance_threshold (0.000500 SOL) is below the critical wallet balance "
     "(0.001000 SOL): alerts would arrive after wallets are disabled; use 0.005000 SOL or more"),
    ("threshold-positive", {"monitoring": {"low_balance_threshold": 0}}, None,
     "monitoring.low_balance_threshold: input should be greater than 0, got 0"),
    # admin, tenancy, unknown keys
    ("admin-public-key", {"admin": {"public_keys": ["nope"]}}, None,
     "admin.public_keys[0]: invalid Solana address 'nope' (want base58 of 32 bytes)"),
    ("admin-api-key-empty", {"admin": {"api_keys": ["  "]}}, None,
     "admin.api_keys[0]: admin API keys must not be empty"),
    ("tenant-id", {"tenancy": {"default_tenant": "a b"}}, None,
     "tenancy.default_tenant: string should match pattern '^[A-Za-z0-9_-]{1,64}$', got 'a b'"),
    ("unknown-key", {"x402": {"tokn_mint": USDC}}, None, "x402.tokn_mint: unknown key"),
    ("unknown-section", {"paywal": {}}, None, "paywal: unknown key"),
    ("section-not-a-mapping", {"logging": "debug"}, None,
     "logging: input should be a valid dictionary or instance of LoggingConfig, got 'debug'"),
    ("products-alias-disagrees",
     {"products": {"cache_ttl": "1m"}, "paywall": {"product_cache_ttl": "2m"}}, None,
     "products.cache_ttl and paywall.product_cache_ttl disagree; set only one"),
    ("products-unknown-key", {"products": {"size": 3}}, None, "products.size: unknown key"),
]


@pytest.mark.parametrize(("patch", "env", "expected"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_rule(tmp_path: Path, patch: dict[str, Any], env: dict[str, str] | None,
              expected: str) -> None:
    found = problems_for(tmp_path, patch, env)
    assert len(found) == 1, found
    if expected.endswith("..."):
        assert found[0].startswith(expected[:-3]), found
    else:
        assert found == [expected]


def test_devnet_usdc_hint_on_mainnet(tmp_path: Path) -> None:
    [line] = problems_for(tmp_path, {"x402": {"token_mint": DEVNET_USDC_MINT}})
    assert line.endswith("(devnet USDC only on devnet/testnet)")


@pytest.mark.parametrize("network", ["devnet", "testnet", "localnet"])
def test_devnet_usdc_accepted_on_dev_networks(tmp_path: Path, network: str) -> None:
    assert problems_for(tmp_path, {"x402": {"network": network,
                                            "token_mint": DEVNET_USDC_MINT}}) == []


@pytest.mark.parametrize("mint", [
    "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
    "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo", "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH"])
def test_every_spec_stablecoin_accepted_on_mainnet(tmp_path: Path, mint: str) -> None:
    assert problems_for(tmp_path, {"x402": {"token_mint": mint,
                                            "allowed_tokens": ["USDC", "USDT", "PYUSD", "CASH"]}}
                        ) == []


def test_safe_table_names_accepted(tmp_path: Path) -> None:
    assert problems_for(tmp_path, {"storage": {"schema_mapping": {
        "payments": "billing.payment_transactions", "products": "_Products2"}}}) == []


def test_gasless_with_a_wallet_passes(tmp_path: Path) -> None:
    assert problems_for(tmp_path, {"x402": {"gasless_enabled": True}}, wallet_env()) == []


def test_database_sources_need_no_yaml_resources(tmp_path: Path) -> None:
    assert problems_for(tmp_path, {
        "storage": {"backend": "postgres", "postgres_url": PG},
        "paywall": {"resources": Replace({})}}) == []


def test_all_problems_are_collected_at_once(tmp_path: Path) -> None:
    found = problems_for(tmp_path, {
        "x402": {"payment_address": "", "token_mint": WSOL, "gasless_enabled": True},
        "stripe": {"publishable_key": "pk_test_1"},
        "storage": {"cart_quote_ttl": "soon", "backend": "postgres"},
        "server": {"address": "nowhere"},
        "paywall": {"resources": {"free": {"description": "no price"}}},
    }, env={"CALLBACK_TIMEOUT": "later"})
    assert found[0] == "CALLBACK_TIMEOUT: invalid duration 'later'"
    assert set(found) >= {
        "server.address: invalid listen address 'nowhere' (want host:port, e.g. ':8080')",
        "storage.cart_quote_ttl: invalid duration 'soon'",
        "stripe.secret_key is required when publishable key is set",
        "x402.payment_address is required",
        "paywall.resources.free: must define fiat_amount_cents, crypto_atomic_amount, "
        "or stripe_price_id",
        "storage.postgres_url is required when storage.backend is 'postgres'",
    }
    assert any(p.startswith("x402.token_mint validation failed") for p in found)
    assert any(p.startswith("x402.server_wallet_keys required") for p in found)
    assert len(found) == len(set(found)) == 9


def test_a_malformed_value_is_reported_once(tmp_path: Path) -> None:
    # Dropping the bad amount must not add "must define ..." for the same product.
    assert problems_for(tmp_path, {"paywall": {"resources": {"article": {
        "crypto_atomic_amount": "lots"}}}}) == [
        "paywall.resources.article.crypto_atomic_amount: input should be a valid integer, "
        "unable to parse string as an integer, got 'lots'"]


def test_problem_lines_never_show_secrets(tmp_path: Path) -> None:
    found = problems_for(tmp_path, {
        "storage": {"backend": "postgres", "postgres_url": "mysql://u:hunter2@h/db"},
        "stripe": {"secret_key": ["sk_live_hunter2"]}})
    assert found
    assert not any("hunter2" in line for line in found)


def test_validate_config_for_configs_built_in_code() -> None:
    cfg = Config(x402={"payment_address": PAY_TO, "token_mint": USDC,
                       "rpc_url": "http://127.0.0.1:8899", "network": "localnet"},
                 storage={"backend": "memory"},
                 paywall={"resources": [{"id": "a", "crypto_atomic_amount": 1}]})
    assert validate_config(cfg) is cfg
    assert cfg.x402.ws_url == "ws://127.0.0.1:8899"
    assert cfg.paywall.resources["a"].crypto_token == "USDC"
    with pytest.raises(ConfigError) as info:
        validate_config(Config())
    assert "x402.payment_address is required" in info.value.problems
    assert find_problems(cfg) == []


def test_startup_warnings_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cedros_pay.config"):
        problems_for(tmp_path, {
            "x402": {"gasless_enabled": True},
            "monitoring": {"low_balance_alert_url": "https://hooks.test/a",
                           "low_balance_threshold": 0.002},
            "storage": {"backend": "memory"},
            "api_key": {"enabled": True},
            "coupons": {"coupons": {"X": {"discount_type": "fixed", "discount_value": 1,
                                          "scope": "specific", "product_ids": ["ghost"]}}},
        }, env=wallet_env())
    text = caplog.text
    assert "monitoring.low_balance_threshold (0.002000 SOL) is below 0.005000 SOL" in text
    assert "storage.backend is 'memory'" in text
    assert "api_key.enabled is true but api_key.keys is empty" in text
    assert "coupons.coupons.X.product_ids: unknown product(s) ghost" in text
    assert "no admin keys configured" in text


def _leaf_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _leaf_paths(value, (*prefix, key))
    return out


def _put(data: dict[str, Any], keys: tuple[str, ...], value: object) -> None:
    for key in keys[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[keys[-1]] = value


def test_odd_values_anywhere_become_problem_lines(tmp_path: Path) -> None:
    """Whatever type a YAML value has, the loader answers with ConfigError, nothing else."""
    tree = Config().redacted()
    tree["paywall"]["resources"] = {"article": dict.fromkeys(ResourceConfig.model_fields)}
    tree["coupons"]["coupons"] = {"C": dict.fromkeys(CouponConfig.model_fields)}
    tree["paywall"]["resources"]["article"]["subscription"] = dict.fromkeys(
        ResourceSubscriptionConfig.model_fields)
    path = tmp_path / "odd.yaml"
    for keys in _leaf_paths(tree):
        for value in ("x", [1], {"a": 1}, True):
            data = copy.deepcopy(BASE)
            _put(data, keys, value)
            path.write_text(yaml.safe_dump(data))
            try:
                load_config(path, environ={})
            except ConfigError as exc:
                assert exc.problems


# --- one set of catalog rules: the YAML catalog and the GraphQL admin inputs agree ----------


def config_problems(tmp_path: Path, coupon: dict[str, Any]) -> list[str]:
    return problems_for(tmp_path, {"coupons": {"coupons": {"X": coupon}}})


def graphql_refusal(coupon: CouponInput) -> dict[str, Any] | None:
    try:
        coupon.to_domain("default")
    except CedrosError as exc:
        return exc.details
    return None


@pytest.mark.parametrize(("kind", "value"), [
    ("percentage", "0"), ("percentage", "100.5"), ("percentage", "-5"), ("fixed", "0"),
])
def test_a_discount_refused_by_the_config_is_refused_by_graphql(
        tmp_path: Path, kind: str, value: str) -> None:
    problems = config_problems(tmp_path, {"discount_type": kind,
                                          "discount_value": float(value)})
    assert [p for p in problems if p.startswith("coupons.coupons.X.discount_value: ")]
    refusal = graphql_refusal(CouponInput(code="X", discount_type=DiscountType(kind),
                                          discount_value=Decimal(value)))
    assert refusal == {"field": "discountValue"}


@pytest.mark.parametrize(("kind", "value"), [
    ("percentage", "100"), ("percentage", "0.5"), ("fixed", "0.01"),
])
def test_a_discount_the_config_accepts_graphql_accepts(
        tmp_path: Path, kind: str, value: str) -> None:
    assert config_problems(tmp_path, {"discount_type": kind,
                                      "discount_value": float(value)}) == []
    assert graphql_refusal(CouponInput(code="X", discount_type=DiscountType(kind),
                                       discount_value=Decimal(value))) is None


def test_specific_scope_and_dates_are_refused_by_both(tmp_path: Path) -> None:
    problems = config_problems(tmp_path, {
        "discount_type": "fixed", "discount_value": 1, "scope": "specific",
        "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2025-01-01T00:00:00Z"})
    assert {p.split(":")[0] for p in problems} >= {
        "coupons.coupons.X.product_ids", "coupons.coupons.X.expires_at"}
    scoped = CouponInput(code="X", discount_type=DiscountType.FIXED,
                         discount_value=Decimal(1), scope=CouponScope.SPECIFIC)
    assert graphql_refusal(scoped) == {"field": "productIds"}


def test_a_product_without_any_price_is_refused_by_both(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, {"paywall": {"resources": {"free": {"description": "x"}}}})
    assert any(p.startswith("paywall.resources.free: must define") for p in problems)
    with pytest.raises(CedrosError) as refused:
        ProductInput(id="free", description="x").to_domain("default")
    assert refused.value.details == {"field": "fiatAmount"}

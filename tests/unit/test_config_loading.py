"""Loading: YAML, env, precedence, defaults, shapes DESIGN §7 accepts, reference files."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import base58
import pytest
import yaml
from pydantic import ValidationError
from solders.keypair import Keypair

from cedros_pay.config import (
    DEVNET_USDC_MINT,
    Config,
    ConfigError,
    format_duration,
    load_config,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "specs" / "reference-config.example.yaml"
DEMO = REPO / "configs" / "demo.yaml"

PAY_TO = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"

# The smallest file that passes every rule.
BASE: dict[str, Any] = {
    "x402": {
        "payment_address": PAY_TO,
        "token_mint": USDC,
        "rpc_url": "https://api.mainnet-beta.solana.com",
    },
    "paywall": {"resources": {"article": {"crypto_atomic_amount": 1_000_000}}},
}
# The same through environment variables only; the catalog then lives in a database.
BASE_ENV = {
    "CEDROS_X402_PAYMENT_ADDRESS": PAY_TO,
    "CEDROS_X402_TOKEN_MINT": USDC,
    "CEDROS_X402_RPC_URL": "https://rpc.example.com",
    "POSTGRES_URL": "postgresql://cedros:hunter2@db.internal:5432/cedros",
}


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def load(tmp_path: Path, patch: dict[str, Any] | None = None,
         env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merged(BASE, patch or {})))
    return load_config(path, environ=env or {})


# --- sources and precedence --------------------------------------------------------


def test_yaml_only_sets_values(tmp_path: Path) -> None:
    cfg = load(tmp_path, {
        "server": {"address": "127.0.0.1:9000", "read_timeout": "30s",
                   "cors_allowed_origins": ["https://shop.example"]},
        "logging": {"level": "debug", "format": "console"},
        "x402": {"network": "mainnet-beta", "memo_prefix": "shop", "commitment": "finalized"},
        "storage": {"cart_quote_ttl": "20m"},
    })
    assert cfg.server.address == "127.0.0.1:9000"
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 9000)
    assert cfg.server.read_timeout == timedelta(seconds=30)
    assert cfg.server.cors_allowed_origins == ("https://shop.example",)
    assert (cfg.logging.level, cfg.logging.format) == ("debug", "console")
    assert cfg.x402.memo_prefix == "shop"
    assert cfg.x402.commitment == "finalized"
    assert cfg.storage.cart_quote_ttl == timedelta(minutes=20)
    assert cfg.paywall.resources["article"].crypto_atomic_amount == 1_000_000


def test_env_only_without_a_file() -> None:
    cfg = load_config(None, environ=BASE_ENV)
    assert cfg.x402.payment_address == PAY_TO
    assert cfg.x402.rpc_url == "https://rpc.example.com"
    assert cfg.x402.ws_url == "wss://rpc.example.com"
    # POSTGRES_URL selects postgres, and the catalog follows storage (spec 09).
    assert cfg.storage.backend == "postgres"
    assert cfg.paywall.product_source == "postgres"
    assert cfg.coupons.coupon_source == "postgres"
    assert cfg.paywall.postgres_url == BASE_ENV["POSTGRES_URL"]


def test_env_overrides_yaml(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"server": {"address": ":7000", "route_prefix": "/yaml"},
                          "x402": {"memo_prefix": "from-yaml", "gasless_enabled": False},
                          "callbacks": {"timeout": "10s"}},
               env={"CEDROS_SERVER_ADDRESS": ":9999", "CEDROS_X402_MEMO_PREFIX": "from-env",
                    "CALLBACK_TIMEOUT": "7s", "CEDROS_ROUTE_PREFIX": "env/"})
    assert cfg.server.address == ":9999"
    assert cfg.server.route_prefix == "/env"
    assert cfg.x402.memo_prefix == "from-env"
    assert cfg.callbacks.timeout == timedelta(seconds=7)


def test_empty_env_value_counts_as_unset(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"x402": {"memo_prefix": "kept"}}, env={"CEDROS_X402_MEMO_PREFIX": ""})
    assert cfg.x402.memo_prefix == "kept"


def test_dotenv_fills_only_unset_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(BASE))
    dotenv = tmp_path / ".env"
    dotenv.write_text("CEDROS_X402_MEMO_PREFIX=from-dotenv\nCEDROS_SERVER_ADDRESS=:1111\n")
    monkeypatch.setenv("CEDROS_SERVER_ADDRESS", ":2222")
    monkeypatch.delenv("CEDROS_X402_MEMO_PREFIX", raising=False)
    cfg = load_config(config, dotenv_path=str(dotenv))
    assert cfg.x402.memo_prefix == "from-dotenv"
    assert cfg.server.address == ":2222"  # the process environment wins


def test_explicit_environ_ignores_process_env_and_dotenv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(BASE))
    dotenv = tmp_path / ".env"
    dotenv.write_text("CEDROS_X402_MEMO_PREFIX=from-dotenv\n")
    monkeypatch.setenv("CEDROS_SERVER_ADDRESS", ":2222")
    cfg = load_config(config, environ={}, dotenv_path=str(dotenv))
    assert cfg.x402.memo_prefix == "cedros"
    assert cfg.server.address == ":8080"


# --- defaults ----------------------------------------------------------------------

DEFAULTS: list[tuple[str, object]] = [
    ("server.address", ":8080"),
    ("server.route_prefix", ""),
    ("server.read_timeout", timedelta(seconds=15)),
    ("server.write_timeout", timedelta(seconds=15)),
    ("server.idle_timeout", timedelta(seconds=60)),
    ("server.cors_allowed_origins", ()),
    ("server.admin_metrics_api_key", ""),
    ("server.trusted_proxies", ()),
    ("logging.level", "info"),
    ("logging.format", "json"),
    ("logging.environment", "production"),
    ("stripe.mode", "test"),
    ("stripe.secret_key", ""),
    ("x402.network", "mainnet-beta"),
    ("x402.ws_url", "wss://api.mainnet-beta.solana.com"),
    ("x402.memo_prefix", "cedros"),
    ("x402.skip_preflight", False),
    ("x402.commitment", "confirmed"),
    ("x402.gasless_enabled", False),
    ("x402.auto_create_token_account", False),
    ("x402.server_wallets", ()),
    ("x402.token_decimals", 6),
    ("x402.allowed_tokens", ("USDC",)),
    ("x402.tx_queue_min_time_between", timedelta(0)),
    ("x402.tx_queue_max_in_flight", 0),
    ("x402.compute_unit_limit", 200_000),
    ("x402.compute_unit_price_micro_lamports", 1),
    ("x402.rounding_mode", "standard"),
    ("storage.backend", "sqlite"),
    ("storage.file_path", "./data/cedros-pay.db"),
    ("storage.postgres_pool.max_open_conns", 25),
    ("storage.postgres_pool.max_idle_conns", 5),
    ("storage.postgres_pool.conn_max_lifetime", timedelta(minutes=5)),
    ("storage.cart_quote_ttl", timedelta(minutes=15)),
    ("storage.refund_quote_ttl", timedelta(minutes=15)),
    ("storage.cleanup_interval", timedelta(minutes=5)),
    ("storage.archival.enabled", False),
    ("storage.archival.retention_period", timedelta(days=90)),
    ("storage.archival.run_interval", timedelta(hours=24)),
    ("paywall.quote_ttl", timedelta(minutes=5)),
    ("paywall.product_source", "yaml"),
    ("paywall.product_cache_ttl", timedelta(minutes=5)),
    ("paywall.mongodb_collection", "products"),
    ("coupons.coupon_source", "yaml"),
    ("coupons.cache_ttl", timedelta(minutes=1)),
    ("coupons.mongodb_collection", "coupons"),
    ("subscriptions.enabled", False),
    ("subscriptions.backend", "sqlite"),
    ("subscriptions.grace_period_hours", 0),
    ("callbacks.timeout", timedelta(seconds=3)),
    ("callbacks.retry.enabled", True),
    ("callbacks.retry.max_attempts", 5),
    ("callbacks.retry.initial_interval", timedelta(seconds=1)),
    ("callbacks.retry.max_interval", timedelta(minutes=5)),
    ("callbacks.retry.multiplier", 2.0),
    ("callbacks.dlq_enabled", False),
    ("callbacks.dlq_path", "./data/webhook-dlq.json"),
    ("monitoring.low_balance_threshold", 0.01),
    ("monitoring.check_interval", timedelta(minutes=15)),
    ("monitoring.timeout", timedelta(seconds=5)),
    ("rate_limit.global_.limit", 1000),
    ("rate_limit.per_wallet.limit", 60),
    ("rate_limit.per_ip.limit", 120),
    ("rate_limit.per_ip.window", timedelta(minutes=1)),
    ("api_key.enabled", False),
    ("circuit_breaker.enabled", True),
    ("circuit_breaker.solana_rpc.consecutive_failures", 5),
    ("circuit_breaker.stripe_api.consecutive_failures", 3),
    ("circuit_breaker.webhook.min_requests", 20),
    ("admin.public_keys", ()),
    ("admin.api_keys", ()),
    ("tenancy.default_tenant", "default"),
]


def attr(cfg: object, dotted: str) -> object:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.mark.parametrize(("path", "expected"), DEFAULTS, ids=[p for p, _ in DEFAULTS])
def test_defaults(tmp_path: Path, path: str, expected: object) -> None:
    assert attr(load(tmp_path), path) == expected


# --- shapes DESIGN §7 accepts ------------------------------------------------------


@pytest.mark.parametrize(("given", "backend"), [
    ("file", "sqlite"), ("sqlite", "sqlite"), ("FILE", "sqlite"), ("memory", "memory")])
def test_storage_backend_names(tmp_path: Path, given: str, backend: str) -> None:
    cfg = load(tmp_path, {"storage": {"backend": given, "file_path": "/tmp/x.db"}})
    assert cfg.storage.backend == backend
    assert cfg.storage.file_path == "/tmp/x.db"


def test_mongodb_url_selects_mongodb(tmp_path: Path) -> None:
    cfg = load(tmp_path, env={"MONGODB_URL": "mongodb://localhost:27017",
                              "MONGODB_DATABASE": "cedros"})
    assert cfg.storage.backend == "mongodb"
    assert (cfg.paywall.mongodb_url, cfg.paywall.mongodb_database) == (
        "mongodb://localhost:27017", "cedros")


def test_explicit_backend_wins_over_a_url_in_env(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cedros_pay.config"):
        cfg = load(tmp_path, {"storage": {"backend": "file"}},
                   env={"POSTGRES_URL": "postgresql://u:p@h/db"})
    assert cfg.storage.backend == "sqlite"
    assert "POSTGRES_URL set but storage.backend is 'file'" in caplog.text


def test_postgres_catalog_reuses_storage_url_and_table_names(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"storage": {
        "backend": "postgres", "postgres_url": "postgresql://u:p@h/db",
        "schema_mapping": {"products": {"table_name": "shop.items"}, "coupons": "promo"}}})
    assert cfg.paywall.product_source == "postgres"
    assert cfg.paywall.postgres_url == "postgresql://u:p@h/db"
    assert cfg.paywall.postgres_table_name == "shop.items"
    assert cfg.coupons.postgres_table_name == "promo"
    assert cfg.subscriptions.backend == "postgres"
    assert cfg.subscriptions.postgres_url == "postgresql://u:p@h/db"


def test_rate_limit_nested_and_flat_forms_agree(tmp_path: Path) -> None:
    nested = load(tmp_path, {"rate_limit": {
        "global": {"enabled": False, "limit": 10, "window": "30s"},
        "per_wallet": {"limit": 5}}})
    flat = load(tmp_path, {"rate_limit": {
        "global_enabled": False, "global_limit": 10, "global_window": "30s",
        "per_wallet_limit": 5}})
    assert nested.rate_limit == flat.rate_limit
    assert nested.rate_limit.global_.enabled is False
    assert nested.rate_limit.global_.window == timedelta(seconds=30)
    assert nested.rate_limit.per_wallet.limit == 5
    assert nested.rate_limit.per_ip.limit == 120  # untouched buckets keep their defaults


def test_resources_and_coupons_as_lists(tmp_path: Path) -> None:
    as_list = load(tmp_path, {
        "paywall": {"resources": [
            {"id": "a", "crypto_atomic_amount": 5},
            {"resource_id": "b", "fiat_amount_cents": 100}]},
        "coupons": {"coupons": [
            {"code": "TEN", "discount_type": "percentage", "discount_value": 10}]}})
    as_map = load(tmp_path, {
        "paywall": {"resources": {"a": {"crypto_atomic_amount": 5},
                                  "b": {"fiat_amount_cents": 100}}},
        "coupons": {"coupons": {
            "TEN": {"discount_type": "percentage", "discount_value": 10}}}})
    # (the map patch merges into BASE's own "article"; the list replaces it)
    assert as_list.paywall.resources == {
        k: v for k, v in as_map.paywall.resources.items() if k != "article"}
    assert as_list.coupons.coupons == as_map.coupons.coupons
    assert list(as_list.paywall.resources) == ["a", "b"]
    assert as_list.paywall.resources["b"].resource_id == "b"
    assert as_list.coupons.coupons["TEN"].code == "TEN"


def test_spec23_products_section_is_an_alias(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"products": {"cache_ttl": "30s"}})
    assert cfg.paywall.product_cache_ttl == timedelta(seconds=30)


@pytest.mark.parametrize(("given", "expected"), [
    ("", ""), ("/", ""), ("api", "/api"), ("/api/", "/api"), ("api/v1//", "/api/v1"),
    ("  /cedros-pay ", "/cedros-pay")])
def test_route_prefix_normalized(tmp_path: Path, given: str, expected: str) -> None:
    assert load(tmp_path, {"server": {"route_prefix": given}}).server.route_prefix == expected


@pytest.mark.parametrize(("rpc", "ws"), [
    ("http://127.0.0.1:8899", "ws://127.0.0.1:8899"),
    ("https://api.devnet.solana.com", "wss://api.devnet.solana.com"),
    ("https://rpc.example.com/v1?key=abc", "wss://rpc.example.com/v1?key=abc")])
def test_ws_url_derived_from_rpc_url(tmp_path: Path, rpc: str, ws: str) -> None:
    assert load(tmp_path, {"x402": {"rpc_url": rpc}}).x402.ws_url == ws


def test_explicit_ws_url_kept(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"x402": {"ws_url": "wss://other.example"}})
    assert cfg.x402.ws_url == "wss://other.example"


def test_cors_origins_from_a_comma_list(tmp_path: Path) -> None:
    cfg = load(tmp_path, env={"CORS_ALLOWED_ORIGINS": "http://a.test, https://b.test:8443,"})
    assert cfg.server.cors_allowed_origins == ("http://a.test", "https://b.test:8443")


def test_trusted_proxies_normalized(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"server": {"trusted_proxies": ["10.0.0.0/8", "127.0.0.1", "::1"]}})
    assert cfg.server.trusted_proxies == ("10.0.0.0/8", "127.0.0.1/32", "::1/128")


def test_circuit_breaker_partial_override_keeps_service_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"circuit_breaker": {"stripe_api": {"timeout": "45s"}}})
    stripe = cfg.circuit_breaker.stripe_api
    assert stripe.timeout == timedelta(seconds=45)
    assert (stripe.consecutive_failures, stripe.min_requests) == (3, 5)  # spec 12


def test_schema_mapping(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"storage": {"schema_mapping": {
        "payments": {"table_name": "pay.ledger"}, "sessions": {"table_name": ""},
        "webhook_queue": "hooks"}}})
    mapping = cfg.storage.schema_mapping
    assert mapping.table_name("payments") == "pay.ledger"
    assert mapping.table_name("sessions") == "stripe_sessions"
    assert mapping.table_name("webhook_queue") == "hooks"
    assert mapping.table_name("subscriptions") == "subscriptions"
    assert mapping.as_dict()["admin_nonces"] == "admin_nonces"
    with pytest.raises(KeyError):
        mapping.table_name("nope")


def test_coupon_fields(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"coupons": {"coupons": {"X": {
        "discount_type": "Fixed", "discount_value": 5, "starts_at": "2025-01-01T00:00:00Z",
        "expires_at": datetime(2026, 1, 1), "usage_limit": 3,  # naive: taken as UTC
        "metadata": {"campaign": "x", "round": 2, "featured": True}}}}})
    coupon = cfg.coupons.coupons["X"]
    assert coupon.discount_type == "fixed"
    assert coupon.starts_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert coupon.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert coupon.active is True
    assert dict(coupon.metadata) == {"campaign": "x", "round": "2", "featured": "true"}


def test_product_without_crypto_token_uses_the_configured_mint(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"x402": {"network": "devnet", "token_mint": DEVNET_USDC_MINT}})
    assert cfg.paywall.resources["article"].crypto_token == "USDC"


# --- immutability and secrets ------------------------------------------------------


def test_config_is_immutable(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    with pytest.raises(ValidationError):
        cfg.server.address = ":1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.paywall.resources["new"] = cfg.paywall.resources["article"]  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.callbacks.headers.update({"a": "b"})  # type: ignore[attr-defined]
    assert copy.deepcopy(cfg) == cfg
    assert Config.model_validate(cfg.model_dump()) == cfg


def test_secrets_stay_out_of_repr_and_redacted(tmp_path: Path) -> None:
    wallet = Keypair()
    secret_b58 = base58.b58encode(bytes(wallet)).decode()
    cfg = load(tmp_path, {
        "stripe": {"secret_key": "sk_test_SECRET1", "webhook_secret": "whsec_SECRET2"},
        "server": {"admin_metrics_api_key": "SECRET3"},
        "callbacks": {"headers": {"Authorization": "Bearer SECRET4"}},
        "api_key": {"keys": {"SECRET5key": "partner"}},
        "admin": {"api_keys": ["SECRET6"]},
        "monitoring": {"low_balance_alert_url": "https://discord.com/api/webhooks/1/SECRET7"},
        "storage": {"backend": "postgres",
                    "postgres_url": "postgresql://cedros:SECRET8@db:5432/pay"},
    }, env={"X402_SERVER_WALLET_1": secret_b58})
    text = repr(cfg) + str(cfg) + repr(cfg.redacted())
    for n in range(1, 9):
        assert f"SECRET{n}" not in text
    assert secret_b58 not in text
    assert repr(bytes(wallet)) not in text
    red = cfg.redacted()
    assert red["storage"]["postgres_url"] == "postgresql://cedros:***@db:5432/***"
    assert red["callbacks"]["headers"] == {"Authorization": "***"}
    assert red["x402"]["server_wallets"] == [
        f"{str(wallet.pubkey())[:4]}...{str(wallet.pubkey())[-3:]}"]
    assert red["storage"]["cart_quote_ttl"] == "15m"
    assert red["rate_limit"]["global"]["limit"] == 1000
    # The values are still there for the code that needs them.
    assert cfg.stripe.secret_key == "sk_test_SECRET1"


# --- files that must load ----------------------------------------------------------


def reference_text() -> str:
    # The reference file is used unchanged except its one placeholder that cannot pass
    # validation: x402.payment_address "recipient-wallet" (not a Solana address).
    text = REFERENCE.read_text()
    assert text.count('"recipient-wallet"') == 1
    return text.replace('"recipient-wallet"', f'"{PAY_TO}"')


def test_reference_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "reference.yaml"
    path.write_text(reference_text())
    cfg = load_config(path, environ={})
    assert cfg.storage.backend == "sqlite"  # "file"
    assert cfg.paywall.product_source == "yaml"
    assert cfg.x402.ws_url == "wss://api.mainnet-beta.solana.com"
    assert cfg.logging.format == "console"
    assert cfg.rate_limit.per_ip.limit == 120
    assert cfg.server.cors_allowed_origins == ("http://localhost:3000", "http://localhost:6006")

    demo, second = cfg.paywall.resources["demo-content"], cfg.paywall.resources["test-product-2"]
    assert (demo.fiat_amount_cents, demo.crypto_atomic_amount) == (100, 1_000_000)
    assert demo.stripe_price_id == "price_123"
    assert demo.memo_template == "{{resource}}:{{nonce}}"
    assert dict(demo.metadata) == {"plan": "demo"}
    assert (second.fiat_amount_cents, second.crypto_atomic_amount) == (222, 2_220_000)

    coupons = cfg.coupons.coupons
    assert set(coupons) == {"SAVE20", "WELCOME5", "CRYPTO3", "DEMO50"}
    assert (coupons["SAVE20"].discount_type, coupons["SAVE20"].discount_value) == (
        "percentage", 20.0)
    assert coupons["SAVE20"].usage_limit == 100
    assert coupons["SAVE20"].expires_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert (coupons["WELCOME5"].discount_type, coupons["WELCOME5"].discount_value) == (
        "fixed", 5.0)
    assert coupons["WELCOME5"].usage_limit is None
    assert coupons["CRYPTO3"].payment_method == "x402"
    assert coupons["DEMO50"].product_ids == ("demo-content",)
    assert cfg.circuit_breaker.webhook.failure_ratio == 0.8


def test_reference_example_placeholder_is_the_only_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(REFERENCE, environ={})
    assert info.value.problems == [
        "x402.payment_address: invalid Solana address 'recipient-wallet' "
        "(want base58 of 32 bytes)"]


def test_demo_config_loads_with_a_server_wallet() -> None:
    wallet = Keypair()  # `serve --sandbox` sets the sandbox's funded one
    cfg = load_config(DEMO, environ={"X402_SERVER_WALLET_1": str(wallet)})
    assert cfg.server.address == "127.0.0.1:8080"
    assert cfg.storage.backend == "sqlite"
    assert cfg.storage.file_path == "./data/cedros-pay.db"
    assert cfg.x402.network == "devnet"
    assert cfg.x402.token_mint == DEVNET_USDC_MINT
    assert cfg.x402.gasless_enabled  # official x402 clients (scheme exact) need it
    assert cfg.x402.server_wallet_pubkeys == (str(wallet.pubkey()),)
    assert not cfg.stripe.enabled


def test_demo_catalog_shows_each_kind_of_sale() -> None:
    cfg = load_config(DEMO, environ={"X402_SERVER_WALLET_1": str(Keypair())})
    products = cfg.paywall.resources
    one_off = products["demo-article"]
    assert one_off.fiat_amount_cents and one_off.crypto_atomic_amount and not one_off.subscription
    agent_call = products["demo-api-call"]
    assert agent_call.fiat_amount_cents == 0 and agent_call.crypto_atomic_amount <= 10_000
    pair = [products["demo-sticker"], products["demo-poster"]]
    assert {p.crypto_token for p in pair} == {"USDC"}
    assert all(p.crypto_atomic_amount for p in pair)
    assert products["demo-monthly"].subscription is not None
    assert {"WELCOME10", "EBOOK1"} <= set(cfg.coupons.coupons)


def test_demo_config_without_a_server_wallet_names_the_missing_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(DEMO, environ={})
    assert len(info.value.problems) == 1
    assert "X402_SERVER_WALLET_1" in info.value.problems[0]


# --- durations ---------------------------------------------------------------------

DURATIONS: list[tuple[object, timedelta]] = [
    ("90s", timedelta(seconds=90)),
    ("5m", timedelta(minutes=5)),
    ("2160h", timedelta(days=90)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("100ms", timedelta(milliseconds=100)),
    ("1.5h", timedelta(minutes=90)),
    (".5s", timedelta(milliseconds=500)),
    ("250us", timedelta(microseconds=250)),
    ("250µs", timedelta(microseconds=250)),
    ("1500ns", timedelta(microseconds=2)),
    ("1m0s", timedelta(minutes=1)),
    ("0", timedelta(0)),
    ("0s", timedelta(0)),
    ("-1m", timedelta(minutes=-1)),
    ("30", timedelta(seconds=30)),  # bare numbers are seconds, as in the reference
    (30, timedelta(seconds=30)),
    (2.5, timedelta(seconds=2.5)),
    (timedelta(hours=1), timedelta(hours=1)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS, ids=[repr(t) for t, _ in DURATIONS])
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "1x", "1h 30m", "h", "1.2.3s", "--1s", True, None])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(0), "0s"), (timedelta(milliseconds=100), "100ms"), (timedelta(seconds=90), "1m30s"),
    (timedelta(hours=2160), "2160h"), (timedelta(seconds=1.5), "1.5s"),
    (timedelta(microseconds=7), "7us"), (timedelta(hours=-1), "-1h")])
def test_format_duration_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_zero_allowed_where_it_means_off(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"paywall": {"product_cache_ttl": "0s"},
                          "x402": {"tx_queue_min_time_between": 0}})
    assert cfg.paywall.product_cache_ttl == timedelta(0)
    assert cfg.x402.tx_queue_min_time_between == timedelta(0)


# --- file errors -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", environ={})
    assert info.value.problems == [f"config file {tmp_path / 'nope.yaml'}: not found"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  address: ':8080'\n  read_timeout: [15s\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [problem] = info.value.problems
    assert problem.startswith(f"config file {path}: invalid YAML at line ")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [
        f"config file {path}: the top level must be a mapping of sections, got list"]


def test_empty_keys_mean_defaults(tmp_path: Path) -> None:
    path = tmp_path / "nulls.yaml"
    path.write_text(yaml.safe_dump(BASE) + "server:\n  address:\n  read_timeout:\nlogging:\n")
    cfg = load_config(path, environ={})
    assert cfg.server.address == ":8080"
    assert cfg.server.read_timeout == timedelta(seconds=15)


def test_config_error_lists_problems_in_its_message() -> None:
    err = ConfigError(["a is required", "b: bad"])
    assert str(err) == "invalid configuration (2 problems):\n  - a is required\n  - b: bad"
    assert isinstance(err, ValueError)


def test_validate_false_skips_startup_rules_but_not_types(tmp_path: Path) -> None:
    path = tmp_path / "storage-only.yaml"
    path.write_text("storage:\n  backend: file\n  file_path: ./db/cedros.db\n")
    with pytest.raises(ConfigError):
        load_config(path, environ={})
    cfg = load_config(path, environ={}, validate=False)
    assert (cfg.storage.backend, cfg.storage.file_path) == ("sqlite", "./db/cedros.db")
    path.write_text("storage:\n  cart_quote_ttl: soon\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, validate=False)
    assert info.value.problems == ["storage.cart_quote_ttl: invalid duration 'soon'"]

"""Environment overrides: spec 09's table, server wallets, admin keys, dynamic headers."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import base58
import pytest
import yaml
from solders.keypair import Keypair

from cedros_pay.config import Config, ConfigError, load_config, parse_wallet_secret

PAY_TO = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BASE_ENV = {
    "CEDROS_X402_PAYMENT_ADDRESS": PAY_TO,
    "CEDROS_X402_TOKEN_MINT": USDC,
    "CEDROS_X402_RPC_URL": "https://rpc.example.com",
    "COUPON_SOURCE": "disabled",
    "CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite",  # catalog in the database: no YAML needed
}


def load(env: dict[str, str], yaml_text: str | None = None, tmp_path: Path | None = None
         ) -> Config:
    path = None
    if yaml_text is not None:
        assert tmp_path is not None
        path = tmp_path / "config.yaml"
        path.write_text(yaml_text)
    return load_config(path, environ={**BASE_ENV, **env})


def problems(env: dict[str, str], yaml_text: str | None = None,
             tmp_path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env, yaml_text, tmp_path)
    return info.value.problems


def b58(kp: Keypair) -> str:
    return base58.b58encode(bytes(kp)).decode()


# --- spec 09's variables, one by one -----------------------------------------------

ENV_TABLE: list[tuple[str, str, str, object]] = [
    ("CEDROS_SERVER_ADDRESS", ":3000", "server.address", ":3000"),
    ("CEDROS_ROUTE_PREFIX", "api", "server.route_prefix", "/api"),
    ("CEDROS_ADMIN_METRICS_API_KEY", "m-key", "server.admin_metrics_api_key", "m-key"),
    ("CORS_ALLOWED_ORIGINS", "http://a.test,http://b.test", "server.cors_allowed_origins",
     ("http://a.test", "http://b.test")),
    ("CEDROS_STRIPE_SECRET_KEY", "sk_test_1", "stripe.secret_key", "sk_test_1"),
    ("CEDROS_STRIPE_WEBHOOK_SECRET", "whsec_1", "stripe.webhook_secret", "whsec_1"),
    ("CEDROS_STRIPE_SUCCESS_URL", "https://s.test/ok", "stripe.success_url", "https://s.test/ok"),
    ("CEDROS_STRIPE_CANCEL_URL", "https://s.test/no", "stripe.cancel_url", "https://s.test/no"),
    ("CEDROS_STRIPE_TAX_RATE_ID", "txr_1", "stripe.tax_rate_id", "txr_1"),
    ("CEDROS_STRIPE_MODE", "LIVE", "stripe.mode", "live"),
    ("CEDROS_STRIPE_API_BASE", "http://127.0.0.1:9", "stripe.api_base", "http://127.0.0.1:9"),
    ("CEDROS_X402_PAYMENT_ADDRESS", PAY_TO, "x402.payment_address", PAY_TO),
    ("CEDROS_X402_TOKEN_MINT", USDC, "x402.token_mint", USDC),
    ("CEDROS_X402_NETWORK", "devnet", "x402.network", "devnet"),
    ("CEDROS_X402_RPC_URL", "http://127.0.0.1:8899", "x402.rpc_url", "http://127.0.0.1:8899"),
    ("CEDROS_X402_WS_URL", "ws://127.0.0.1:8900", "x402.ws_url", "ws://127.0.0.1:8900"),
    ("CEDROS_X402_MEMO_PREFIX", "shop", "x402.memo_prefix", "shop"),
    ("CEDROS_X402_SKIP_PREFLIGHT", "true", "x402.skip_preflight", True),
    ("CEDROS_X402_COMMITMENT", "finalized", "x402.commitment", "finalized"),
    ("CEDROS_X402_AUTO_CREATE_TOKEN_ACCOUNT", "0", "x402.auto_create_token_account", False),
    ("POSTGRES_URL", "postgresql://u:p@h/db", "storage.postgres_url", "postgresql://u:p@h/db"),
    ("CEDROS_STORAGE_CLEANUP_INTERVAL", "1m", "storage.cleanup_interval", timedelta(minutes=1)),
    ("CEDROS_STORAGE_ARCHIVAL_ENABLED", "yes", "storage.archival.enabled", True),
    ("CEDROS_STORAGE_ARCHIVAL_RETENTION_PERIOD", "720h", "storage.archival.retention_period",
     timedelta(days=30)),
    ("CEDROS_STORAGE_ARCHIVAL_RUN_INTERVAL", "12h", "storage.archival.run_interval",
     timedelta(hours=12)),
    ("CALLBACK_PAYMENT_SUCCESS_URL", "https://m.test/hook", "callbacks.payment_success_url",
     "https://m.test/hook"),
    ("CALLBACK_TIMEOUT", "10s", "callbacks.timeout", timedelta(seconds=10)),
    ("CEDROS_PAYWALL_QUOTE_TTL", "120s", "paywall.quote_ttl", timedelta(minutes=2)),
    ("CEDROS_PAYWALL_PRODUCT_SOURCE", "sqlite", "paywall.product_source", "sqlite"),
    ("CEDROS_PAYWALL_PRODUCT_CACHE_TTL", "0s", "paywall.product_cache_ttl", timedelta(0)),
    ("CEDROS_PAYWALL_POSTGRES_URL", "postgresql://p/x", "paywall.postgres_url", "postgresql://p/x"),
    ("CEDROS_PAYWALL_MONGODB_URL", "mongodb://m", "paywall.mongodb_url", "mongodb://m"),
    ("CEDROS_PAYWALL_MONGODB_DATABASE", "shop", "paywall.mongodb_database", "shop"),
    ("CEDROS_PAYWALL_MONGODB_COLLECTION", "items", "paywall.mongodb_collection", "items"),
    ("COUPON_SOURCE", "disabled", "coupons.coupon_source", "disabled"),
    ("COUPON_CACHE_TTL", "30s", "coupons.cache_ttl", timedelta(seconds=30)),
    ("COUPON_POSTGRES_URL", "postgresql://c/x", "coupons.postgres_url", "postgresql://c/x"),
    ("COUPON_MONGODB_URL", "mongodb://c", "coupons.mongodb_url", "mongodb://c"),
    ("COUPON_MONGODB_DATABASE", "promo", "coupons.mongodb_database", "promo"),
    ("COUPON_MONGODB_COLLECTION", "codes", "coupons.mongodb_collection", "codes"),
    ("CEDROS_API_KEY_ENABLED", "TRUE", "api_key.enabled", True),
    ("MONITORING_LOW_BALANCE_ALERT_URL", "https://hooks.test/x",
     "monitoring.low_balance_alert_url", "https://hooks.test/x"),
    ("MONITORING_LOW_BALANCE_THRESHOLD", "0.05", "monitoring.low_balance_threshold", 0.05),
    ("MONITORING_CHECK_INTERVAL", "5m", "monitoring.check_interval", timedelta(minutes=5)),
    ("MONITORING_TIMEOUT", "2s", "monitoring.timeout", timedelta(seconds=2)),
]


def attr(cfg: object, dotted: str) -> object:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.mark.parametrize(("var", "value", "path", "expected"), ENV_TABLE,
                         ids=[row[0] for row in ENV_TABLE])
def test_env_variable_sets_its_key(var: str, value: str, path: str, expected: object) -> None:
    env = {var: value}
    if var == "CEDROS_STRIPE_MODE":
        env["CEDROS_STRIPE_SECRET_KEY"] = "sk_live_1"
    if var == "POSTGRES_URL":  # selects postgres, so the catalog may not stay in SQLite
        env["CEDROS_PAYWALL_PRODUCT_SOURCE"] = "postgres"
    assert attr(load(env), path) == expected


def test_publishable_key_and_gasless_from_env() -> None:
    wallet = Keypair()
    cfg = load({"CEDROS_STRIPE_PUBLISHABLE_KEY": "pk_test_1",
                "CEDROS_STRIPE_SECRET_KEY": "sk_test_1",
                "CEDROS_X402_GASLESS_ENABLED": "1", "X402_SERVER_WALLET_1": b58(wallet)})
    assert cfg.stripe.publishable_key == "pk_test_1"
    assert cfg.x402.gasless_enabled is True


@pytest.mark.parametrize(("var", "value", "line"), [
    ("CEDROS_X402_GASLESS_ENABLED", "maybe",
     "CEDROS_X402_GASLESS_ENABLED: invalid boolean 'maybe' (want true or false)"),
    ("CALLBACK_TIMEOUT", "soon", "CALLBACK_TIMEOUT: invalid duration 'soon'"),
    ("MONITORING_LOW_BALANCE_THRESHOLD", "low",
     "MONITORING_LOW_BALANCE_THRESHOLD: invalid number 'low'"),
    ("CEDROS_X402_NETWORK", "moon",
     "x402.network: input should be 'mainnet-beta', 'devnet', 'testnet' or 'localnet', "
     "got 'moon' (from CEDROS_X402_NETWORK)"),
    ("CEDROS_PAYWALL_QUOTE_TTL", "0s",
     "paywall.quote_ttl: duration must be greater than 0, got '0s' "
     "(from CEDROS_PAYWALL_QUOTE_TTL)"),
])
def test_bad_env_value_is_reported_by_name(var: str, value: str, line: str) -> None:
    assert problems({var: value}) == [line]


# --- server wallets ----------------------------------------------------------------


def test_server_wallets_base58_and_json_array() -> None:
    first, second = Keypair(), Keypair()
    cfg = load({"X402_SERVER_WALLET_1": b58(first),
                "X402_SERVER_WALLET_2": json.dumps(list(bytes(second)))})
    assert cfg.x402.server_wallets == (bytes(first), bytes(second))
    assert cfg.x402.server_wallet_pubkeys == (str(first.pubkey()), str(second.pubkey()))


def test_cedros_prefixed_wallet_variables_are_accepted() -> None:
    first, second = Keypair(), Keypair()
    cfg = load({"CEDROS_X402_SERVER_WALLET_1": b58(first), "X402_SERVER_WALLET_2": b58(second)})
    assert cfg.x402.server_wallets == (bytes(first), bytes(second))


def test_wallet_numbering_stops_at_the_first_gap(caplog: pytest.LogCaptureFixture) -> None:
    kps = [Keypair() for _ in range(4)]
    with caplog.at_level(logging.WARNING, logger="cedros_pay.config"):
        cfg = load({"X402_SERVER_WALLET_1": b58(kps[0]), "X402_SERVER_WALLET_2": b58(kps[1]),
                    "X402_SERVER_WALLET_4": b58(kps[3])})
    assert cfg.x402.server_wallets == (bytes(kps[0]), bytes(kps[1]))
    assert "X402_SERVER_WALLET_4 ignored" in caplog.text
    assert "X402_SERVER_WALLET_3 is not set" in caplog.text
    assert b58(kps[3]) not in caplog.text


def test_no_wallet_one_means_no_wallets() -> None:
    assert load({"X402_SERVER_WALLET_2": b58(Keypair())}).x402.server_wallets == ()


def test_conflicting_wallet_aliases() -> None:
    assert problems({"CEDROS_X402_SERVER_WALLET_1": b58(Keypair()),
                     "X402_SERVER_WALLET_1": b58(Keypair())}) == [
        "CEDROS_X402_SERVER_WALLET_1 and X402_SERVER_WALLET_1 are both set, to different keys"]


BAD_WALLETS = [
    ("3mJr7AoUXx2Wqd", "invalid server wallet key: decodes to 10 bytes, want 64"),
    ("0OIl", "invalid server wallet key: neither base58 nor a JSON array of 64 numbers"),
    ("[1, 2, 3]", "invalid server wallet key: decodes to 3 bytes, want 64"),
    ("[" + ",".join(["300"] * 64) + "]",
     "invalid server wallet key: JSON array must hold 64 integers from 0 to 255"),
    ("[1, 2", "invalid server wallet key: not a valid JSON array"),
]


@pytest.mark.parametrize(("value", "message"), BAD_WALLETS)
def test_bad_wallet_key(value: str, message: str) -> None:
    [line] = problems({"X402_SERVER_WALLET_1": value})
    assert line.startswith(f"X402_SERVER_WALLET_1: {message}")


def test_wallet_whose_halves_do_not_match_is_refused_without_echo() -> None:
    secret = bytes(Keypair())[:32] + bytes(Keypair().pubkey())
    text = base58.b58encode(secret).decode()
    [line] = problems({"X402_SERVER_WALLET_1": text})
    assert line == ("X402_SERVER_WALLET_1: invalid server wallet key: "
                    "the public half does not match the secret half")
    assert text not in line


def test_duplicate_wallets_are_refused() -> None:
    kp = Keypair()
    assert problems({"X402_SERVER_WALLET_1": b58(kp),
                     "X402_SERVER_WALLET_2": json.dumps(list(bytes(kp)))}) == [
        "X402_SERVER_WALLET_2: the same key as an earlier server wallet"]


def test_parse_wallet_secret_forms() -> None:
    kp = Keypair()
    assert parse_wallet_secret(b58(kp)) == bytes(kp)
    assert parse_wallet_secret(json.dumps(list(bytes(kp)))) == bytes(kp)
    assert parse_wallet_secret(bytes(kp)) == bytes(kp)
    assert parse_wallet_secret(list(bytes(kp))) == bytes(kp)


def test_wallets_in_the_yaml_file_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump({"x402": {"server_wallets": [b58(Keypair())]}})
    assert problems({}, text, tmp_path) == [
        "x402.server_wallets: server wallet keys are read only from the "
        "X402_SERVER_WALLET_N environment variables, not the file"]


# --- dynamic headers and API keys --------------------------------------------------


def test_callback_and_monitoring_headers(tmp_path: Path) -> None:
    text = yaml.safe_dump({"callbacks": {"headers": {"authorization": "Bearer yaml",
                                                     "X-Keep": "1"}}})
    cfg = load({"CALLBACK_HEADER_AUTHORIZATION": "Bearer env",
                "CALLBACK_HEADER_X_API_KEY": "k1",
                "MONITORING_HEADER_X_ALERT_TOKEN": "t1"}, text, tmp_path)
    assert dict(cfg.callbacks.headers) == {
        "X-Keep": "1", "Authorization": "Bearer env", "X-Api-Key": "k1"}
    assert dict(cfg.monitoring.headers) == {"X-Alert-Token": "t1"}


def test_api_keys_from_env(tmp_path: Path) -> None:
    text = yaml.safe_dump({"api_key": {"keys": {"yaml_key": "pro"}}})
    cfg = load({"CEDROS_API_KEY_ENABLED": "true", "CEDROS_API_KEY_STRIPE_ABC123": "Partner",
                "CEDROS_API_KEY_BIG_CO": "enterprise"}, text, tmp_path)
    assert cfg.api_key.enabled is True
    assert dict(cfg.api_key.keys) == {
        "yaml_key": "pro", "stripe_abc123": "partner", "big_co": "enterprise"}


def test_unknown_api_key_tier_hides_the_key() -> None:
    assert problems({"CEDROS_API_KEY_TOPSECRET": "gold"}) == [
        "api_key.keys.tops***: input should be 'free', 'pro', 'enterprise' or 'partner'"]


# --- admin keys --------------------------------------------------------------------


def test_admin_public_keys_from_env_append_to_yaml(tmp_path: Path) -> None:
    yaml_key, env1, env2 = (str(Keypair().pubkey()) for _ in range(3))
    text = yaml.safe_dump({"admin": {"public_keys": [yaml_key]}})
    cfg = load({"CEDROS_ADMIN_PUBLIC_KEY_1": env1, "CEDROS_ADMIN_PUBLIC_KEY_2": env2,
                "CEDROS_ADMIN_PUBLIC_KEY_3": yaml_key}, text, tmp_path)
    assert cfg.admin.public_keys == (yaml_key, env1, env2)


def test_admin_public_key_from_env_must_be_an_address() -> None:
    assert problems({"CEDROS_ADMIN_PUBLIC_KEY_1": "not-a-key"}) == [
        "CEDROS_ADMIN_PUBLIC_KEY_1: invalid Solana address 'not-a-key' (want base58 of 32 bytes)"]


def test_admin_api_keys_from_env_append(tmp_path: Path) -> None:
    text = yaml.safe_dump({"admin": {"api_keys": ["from-yaml"]}})
    cfg = load({"CEDROS_ADMIN_API_KEY_1": "env-one", "CEDROS_ADMIN_API_KEY_2": "env-two",
                "CEDROS_ADMIN_API_KEY_4": "after-gap"}, text, tmp_path)
    assert cfg.admin.api_keys == ("from-yaml", "env-one", "env-two")
    assert "env-one" not in repr(cfg)

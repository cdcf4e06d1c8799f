"""docs/configuration.md is generated from the config models and env.py, and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.keypair import Keypair

from cedros_pay.config import reference
from cedros_pay.config.env import _SIMPLE, apply_env
from cedros_pay.config.models import Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# A valid value for one member of each variable family the loader reads by pattern.
PATTERN_EXAMPLES = {
    "X402_SERVER_WALLET_<N>": ("X402_SERVER_WALLET_1", str(Keypair())),
    "CEDROS_X402_SERVER_WALLET_<N>": ("CEDROS_X402_SERVER_WALLET_1", str(Keypair())),
    "CEDROS_ADMIN_PUBLIC_KEY_<N>": ("CEDROS_ADMIN_PUBLIC_KEY_1", str(Keypair().pubkey())),
    "CEDROS_ADMIN_API_KEY_<N>": ("CEDROS_ADMIN_API_KEY_1", "admin-secret"),
    "CEDROS_API_KEY_<NAME>": ("CEDROS_API_KEY_PARTNER_ONE", "partner"),
    "CALLBACK_HEADER_<NAME>": ("CALLBACK_HEADER_X_API_KEY", "k"),
    "MONITORING_HEADER_<NAME>": ("MONITORING_HEADER_AUTHORIZATION", "Bearer t"),
}


def test_configuration_doc_is_generated_from_the_current_models() -> None:
    current = DOC.read_text() if DOC.exists() else ""
    assert current == reference.render(), (
        "docs/configuration.md is out of date with cedros_pay/config (a key or variable was "
        f"added, renamed or re-described); regenerate it: .venv/bin/{reference.COMMAND}")


def test_every_key_has_a_meaning() -> None:
    missing = [k.path for k in reference.config_keys() if not k.description]
    assert not missing, (
        f"config keys without a description: {missing}; add a docstring under each field "
        "(or its section's class) in cedros_pay/config/models.py")


def test_every_yaml_key_of_the_models_is_listed() -> None:
    documented = {k.path for k in reference.config_keys()}
    for section, model in Config.model_fields.items():
        assert section in documented
        sub = model.annotation
        assert sub is not None
        for name, info in sub.model_fields.items():
            assert f"{section}.{info.alias or name}" in documented


def test_every_variable_the_loader_reads_is_documented_with_its_key() -> None:
    documented = {k.path: k for k in reference.config_keys()}
    text = DOC.read_text()
    for name, (path, _convert) in _SIMPLE.items():
        key = documented[".".join(path)]
        assert name in key.env
        assert f"| `{name}` | `{'.'.join(path)}` |" in text
    for pattern in reference.ENV_PATTERNS:
        assert pattern.name in documented[".".join(pattern.path)].env
        assert f"| `{pattern.name}` |" in text


@pytest.mark.parametrize("pattern", reference.ENV_PATTERNS, ids=lambda p: p.name)
def test_each_documented_variable_family_is_read_into_its_key(
        pattern: reference.EnvPattern) -> None:
    name, value = PATTERN_EXAMPLES[pattern.name]
    raw: dict[str, object] = {}
    result = apply_env(raw, {name: value})
    assert result.problems == []
    node: object = raw
    for part in pattern.path:
        assert isinstance(node, dict) and part in node, (name, raw)
        node = node[part]
    assert node, (name, raw)


def test_a_section_default_instance_gives_per_entry_defaults() -> None:
    by_path = {k.path: k for k in reference.config_keys()}
    assert by_path["circuit_breaker.stripe_api.consecutive_failures"].default == "`3`"
    assert by_path["circuit_breaker.solana_rpc.consecutive_failures"].default == "`5`"
    assert by_path["storage.schema_mapping.payments.table_name"].default == (
        "`payment_transactions`")
    assert by_path["rate_limit.global.limit"].default == "`1000`"
    assert by_path["x402.gasless_enabled"].env == ("CEDROS_X402_GASLESS_ENABLED",)

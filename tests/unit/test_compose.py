"""compose.yaml cannot run here (no Docker engine), so this checks it against the code.

Every variable the Cedros services set must be one the config loader reads and that
docs/configuration.md lists; the environment they get must load as a valid configuration;
ports, health checks, volumes, dependencies and the migrate step must fit that config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from solders.keypair import Keypair

from cedros_pay.config import Config, load_config
from cedros_pay.config.reference import env_variables

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
DOC = REPO / "docs" / "configuration.md"

# What an operator must export (the file's `${NAME:?message}` variables).
REQUIRED = {
    "CEDROS_X402_RPC_URL": "https://rpc.example.com",
    "CEDROS_X402_PAYMENT_ADDRESS": str(Keypair().pubkey()),
}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, given: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` forms."""
    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in given:
            return given[name]
        if op and op.endswith("?"):
            raise AssertionError(f"compose.yaml requires {name} ({arg}); add it to REQUIRED")
        return arg if op else ""
    return _INTERPOLATION.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def cedros_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("command", [""])[0] == "cedros-pay"}


def gateways(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in cedros_services(compose).items() if s["command"][1] == "serve"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: interpolate(str(v), REQUIRED) for k, v in service["environment"].items()}


def loaded(service: dict[str, Any], *, validate: bool = True) -> Config:
    return load_config(None, environ=environment(service), dotenv_path=None, validate=validate)


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(name).replace("<N>", r"[1-9]\d*").replace(
        "<NAME>", r"[A-Z0-9_]+") + "$")


def test_the_stack_is_postgres_redis_a_migration_and_two_gateways(
        compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "gateway-1", "gateway-2"}
    assert len(gateways(compose)) == 2
    for name, service in cedros_services(compose).items():
        assert service["build"] == ".", name
        assert (REPO / "Dockerfile").is_file()
        assert service["image"] == "cedros-pay:local"


def test_every_variable_is_one_the_loader_reads_and_the_reference_lists(
        compose: dict[str, Any]) -> None:
    known = env_variables()
    patterns = [_pattern(name) for name in known if "<" in name]
    doc = DOC.read_text()
    for name, service in cedros_services(compose).items():
        for variable in service["environment"]:
            assert variable in known or any(p.match(variable) for p in patterns), (
                f"{name}: {variable} is not a variable cedros_pay/config/env.py reads")
            listed = variable if variable in known else next(
                k for k in known if "<" in k and _pattern(k).match(variable))
            assert f"| `{listed}` |" in doc, f"{variable} is missing from docs/configuration.md"


def test_the_environment_loads_as_a_valid_configuration(compose: dict[str, Any]) -> None:
    for service in gateways(compose).values():
        config = loaded(service)
        assert config.storage.backend == "postgres"
        assert (config.rate_limit.backend, config.idempotency.backend) == ("redis", "redis")
        assert config.x402.payment_address == REQUIRED["CEDROS_X402_PAYMENT_ADDRESS"]


def test_gateways_share_one_database_and_one_redis_run_by_the_stack(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    configs = [loaded(s) for s in gateways(compose).values()]
    assert len({c.storage.postgres_url for c in configs}) == 1
    assert len({c.redis.url for c in configs}) == 1
    database = urlsplit(configs[0].storage.postgres_url)
    assert database.hostname in services and database.port == 5432
    postgres = {k: interpolate(str(v), REQUIRED)
                for k, v in services[database.hostname]["environment"].items()}
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        database.username, database.password, database.path.lstrip("/"))
    redis = urlsplit(configs[0].redis.url)
    assert redis.hostname in services and redis.port == 6379
    assert services[redis.hostname]["image"].startswith("redis:")


def test_ports_and_health_checks_match_the_configured_listen_address(
        compose: dict[str, Any]) -> None:
    host_ports = []
    for name, service in gateways(compose).items():
        config = loaded(service)
        (mapping,) = service["ports"]
        host, container = mapping.split(":")
        assert int(container) == config.server.port, name
        host_ports.append(host)
        probe = " ".join(service["healthcheck"]["test"])
        assert (f"http://127.0.0.1:{config.server.port}{config.server.route_prefix}"
                "/cedros-health") in probe, name
    assert len(set(host_ports)) == len(host_ports)
    for name in ("postgres", "redis"):
        assert compose["services"][name]["healthcheck"]["test"][0] == "CMD"


def test_migrate_runs_once_before_the_gateways(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["cedros-pay", "migrate"]
    assert migrate["restart"] == "no"
    assert loaded(migrate, validate=False).storage.postgres_url == loaded(
        services["gateway-1"]).storage.postgres_url
    for name, service in gateways(compose).items():
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_dependencies_and_volumes_are_declared(compose: dict[str, Any]) -> None:
    services, declared = compose["services"], set(compose.get("volumes") or {})
    for name, service in services.items():
        for target in service.get("depends_on", {}):
            assert target in services, f"{name} depends on unknown service {target}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert declared <= used, f"declared but unused volumes: {declared - used}"


def test_interpolation_follows_compose_rules() -> None:
    assert interpolate("${A:-x}/${B}", {}) == "x/"
    assert interpolate("${A:-x}", {"A": "y"}) == "y"
    with pytest.raises(AssertionError, match="requires A"):
        interpolate("${A:?set A}", {})


def test_the_images_own_cedros_variables_are_documented_too() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    named = set(re.findall(r"\b((?:CEDROS|X402)_[A-Z0-9_]+)=", dockerfile))
    assert named, "the Dockerfile sets no CEDROS_ variable any more; update this test"
    assert named <= set(env_variables()), named - set(env_variables())

"""The command line: version, migrate, and bad configuration handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cedros_pay.cli import main, split_address


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cedros_pay.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_version_prints_version_and_build_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cedros-pay ") and "built " in out


@pytest.mark.parametrize(("address", "expected"), [
    (":8080", ("0.0.0.0", 8080)),
    ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("[::1]:8080", ("::1", 8080)),
])
def test_listen_address_is_split_like_go(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


def test_bad_config_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "x402:\n"
        "  network: devnet\n"
        "  payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ\n"
        "  token_mint: NotARealMint1111111111111111111111111111111\n"
        "  gasless_enabled: true\n")
    result = run_cli("serve", "--config", str(cfg), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("config error: ") for line in lines)
    assert any("mint" in line.lower() for line in lines)
    assert any("wallet" in line.lower() for line in lines)
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_a_clean_error(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_migrate_creates_the_sqlite_schema(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("storage:\n  backend: file\n  file_path: ./db/cedros.db\n")
    result = run_cli("migrate", "--config", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "db" / "cedros.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"payment_transactions", "cart_quotes", "webhook_queue", "alembic_version"} <= tables

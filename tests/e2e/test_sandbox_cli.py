"""Starting the sandbox the other ways: CLI process, thread mode; and the config it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from dotenv import dotenv_values

from cedros_pay.config import load_config
from cedros_pay.sandbox.network import (
    DEVNET_USDC_MINT,
    build_devnet_sandbox,
    write_cedros_config,
)
from cedros_pay.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[2]


def test_keys_persist_in_the_state_dir_and_balances_start_over(tmp_path: Path) -> None:
    first = build_devnet_sandbox(state_dir=tmp_path)
    first.chain.mint_to(first.wallets.payer.pubkey(), DEVNET_USDC_MINT, 5)
    second = build_devnet_sandbox(state_dir=tmp_path)
    assert second.wallets.merchant.pubkey() == first.wallets.merchant.pubkey()
    assert second.wallets.server.pubkey() == first.wallets.server.pubkey()
    assert second.chain.token_balance(second.wallets.payer.pubkey(), DEVNET_USDC_MINT) == 10**9
    assert (tmp_path / "server-wallet.json").stat().st_mode & 0o777 == 0o600


def test_written_env_points_the_demo_config_at_the_sandbox(tmp_path: Path) -> None:
    devnet = build_devnet_sandbox()
    files = write_cedros_config(devnet, tmp_path, rpc_url="http://127.0.0.1:18899",
                                ws_url="ws://127.0.0.1:18899")
    env = {k: v for k, v in dotenv_values(files.env).items() if v is not None}
    cfg = load_config(REPO / "configs" / "demo.yaml", environ=env)
    assert cfg.x402.network == "devnet"
    assert cfg.x402.rpc_url == "http://127.0.0.1:18899"
    assert cfg.x402.ws_url == "ws://127.0.0.1:18899"
    assert cfg.x402.payment_address == str(devnet.wallets.merchant.pubkey())
    assert cfg.x402.token_mint == str(DEVNET_USDC_MINT)
    assert cfg.x402.server_wallet_pubkeys == (str(devnet.wallets.server.pubkey()),)
    assert "x402:" in files.config.read_text()


def test_thread_mode_serves_synchronous_callers() -> None:
    devnet = build_devnet_sandbox()
    server = SandboxServer(devnet.chain)
    url = server.start_in_thread()
    try:
        reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getBalance",
                                      "params": [str(devnet.wallets.payer.pubkey())]})
        assert reply.json()["result"]["value"] == 5 * 10**9
        assert httpx.get(f"{url}/health").text == "ok"
    finally:
        server.stop_thread()
    assert server.port > 0


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "cedros_pay.sandbox", "--port", "0", "--state-dir",
               str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, cwd=tmp_path) as proc:
        try:
            url = _printed_rpc_url(proc)
            reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getGenesisHash"})
            assert reply.json()["result"] == "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"
            assert f"CEDROS_X402_RPC_URL={url}" in (tmp_path / "sandbox.env").read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def _printed_rpc_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "sandbox exited before printing its URL"
        if line.strip().startswith("RPC"):
            return line.split()[-1]
    raise AssertionError("sandbox did not print its URL in time")

"""The real server process: `cedros-pay serve` on the demo config, then SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from solders.keypair import Keypair

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_health(
    url: str, proc: subprocess.Popen[bytes], timeout: float = 30
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not answer in time")


def test_demo_config_serves_health_on_sqlite_and_stops_on_sigterm(tmp_path: Path) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEDROS_", "X402_"))}
    env["CEDROS_X402_RPC_URL"] = "http://127.0.0.1:9/"  # nothing there: health says degraded
    env["X402_SERVER_WALLET_1"] = str(Keypair())  # the demo is gasless (configs/demo.yaml)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", "configs/demo.yaml",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        resp = _wait_for_health(f"http://127.0.0.1:{port}/cedros-health", proc)
        assert resp.status_code == 200
        assert resp.json()["status"] == "degraded"
        assert (tmp_path / "data" / "cedros-pay.db").exists()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert time.monotonic() - started < 15
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = log_path.read_text()
    assert "cedros pay started" in logs
    assert "Traceback" not in logs

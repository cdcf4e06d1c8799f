"""`make run`'s setup for real: `serve --sandbox` on the demo config, then `cedros-pay pay`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from e2e.test_serve import _free_port

REPO = Path(__file__).resolve().parents[2]


def test_demo_product_is_paid_by_the_pay_cli(tmp_path: Path) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    port, rpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEDROS_", "X402_"))}
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", "configs/demo.yaml",
             "--sandbox", "--host", "127.0.0.1", "--port", str(port),
             "--sandbox-port", str(rpc_port)],
            cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        health = None
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/cedros-health", timeout=2).json()
                if health["rpcHealthy"]:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert health is not None and health["status"] == "ok", health
        pay = subprocess.run(
            [sys.executable, "-m", "cedros_pay.cli", "pay", "demo-article",
             "--keypair", "data/sandbox/payer.json", "--server", f"http://127.0.0.1:{port}",
             "--rpc-url", f"http://127.0.0.1:{rpc_port}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert pay.returncode == 0, pay.stderr + pay.stdout
        result = json.loads(pay.stdout)
        assert result["status"] == 200
        assert result["settlement"]["success"] is True
        assert result["settlement"]["txHash"] == result["signature"]
        assert result["response"]["resource"] == "demo-article"
        assert result["response"]["amount"] == "1000000"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log_path.read_text()[-3000:]

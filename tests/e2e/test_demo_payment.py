"""`make run`'s setup for real: `serve --config configs/demo.yaml --sandbox`, then agents pay.

One demo server per module (the real CLI process, as `make run` starts it, in a copy of
the repository's configs), paid by `cedros-pay pay` (Cedros format, with and without
`--json`), by the official x402 SDK (v2 and v1, tests/support/x402_official_client.py),
by the snippet in docs/x402-official-client.md, and by `cedros-pay pay --official` run
in the SDK's interpreter.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base58
import httpx
import pytest
from support.process import free_port
from support.x402_sdk import CLIENT_SCRIPT, ensure_sdk_venv

REPO = Path(__file__).resolve().parents[2]
DEVNET_CAIP2 = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"


@dataclass(frozen=True)
class Demo:
    root: Path  # the server's working directory: configs/ and data/sandbox/
    url: str
    rpc_url: str
    env: dict[str, str]

    def keypair(self, role: str) -> list[int]:
        name = {"payer": "payer.json", "server": "server-wallet.json",
                "merchant": "merchant.json"}[role]
        key: list[int] = json.loads((self.root / "data" / "sandbox" / name).read_text())
        return key

    def pubkey(self, role: str) -> str:
        return base58.b58encode(bytes(self.keypair(role)[32:])).decode()

    def pay_cli(self, *args: str, python: str | None = None,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`cedros-pay pay ARGS` on the demo; with `python`, the payer module run by it."""
        command = ([python, "-m", "cedros_pay.sandbox.payer"] if python
                   else [sys.executable, "-m", "cedros_pay.cli", "pay"])
        return subprocess.run(
            [*command, *args, "--keypair", "data/sandbox/payer.json", "--server", self.url,
             "--rpc-url", self.rpc_url],
            cwd=self.root, env={**self.env, **(extra_env or {})}, capture_output=True,
            text=True, timeout=90)

    def official(self, product: str, protocol: str) -> dict[str, Any]:
        """The official SDK client script's report for paying one demo product."""
        payer = base58.b58encode(bytes(self.keypair("payer"))).decode()
        proc = subprocess.run(
            [str(ensure_sdk_venv()), str(CLIENT_SCRIPT), "--url", f"{self.url}/paywall/{product}",
             "--rpc", self.rpc_url, "--protocol", protocol, "--keypair", payer],
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        report: dict[str, Any] = json.loads(proc.stdout)
        return report


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "configs", root / "configs")
    port, rpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEDROS_", "X402_"))}
    log_path = root / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", "configs/demo.yaml",
             "--sandbox", "--host", "127.0.0.1", "--port", str(port),
             "--sandbox-port", str(rpc_port)],
            cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(f"http://127.0.0.1:{port}", server, log_path)
        yield Demo(root, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{rpc_port}", env)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log_path.read_text()[-3000:]


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    health: Any = None
    while time.monotonic() < deadline:
        assert server.poll() is None, log_path.read_text()
        try:
            health = httpx.get(f"{url}/cedros-health", timeout=2).json()
            if health["rpcHealthy"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"demo server not healthy in time: {health}")


def decoded(value: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(value))
    return doc


def test_demo_402_offers_exact_paid_by_the_sandbox_server_wallet(demo: Demo) -> None:
    reply = httpx.get(f"{demo.url}/paywall/demo-api-call")
    assert reply.status_code == 402
    offer = decoded(reply.headers["PAYMENT-REQUIRED"])
    assert offer["x402Version"] == 2
    exact = [a for a in offer["accepts"] if a["scheme"] == "exact"]
    assert len(exact) == 1, offer
    assert (exact[0]["network"], exact[0]["amount"]) == (DEVNET_CAIP2, "10000")
    assert exact[0]["payTo"] == demo.pubkey("merchant")
    assert exact[0]["extra"]["feePayer"] == demo.pubkey("server")


def test_official_v2_client_pays_the_demo_api_call(demo: Demo) -> None:
    report = demo.official("demo-api-call", "v2")
    assert report["status"] == 200, report
    settlement = report["settlement"]
    assert settlement["success"] is True and settlement["network"] == DEVNET_CAIP2
    assert settlement["payer"] == demo.pubkey("payer")
    body = report["body"]
    assert (body["granted"], body["resource"], body["amount"]) == (True, "demo-api-call", "10000")
    assert body["signature"] == settlement["transaction"]


def test_official_v1_client_pays_a_demo_cart_item(demo: Demo) -> None:
    report = demo.official("demo-sticker", "v1")
    assert report["status"] == 200, report
    assert "x-payment" in {k.lower() for k in report["exchanges"][1]["request"]["headers"]}
    assert report["settlement"]["success"] is True
    assert (report["body"]["resource"], report["body"]["amount"]) == ("demo-sticker", "200000")


def test_pay_cli_shows_quote_build_sign_settle(demo: Demo) -> None:
    pay = demo.pay_cli("demo-article")
    assert pay.returncode == 0, pay.stderr + pay.stdout
    lines = pay.stdout.splitlines()
    steps = [line.split()[0] for line in lines[:4]]
    assert steps == ["quote", "build", "sign", "settle"], pay.stdout
    merchant_ata = lines[0].split(" to ")[1].split()[0]
    assert "1.000000 USDC (1000000 atomic)" in lines[0] and merchant_ata in lines[1]
    signature = re.search(r"signature (\w+)", lines[2])
    assert signature is not None
    assert f"settled, transaction {signature.group(1)}" in lines[3]
    assert lines[4] == f"paid  HTTP 200; signature {signature.group(1)}"
    assert json.loads("\n".join(lines[5:]))["resource"] == "demo-article"


def test_pay_cli_json_prints_only_the_result(demo: Demo) -> None:
    pay = demo.pay_cli("demo-article", "--json")
    assert pay.returncode == 0, pay.stderr + pay.stdout
    assert pay.stderr == ""
    result = json.loads(pay.stdout)  # the whole of stdout is one JSON document
    assert result["status"] == 200
    assert result["settlement"]["success"] is True
    assert result["settlement"]["txHash"] == result["signature"]
    assert result["response"]["resource"] == "demo-article"
    assert result["response"]["amount"] == result["amount"] == "1000000"
    assert (result["client"], result["network"]) == ("cedros", "devnet")


def test_pay_cli_official_pays_in_the_sdk_interpreter(demo: Demo) -> None:
    sdk = ensure_sdk_venv()  # Cedros's payer module needs only httpx and solders there
    pay = demo.pay_cli("demo-api-call", "--official", python=str(sdk),
                       extra_env={"PYTHONPATH": str(REPO)})
    assert pay.returncode == 0, pay.stderr + pay.stdout
    lines = pay.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["quote", "build", "sign", "settle"]
    assert "10000 atomic units" in lines[0] and demo.pubkey("merchant") in lines[0]
    assert f"fee payer {demo.pubkey('server')}" in lines[1]
    assert "with PAYMENT-SIGNATURE -> 200: settled" in lines[3]
    assert json.loads("\n".join(lines[5:]))["resource"] == "demo-api-call"


def test_documented_official_snippet_pays_the_demo(demo: Demo) -> None:
    doc = (REPO / "docs" / "x402-official-client.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", doc, re.S)
    assert snippet is not None, "docs/x402-official-client.md has no python snippet"
    script = demo.root / "pay_official.py"
    script.write_text(snippet.group(1))
    proc = subprocess.run(
        [str(ensure_sdk_venv()), str(script), f"{demo.url}/paywall/demo-api-call",
         demo.rpc_url], cwd=demo.root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    status, transaction, body = proc.stdout.split(" ", 2)
    assert status == "200"
    assert json.loads(body)["signature"] == transaction


def test_demo_cart_pair_is_quoted_together(demo: Demo) -> None:
    reply = httpx.post(f"{demo.url}/paywall/v1/cart/quote", json={"items": [
        {"resource": "demo-sticker", "quantity": 1}, {"resource": "demo-poster", "quantity": 2}]})
    assert reply.status_code == 200, reply.text
    quote = reply.json()
    assert [i["resource"] for i in quote["items"]] == ["demo-sticker", "demo-poster"]
    assert quote["quote"]["maxAmountRequired"] == str(200_000 + 2 * 500_000)


def test_the_demo_prints_where_everything_is_and_how_to_pay(demo: Demo) -> None:
    log = (demo.root / "server.log").read_text()
    assert f"Cedros Pay is serving on {demo.url}" in log
    for line in (f"GraphiQL      {demo.url}/graphql", f"OpenAPI       {demo.url}/openapi.json",
                 f"metrics       {demo.url}/metrics", f"sandbox RPC   {demo.rpc_url}",
                 "cedros-pay pay demo-article --keypair", "--official --keypair"):
        assert line in log, log[-2000:]
    # Each address it names answers.
    assert httpx.get(f"{demo.url}/openapi.json", timeout=5).json()["openapi"].startswith("3.")
    graphiql = httpx.get(f"{demo.url}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()


RUNNABLE = "<!-- runnable"


def runnable_blocks(readme: str) -> list[str]:
    """The README's shell blocks that a comment marks as runnable against `make run`."""
    blocks: list[str] = []
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(RUNNABLE) and i + 1 < len(lines) and lines[i + 1] == "```sh":
            end = lines.index("```", i + 2)
            blocks.append("\n".join(lines[i + 2:end]))
    return blocks


def test_the_readme_runnable_blocks_work_as_written(demo: Demo) -> None:
    blocks = runnable_blocks((REPO / "README.md").read_text())
    assert blocks, "the README marks no block as runnable"
    (demo.root / ".venv").unlink(missing_ok=True)
    (demo.root / ".venv").symlink_to(REPO / ".venv")
    address = demo.url.removeprefix("http://")
    env = {**demo.env, "CEDROS_PAY_SERVER": demo.url, "CEDROS_PAY_RPC_URL": demo.rpc_url}
    for block in blocks:
        # `make run` listens on 8080; this server has a free port of its own.
        script = block.replace("localhost:8080", address).replace("127.0.0.1:8080", address)
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=demo.root,
                             env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{block}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
        if "cedros-pay pay" in block:  # the quick start: healthy, then two settled payments
            assert run.stdout.startswith('{"status":"ok"'), run.stdout
            assert run.stdout.count('"granted": true') == 2, run.stdout


def test_the_demo_sells_a_monthly_subscription_over_x402(demo: Demo) -> None:
    quote = httpx.post(f"{demo.url}/paywall/v1/subscription/quote",
                       json={"resource": "demo-monthly", "interval": "monthly"}, timeout=10)
    assert quote.status_code == 402, quote.text
    body = quote.json()
    assert body["requirement"]["accepts"][0]["maxAmountRequired"] == "9990000"
    assert body["subscription"]["interval"] == "monthly"
    assert body["subscription"]["durationSeconds"] >= 28 * 86400

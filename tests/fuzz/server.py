"""The server the fuzzers attack: a real `cedros-pay serve --sandbox` process on SQLite.

The demo configuration with what a fuzzer needs to reach every route's logic: rate limits
off (a fuzzer is one very fast client), an admin API key (the admin routes are fuzzed
authenticated, and schemathesis checks they refuse without it), card payments against the
fake Stripe of tests/support (so the Stripe routes answer as in production, not "card
payments are not enabled"), and webhook deliveries queued to a dead loopback port (so the
admin webhook routes have a queue to look at).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from support.fake_stripe import running_fake_stripe
from support.process import clean_env, free_port, log_tail, terminate

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "fuzz-admin-key-0123456789"
STRIPE_KEY = "sk_test_fuzz"
WEBHOOK_SECRET = "whsec_fuzz"


@dataclass(frozen=True)
class FuzzServer:
    url: str
    log: Path
    workdir: Path


def fuzz_config(workdir: Path) -> Path:
    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config["rate_limit"] = {tier: {"enabled": False}
                            for tier in ("global", "per_wallet", "per_ip")}
    config["logging"] = {"level": "warn", "format": "console", "environment": "development"}
    config["admin"] = {"api_keys": [ADMIN_KEY]}
    config["callbacks"] = {**config.get("callbacks", {}),
                           "payment_success_url": "http://127.0.0.1:9/hook"}
    path = workdir / "fuzz.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def fuzz_server(workdir: Path) -> AsyncIterator[FuzzServer]:
    """The server (and its fake Stripe) for the block's duration; its log on failure."""
    async with running_fake_stripe(STRIPE_KEY) as stripe:
        stripe.add_price("price_demo_monthly", 999)
        port = free_port()
        log = workdir / "serve.log"
        env = clean_env(CEDROS_STRIPE_SECRET_KEY=STRIPE_KEY,
                        CEDROS_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                        CEDROS_STRIPE_API_BASE=stripe.url,
                        CEDROS_STRIPE_SUCCESS_URL="https://shop.example/paid",
                        CEDROS_STRIPE_CANCEL_URL="https://shop.example/cancelled")
        process = _start(workdir, port, log, env)
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_ready(url, process, log)
            yield FuzzServer(url, log, workdir)
        finally:
            await asyncio.to_thread(terminate, process, first=signal.SIGTERM)


def _start(workdir: Path, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cedros_pay.cli", "serve", "--config",
             str(fuzz_config(workdir)), "--sandbox", "--sandbox-dir", str(workdir / "sandbox"),
             "--sandbox-port", str(free_port()), "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    poll = process.poll
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(600):
            if poll() is not None:
                raise AssertionError(f"cedros-pay serve exited early\n{log_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/cedros-health")).status_code in (200, 503):
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"cedros-pay serve did not start\n{log_tail(log)}")

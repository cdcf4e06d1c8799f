"""`python -m bench.webhooks`: deliveries per second one webhook worker sustains.

Queues N items in a SQLite (or `--postgres URL`) store, then runs one `WebhookDelivery`
worker, built exactly as the app builds it, against a local receiver in its own process
(uvicorn, answering 200 at once) and reports how long the queue took to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.servers import free_port
from cedros_pay.bootstrap.webhooks import build_webhooks
from cedros_pay.config import load_config
from cedros_pay.core.clock import SystemClock
from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.observability.hooks import HookRegistry
from cedros_pay.storage.open import open_store

_RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

CONFIG = """
x402: {{network: devnet, payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ,
        token_mint: 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU, rpc_url: "http://127.0.0.1:9/"}}
paywall: {{product_source: yaml, resources: {{a: {{description: A, crypto_atomic_amount: 1,
           crypto_token: USDC}}}}}}
coupons: {{coupon_source: disabled}}
callbacks: {{payment_success_url: "{url}", poll_interval: 1s, timeout: 2s,
             hmac_secret: bench-secret}}
"""


async def run(count: int, postgres: str | None, workdir: Path, url: str, batch: int) -> float:
    (workdir / "c.yaml").write_text(CONFIG.format(url=url))
    cfg = load_config(str(workdir / "c.yaml"), environ={}, dotenv_path=None)
    store = await open_store("postgres" if postgres else "sqlite",
                             file_path=str(workdir / "b.db"), postgres_url=postgres or "")
    now = datetime.now(UTC)
    payload = '{"eventId":"evt_000000000000000000000000","eventType":"payment.succeeded"}'
    for i in range(count):
        await store.webhooks.enqueue(PendingWebhook(
            id=f"webhook_bench_{i:06d}", url=url, payload=payload,
            event_type="payment.succeeded", created_at=now, next_attempt_at=now))
    lifecycle = Lifecycle()
    async with httpx.AsyncClient() as http:
        webhooks = build_webhooks(cfg, store, SystemClock(), http=http, hooks=HookRegistry())
        webhooks.delivery.batch = batch
        started = time.perf_counter()
        webhooks.start(lifecycle)
        while (await store.webhooks.counts())[WebhookStatus.SUCCESS] < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        await lifecycle.close()
    await store.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10, help="items claimed per cycle")
    parser.add_argument("--postgres", help="a postgresql+asyncpg:// URL instead of SQLite")
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", _RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}/hook"
    try:
        for _ in range(100):
            try:
                httpx.post(url, timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            elapsed = asyncio.run(run(args.count, args.postgres, Path(tmp), url,
                                      args.batch))
    finally:
        receiver.terminate()
        receiver.wait()
    print(f"{args.count} deliveries in {elapsed:.2f} s: {args.count / elapsed:.0f}/s "
          f"(one worker, batch {args.batch}, {'PostgreSQL' if args.postgres else 'SQLite'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

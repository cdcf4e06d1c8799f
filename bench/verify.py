"""`python -m bench.verify`: x402 verifications per second, and the server's own time.

The sandbox chain runs in this process (CPU 1), the Cedros server in its own process
(pinned to CPU 0, as in the main bench). N distinct resources' payments (each one a real
signed TransferChecked, over-paying by i atomic units so every signature differs) are
sent with C in flight. Throughput is wall-clock; the server's own time per verification
is its `Server-Timing` check + submit (everything but the wait for confirmation); the
confirmation wait is printed on its own, so a fall back to the status backstop (5 s) shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.errors import BenchError
from bench.servers import HOST, Server, cedros_executable, free_port, server_env
from cedros_pay.sandbox.network import DevnetSandbox, build_devnet_sandbox
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.server import SandboxServer
from cedros_pay.sandbox.testing import usdc_transfer

PRODUCT = "demo-api-call"  # 0.01 USDC, no memo template
PRICE = 10_000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(n: int, concurrency: int, pin: list[str]) -> int:
    devnet = build_devnet_sandbox(payer_usdc=10**12)
    sandbox = SandboxServer(devnet.chain, port=0)
    async with sandbox:
        work = Path(tempfile.mkdtemp(prefix="cedros-bench-verify-"))
        raw = yaml.safe_load((Path(__file__).with_name("catalog.yaml")).read_text())
        raw["storage"]["file_path"] = str(work / "verify.db")
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        env = server_env() | {
            "CEDROS_X402_RPC_URL": sandbox.url, "CEDROS_X402_WS_URL": sandbox.ws_url,
            "CEDROS_X402_PAYMENT_ADDRESS": str(devnet.wallets.merchant.pubkey()),
            "CEDROS_X402_TOKEN_MINT": str(devnet.usdc_mint),
        }
        port = free_port()
        server = Server("cedros-pay", [*pin, cedros_executable(), "serve", "--config",
                                       str(config), "--host", HOST, "--port", str(port)],
                        port, "/cedros-health", work / "cedros.log")
        server.start(work, env)
        try:
            await asyncio.to_thread(server.wait_ready)
            return await _load(server, devnet, n, concurrency)
        finally:
            server.stop()


async def _load(server: Server, devnet: DevnetSandbox, n: int, concurrency: int) -> int:
    gate = asyncio.Semaphore(concurrency)
    own_ms: list[float] = []
    latency_ms: list[float] = []
    confirm_ms: list[float] = []
    failures: list[str] = []

    async with httpx.AsyncClient(timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as http:
        async def one(i: int) -> None:
            async with gate:
                tx = usdc_transfer(devnet, PRICE + i,
                                   blockhash=devnet.chain.latest_block.blockhash)
                started = time.perf_counter()
                resp = await http.post(server.url("/paywall/v1/verify"),
                                       headers={"X-PAYMENT": v0_payment_header(tx, PRODUCT)})
                latency_ms.append((time.perf_counter() - started) * 1000)
                if resp.status_code != 200:
                    failures.append(f"{resp.status_code} {resp.text[:200]}")
                    return
                parts = dict(p.split(";dur=") for p in resp.headers["Server-Timing"].split(", "))
                own_ms.append(float(parts["check"]) + float(parts["submit"]))
                confirm_ms.append(float(parts["confirm"]))

        await one(0)  # warm-up: first connection, first WebSocket subscription
        own_ms.clear()
        latency_ms.clear()
        confirm_ms.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(1, n + 1)))
        wall = time.perf_counter() - started

    ok = len(own_ms)
    print(f"{ok}/{n} verifications settled, {concurrency} in flight, "
          f"{wall:.2f} s wall clock")
    print(f"  verifications/s           {ok / wall:8.1f}")
    if ok:
        print(f"  server's own time (ms)    p50 {statistics.median(own_ms):6.2f}   "
              f"p99 {_pct(own_ms, 0.99):6.2f}   (check + submit, no confirmation wait)")
        print(f"  client latency (ms)       p50 {statistics.median(latency_ms):6.2f}   "
              f"p99 {_pct(latency_ms, 0.99):6.2f}")
        print(f"  confirmation wait (ms)    p50 {statistics.median(confirm_ms):6.2f}   "
              f"p99 {_pct(confirm_ms, 0.99):6.2f}   max {max(confirm_ms):6.2f}")
    for failure in failures[:5]:
        print(f"  failed: {failure}")
    return 0 if ok == n else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="payments (default %(default)s)")
    parser.add_argument("-c", "--concurrency", type=int, default=16,
                        help="in flight (default %(default)s)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0")
    args = parser.parse_args(argv)
    pin = [] if args.no_pin or (os.cpu_count() or 1) < 2 else ["taskset", "-c", "0"]
    if pin:
        os.sched_setaffinity(0, {1})
    try:
        return asyncio.run(_run(args.n, args.concurrency, pin))
    except BenchError as exc:
        print(f"bench.verify: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

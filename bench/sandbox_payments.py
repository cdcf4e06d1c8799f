"""`python -m bench.sandbox_payments`: what a payment costs against the sandbox chain.

Two figures, each beside a bare baseline measured in the same run (so a loaded machine
moves both):

- **RPC round trip**: one client payment as solana-py makes it (getLatestBlockhash,
  sendTransaction, getSignatureStatuses) against the bare sendTransaction +
  getSignatureStatuses over plain httpx.
- **Verification**: the server's SolanaVerifier (WebSocket and polling confirmation) per
  payment, split into check / submit / confirm, against the same bare baseline.
- **Payment -> merchant webhook** (`--webhooks`): a real `cedros-pay serve` on SQLite pays
  N resources; the time from the payment being recorded (`eventTimestamp`) to a receiver
  on 127.0.0.1 getting the POST, against the worker's poll interval (1 s).

PASS when every payment landed (and reached the merchant once), the verifier's own time
(check + submit, median) stays within `--max-ratio` of the bare send + status median, and
the webhook p50 is under a tenth of the poll interval (the worker is woken on enqueue).
The e2e tests assert behaviour only; the timings live here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from solana.rpc.async_api import AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.servers import HOST, Server, cedros_executable, free_port, server_env
from cedros_pay.core.clock import parse_rfc3339
from cedros_pay.integrations.solana.confirm import ConfirmationSettings
from cedros_pay.integrations.solana.verifier import (
    Requirement,
    SolanaVerifier,
    VerificationResult,
)
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.x402.cedros_v0 import parse_payment_header
from cedros_pay.x402.schemas import PaymentPayload

AMOUNT = 1_000
CONFIRMATION = ConfirmationSettings(timeout=30.0, poll_interval=0.02, ws_backstop_interval=0.2)


@dataclass
class Figures:
    label: str
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def line(self) -> str:
        return (f"{self.label}: median {self.median:.2f} ms, max {max(self.samples_ms):.2f} ms"
                f" ({len(self.samples_ms)} payments)")


def _payload(tx_bytes: bytes, signature: str) -> PaymentPayload:
    doc = {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
           "payload": {"transaction": base64.b64encode(tx_bytes).decode(),
                       "signature": signature, "resource": "bench",
                       "resourceType": "regular"}}
    return parse_payment_header(base64.b64encode(json.dumps(doc).encode()).decode())


def _requirement(sb: RunningSandbox) -> Requirement:
    return Requirement(network="devnet", mints=(str(sb.devnet.usdc_mint),), decimals=6,
                       amount_atomic=AMOUNT, recipient_owner=str(sb.wallets.merchant.pubkey()))


async def _bare(sb: RunningSandbox, http: httpx.AsyncClient, memo: str) -> float:
    """sendTransaction + getSignatureStatuses over plain httpx; milliseconds."""
    tx = usdc_transfer(sb.devnet, AMOUNT, blockhash=sb.chain.latest_block.blockhash, memo=memo)
    started = time.perf_counter()
    await http.post(sb.url, json={
        "jsonrpc": "2.0", "id": 1, "method": "sendTransaction",
        "params": [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}]})
    await http.post(sb.url, json={"jsonrpc": "2.0", "id": 2, "method": "getSignatureStatuses",
                                  "params": [[str(tx.signatures[0])]]})
    return (time.perf_counter() - started) * 1000


async def rpc_round_trips(sb: RunningSandbox, n: int) -> tuple[Figures, Figures]:
    client_ms: list[float] = []
    bare_ms: list[float] = []
    async with AsyncClient(sb.url) as rpc, httpx.AsyncClient() as http:
        for i in range(n):
            started = time.perf_counter()
            blockhash = (await rpc.get_latest_blockhash()).value.blockhash
            tx = usdc_transfer(sb.devnet, AMOUNT, blockhash=blockhash, memo=f"rt-{i}")
            signature = (await rpc.send_raw_transaction(bytes(tx))).value
            status = (await rpc.get_signature_statuses([signature])).value[0]
            client_ms.append((time.perf_counter() - started) * 1000)
            if status is None or status.err is not None:
                raise SystemExit(f"payment {i} did not land: {status}")
            bare_ms.append(await _bare(sb, http, f"rt-bare-{i}"))
    return (Figures("solana-py blockhash + send + status", client_ms),
            Figures("bare send + status", bare_ms))


async def verifications(sb: RunningSandbox, n: int, *, websocket: bool
                        ) -> tuple[list[VerificationResult], Figures]:
    v = SolanaVerifier(sb.url, sb.ws_url, network="devnet", confirmation=CONFIRMATION,
                       use_websocket=websocket)
    results: list[VerificationResult] = []
    bare_ms: list[float] = []
    try:
        warm = usdc_transfer(sb.devnet, AMOUNT, blockhash=sb.chain.latest_block.blockhash,
                             memo="warm")
        await v.verify(_payload(bytes(warm), str(warm.signatures[0])), _requirement(sb))
        async with httpx.AsyncClient() as http:
            for i in range(n):
                tx = usdc_transfer(sb.devnet, AMOUNT, blockhash=sb.chain.latest_block.blockhash,
                                   memo=f"v-{websocket}-{i}", compute_unit_limit=40_000)
                results.append(await v.verify(_payload(bytes(tx), str(tx.signatures[0])),
                                              _requirement(sb)))
                bare_ms.append(await _bare(sb, http, f"v-bare-{websocket}-{i}"))
    finally:
        await v.aclose()
    return results, Figures("bare send + status", bare_ms)


POLL_INTERVAL_MS = 1000.0
WEBHOOK_PRICE = 10_000  # the server's smallest accepted amount
WEBHOOK_CONFIG = """
paywall:
  product_source: yaml
  resources:
    article: {{description: An article, crypto_atomic_amount: {price}, crypto_token: USDC}}
coupons: {{coupon_source: disabled}}
callbacks: {{payment_success_url: "{hook}", timeout: 2s, poll_interval: 1s}}
storage: {{backend: sqlite, file_path: "{db}"}}
rate_limit: {{global: {{enabled: false}}, per_ip: {{enabled: false}},
             per_wallet: {{enabled: false}}}}
logging: {{level: warn}}
"""


async def webhook_latency(sb: RunningSandbox, n: int) -> Figures | None:
    """Payment recorded -> merchant receiver, through a real server; None on a failure."""
    arrivals: list[tuple[float, dict[str, object]]] = []
    all_in = asyncio.Event()

    async def hook(request: Request) -> Response:
        arrivals.append((time.time(), await request.json()))
        if len(arrivals) >= n:
            all_in.set()
        return Response(status_code=204)

    hook_port = free_port()
    receiver = uvicorn.Server(uvicorn.Config(
        Starlette(routes=[Route("/hook", hook, methods=["POST"])]), host=HOST,
        port=hook_port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(receiver.serve())
    work = Path(tempfile.mkdtemp(prefix="cedros-bench-webhooks-"))
    config = work / "config.yaml"
    config.write_text(WEBHOOK_CONFIG.format(hook=f"http://{HOST}:{hook_port}/hook",
                                            db=work / "cedros.db", price=WEBHOOK_PRICE))
    port = free_port()
    server = Server("cedros-pay", [cedros_executable(), "serve", "--config", str(config),
                                   "--host", HOST, "--port", str(port)],
                    port, "/cedros-health", work / "cedros.log")
    server.start(work, server_env() | {
        "CEDROS_X402_NETWORK": "devnet", "CEDROS_X402_RPC_URL": sb.url,
        "CEDROS_X402_WS_URL": sb.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint)})
    signatures: set[str] = set()
    try:
        await asyncio.to_thread(server.wait_ready)
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(n):
                tx = usdc_transfer(sb.devnet, WEBHOOK_PRICE,
                                   blockhash=sb.chain.produce_blocks(1).blockhash)
                resp = await http.post(server.url("/paywall/v1/verify"), headers={
                    "X-PAYMENT": v0_payment_header(tx, "article")})
                if resp.status_code != 200:
                    print(f"payment refused: {resp.status_code} {resp.text[:200]}")
                    return None
                signatures.add(str(tx.signatures[0]))
        await asyncio.wait_for(all_in.wait(), 60)
    except TimeoutError:
        print(f"only {len(arrivals)} of {n} webhooks arrived")
        return None
    finally:
        server.stop()
        receiver.should_exit = True
        await serving
    if {str(body.get("proofSignature")) for _, body in arrivals} != signatures:
        print("the webhooks do not match the payments one to one")
        return None
    return Figures("payment recorded -> merchant webhook", [
        (at - parse_rfc3339(str(body["eventTimestamp"])).timestamp()) * 1000
        for at, body in arrivals])


async def run(n: int, max_ratio: float, webhooks: bool) -> bool:
    ok = True
    async with running_devnet_sandbox() as sb:
        start_balance = sb.chain.token_balance(sb.wallets.merchant.pubkey(), sb.devnet.usdc_mint)
        client, bare = await rpc_round_trips(sb, n)
        print(client.line())
        print(f"  {bare.line()}  -> ratio {client.median / bare.median:.2f}x")
        expected = 2 * n
        for websocket in (True, False):
            results, bare = await verifications(sb, n, websocket=websocket)
            expected += 2 * n + 1
            mode = "websocket" if websocket else "polling"
            own = Figures(f"[{mode}] verifier check + submit",
                          [r.check_ms + r.submit_ms for r in results])
            confirm = Figures(f"[{mode}] confirm", [r.confirm_ms for r in results])
            total = Figures(f"[{mode}] total", [r.total_ms for r in results])
            ratio = own.median / bare.median
            print(own.line())
            print(f"  {confirm.line()}\n  {total.line()}")
            print(f"  {bare.line()}  -> own time {ratio:.2f}x the bare round trip "
                  f"(target <= {max_ratio:.1f}x)")
            ok = ok and ratio <= max_ratio
        landed = sb.chain.token_balance(sb.wallets.merchant.pubkey(),
                                        sb.devnet.usdc_mint) - start_balance
        if landed != expected * AMOUNT:
            print(f"merchant received {landed}, expected {expected * AMOUNT}")
            ok = False
        if webhooks:
            hooks = await webhook_latency(sb, n)
            if hooks is None:
                return False
            print(f"{hooks.line()}, p99 {_p99(hooks.samples_ms):.2f} ms  -> "
                  f"{hooks.median / POLL_INTERVAL_MS:.3f} of the poll interval "
                  f"(target < 0.1)")
            ok = ok and hooks.median < POLL_INTERVAL_MS / 10
    return ok


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-n", type=int, default=30, help="payments per figure (default 30)")
    parser.add_argument("--max-ratio", type=float, default=2.0,
                        help="verifier check+submit over bare send+status (default 2.0)")
    parser.add_argument("--webhooks", action="store_true",
                        help="also the payment -> merchant webhook latency (a real server)")
    args = parser.parse_args(argv)
    ok = asyncio.run(run(args.n, args.max_ratio, args.webhooks))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

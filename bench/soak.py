"""`python -m bench.soak`: the double-spend soak (issue 18).

Two real `cedros-pay serve` processes on one PostgreSQL database and one sandbox chain (run
in this process). `--payments` (default 100) distinct real payments, each a signed
TransferChecked built just in time (the sandbox keeps 150 blockhashes and lands a block per
settlement), and each submitted `--copies` (default 100) times at once, alternating between
the two processes and between every route and header that accepts a payment:

- Cedros v0 (`X-PAYMENT`, the payer pays the fee) on POST /paywall/v1/verify, GET and POST
  /paywall/{id}, and the quote endpoint's retry (POST /paywall/v1/quote);
- official x402 `exact`, the same transaction as v2 (`PAYMENT-SIGNATURE`) and as v1
  (`X-PAYMENT`), on GET and POST /paywall/{id} and the quote retry (the server co-signs as
  fee payer).

Half the payments are v0, half exact. PASS when exactly one copy of each payment is granted,
the database holds one payment row and one `payment.succeeded` webhook row per payment (and
the merchant's receiver got each event once), the merchant was paid once per payment, and
every other answer is a replay refusal: a 4xx whose spec code is `payment_already_used`,
never a 5xx or a dropped connection. Loopback only; PostgreSQL comes from the test harness
(tests/support/postgres.py: a private
server, or the one `CEDROS_TEST_POSTGRES_URL` names).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.client import Pool, ProtocolError, Request, Response
from bench.errors import BenchError
from bench.servers import HOST, Server, cedros_executable, free_port, server_env
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.sql.engine import create_postgres_engine
from cedros_pay.storage.sql.migrate import upgrade

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postgres import plain_dsn, start_postgres
from support.webhook_receiver import WebhookReceiver

PRODUCT = "soak-item"
PRICE = 10_000  # 0.01 USDC
REPLAY_CODES = frozenset({"payment_already_used"})
QUIET_LOG = ("Traceback", '"level":"error"')

CONFIG = """
paywall:
  product_source: yaml
  resources:
    {product}: {{description: One soak payment, crypto_atomic_amount: {price},
                 crypto_token: USDC}}
storage: {{backend: postgres, postgres_url: "{postgres_url}"}}
callbacks:
  payment_success_url: "{webhook_url}"
  timeout: 5s
  poll_interval: 200ms
rate_limit:
  global: {{limit: 100000000, window: 1m}}
  per_wallet: {{limit: 100000000, window: 1m}}
  per_ip: {{limit: 100000000, window: 1m}}
logging: {{level: warn}}
"""


def _b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


@dataclass(frozen=True, slots=True)
class Payment:
    """One signed transaction and the requests that each try to settle it."""

    index: int
    kind: str  # "v0" or "exact"
    variants: tuple[Request, ...]


def v0_variants(header: str) -> tuple[Request, ...]:
    paid = (("X-PAYMENT", header),)
    return (Request("POST", "/paywall/v1/verify", paid),
            Request("GET", f"/paywall/{PRODUCT}", paid),
            Request("POST", f"/paywall/{PRODUCT}", paid),
            Request.json("POST", "/paywall/v1/quote", {"resource": PRODUCT}, paid))


def exact_variants(v2: str, v1: str) -> tuple[Request, ...]:
    sig, xpay = (("PAYMENT-SIGNATURE", v2),), (("X-PAYMENT", v1),)
    return (Request("GET", f"/paywall/{PRODUCT}", sig),
            Request("GET", f"/paywall/{PRODUCT}", xpay),
            Request("POST", f"/paywall/{PRODUCT}", sig),
            Request.json("POST", "/paywall/v1/quote", {"resource": PRODUCT}, sig),
            Request.json("POST", "/paywall/v1/quote", {"resource": PRODUCT}, xpay))


async def build_payment(index: int, sandbox: RunningSandbox, offers: Pool) -> Payment:
    """Payment `index`: even ones v0, odd ones exact (against a fresh offer, whose memo
    the transaction carries). The blockhash is the chain's latest, read now."""
    devnet = sandbox.devnet
    blockhash = sandbox.chain.latest_block.blockhash
    if index % 2 == 0:
        tx = usdc_transfer(devnet, PRICE, blockhash=blockhash)
        return Payment(index, "v0", v0_variants(v0_payment_header(tx, PRODUCT)))
    reply = await offers.send(Request("GET", f"/paywall/{PRODUCT}"))
    if reply.status != 402 or "payment-required" not in reply.headers:
        raise BenchError(f"no exact offer: {reply.status} {reply.body[:200]!r}")
    offer = json.loads(base64.b64decode(reply.headers["payment-required"]))
    if not offer["accepts"]:
        raise BenchError("the exact offer is empty (no server wallet configured?)")
    accepted = offer["accepts"][0]
    tx = usdc_transfer(devnet, int(accepted["amount"]), blockhash=blockhash,
                       memo=accepted["extra"]["memo"], fee_payer=sandbox.wallets.server.pubkey(),
                       compute_unit_limit=20_000, compute_unit_price=1)
    raw = base64.b64encode(bytes(tx)).decode()
    v2 = _b64({"x402Version": 2, "payload": {"transaction": raw}, "accepted": accepted,
               "resource": offer["resource"]})
    v1 = _b64({"x402Version": 1, "scheme": "exact", "network": "solana-devnet",
               "payload": {"transaction": raw}})
    return Payment(index, "exact", exact_variants(v2, v1))


@dataclass(slots=True)
class Figures:
    """What the soak saw, and what the database and the merchant ended with."""

    payments: int
    copies: int
    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[tuple[int, str]] = field(default_factory=Counter)
    grants_per_payment: Counter[int] = field(default_factory=Counter)
    granted_signatures: set[str] = field(default_factory=set)
    winners: Counter[str] = field(default_factory=Counter)  # which route and header won
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # transport errors, 5xx (first few)
    wall: float = 0.0
    rows: int = -1
    events: int = -1
    distinct_events: int = -1
    deliveries: int = -1
    distinct_deliveries: int = -1
    merchant_paid: int = -1
    log_problems: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def grants(self) -> int:
        return self.statuses[200]

    def problems(self) -> list[str]:
        n = self.payments
        out = []
        if self.requests != n * self.copies:
            out.append(f"{self.requests} answers for {n * self.copies} requests")
        twice = {i: g for i, g in self.grants_per_payment.items() if g != 1}
        missing = n - len(self.grants_per_payment)
        if twice or missing or self.grants != n:
            out.append(f"{self.grants} grants for {n} payments ({missing} never granted, "
                       f"granted more than once: {twice or 'none'})")
        for name, value in (("payment rows", self.rows), ("payment.succeeded rows", self.events),
                            ("distinct event ids", self.distinct_events),
                            ("webhook deliveries", self.deliveries),
                            ("distinct deliveries", self.distinct_deliveries),
                            ("distinct granted signatures", len(self.granted_signatures))):
            if value != n:
                out.append(f"{value} {name}, expected {n}")
        if self.merchant_paid != n * PRICE:
            out.append(f"merchant received {self.merchant_paid} atomic, expected {n * PRICE}")
        bad = {k: v for k, v in self.refusals.items()
               if not 400 <= k[0] < 500 or k[1] not in REPLAY_CODES}
        if bad:
            out.append(f"refusals that are not clean replay refusals: {bad}")
        out += self.failures + self.log_problems
        return out

    def report(self) -> str:
        lat = sorted(self.latencies_ms)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else 0.0
        lines = [
            f"{self.payments} payments x {self.copies} copies across 2 serve processes, "
            f"one PostgreSQL",
            f"  requests        {self.requests:>8,}   in {self.wall:.1f} s "
            f"({self.requests / self.wall:,.0f} req/s)" if self.wall else "",
            f"  latency (ms)    p50 {statistics.median(lat) if lat else 0:7.1f}   "
            f"p99 {p99:7.1f}   max {lat[-1] if lat else 0:7.1f}",
            f"  grants          {self.grants:>8,}   (payments granted once: "
            f"{sum(1 for g in self.grants_per_payment.values() if g == 1)})",
            f"  payment rows    {self.rows:>8,}",
            f"  events          {self.events:>8,}   payment.succeeded webhook rows "
            f"({self.distinct_events} distinct ids; {self.deliveries} delivered, "
            f"{self.distinct_deliveries} distinct)",
            f"  merchant paid   {self.merchant_paid:>8,}   atomic USDC "
            f"(expected {self.payments * PRICE:,})",
            "  granted through " + ", ".join(f"{label}: {n}" for label, n
                                             in sorted(self.winners.items())),
            "  refusals        " + (", ".join(f"{status} {code}: {n:,}" for (status, code), n
                                             in sorted(self.refusals.items())) or "none"),
        ]
        lines += [f"  problem: {p}" for p in self.problems()]
        lines.append("PASS" if not self.problems() else "FAIL")
        return "\n".join(line for line in lines if line)


def _label(payment: Payment, request: Request) -> str:
    header = next(name for name, _ in request.headers
                  if name in ("X-PAYMENT", "PAYMENT-SIGNATURE"))
    version = "v0" if payment.kind == "v0" else "v2" if header == "PAYMENT-SIGNATURE" else "v1"
    return f"{version} {header} {request.method} {request.path}"


class Soak:
    """The load: payments built just in time, each one's copies sent at once."""

    def __init__(self, sandbox: RunningSandbox, pools: list[Pool], figures: Figures) -> None:
        self.sandbox = sandbox
        self.pools = pools
        self.figures = figures

    async def _one(self, payment: Payment, copy: int) -> None:
        f = self.figures
        pool = self.pools[copy % len(self.pools)]
        request = payment.variants[(copy // len(self.pools)) % len(payment.variants)]
        started = time.perf_counter()
        try:
            response = await pool.send(request)
        except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
            f.statuses[0] += 1
            f.failures.append(f"payment {payment.index} copy {copy}: {exc!r}")
            return
        f.latencies_ms.append((time.perf_counter() - started) * 1000)
        f.statuses[response.status] += 1
        self._judge(payment, request, response)

    def _judge(self, payment: Payment, request: Request, response: Response) -> None:
        f = self.figures
        if response.status == 200:
            f.grants_per_payment[payment.index] += 1
            f.granted_signatures.add(str(response.json()["signature"]))
            f.winners[_label(payment, request)] += 1
            return
        code = response.error_code()
        f.refusals[response.status, code] += 1
        if response.status >= 500 and len(f.failures) < 10:
            f.failures.append(f"{response.status} on {request.method} {request.path} "
                              f"({payment.kind}): {response.body[:300]!r}")

    async def payment(self, index: int) -> None:
        payment = await build_payment(index, self.sandbox, self.pools[0])
        order = list(range(self.figures.copies))
        secrets.SystemRandom().shuffle(order)  # no route or process always goes first
        await asyncio.gather(*(self._one(payment, copy) for copy in order))

    async def run(self, inflight: int) -> None:
        next_index: Iterator[int] = iter(range(self.figures.payments))

        async def lane() -> None:
            for index in next_index:
                await self.payment(index)
                done = index + 1
                if done % 10 == 0:
                    print(f"  {done} payments sent", file=sys.stderr, flush=True)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(inflight)))
        self.figures.wall = time.perf_counter() - started


async def count_rows(dsn: str) -> tuple[int, int, int, int]:
    """(payment rows, payment.succeeded rows, their distinct event ids, still unsettled)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM payment_transactions")
        events, distinct = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT event_id) FROM webhook_queue "
            "WHERE event_type = 'payment.succeeded'")
        unsettled = await conn.fetchval(
            "SELECT count(*) FROM webhook_queue WHERE status IN ('pending', 'processing')")
        return int(rows), int(events), int(distinct), int(unsettled)
    finally:
        await conn.close()


def _merchant_usdc(sandbox: RunningSandbox) -> int:
    d = sandbox.devnet
    return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)


@contextlib.asynccontextmanager
async def two_servers(workdir: Path, sandbox: RunningSandbox, postgres_url: str,
                      webhook_url: str) -> AsyncIterator[list[Server]]:
    """Two `serve` processes on one migrated database, on the sandbox chain."""
    engine = create_postgres_engine(postgres_url)
    await upgrade(engine)  # once, so the two processes do not race to migrate
    await engine.dispose()
    config = workdir / "config.yaml"
    config.write_text(CONFIG.format(product=PRODUCT, price=PRICE, postgres_url=postgres_url,
                                    webhook_url=webhook_url))
    env = server_env() | {
        "CEDROS_X402_NETWORK": "devnet", "CEDROS_X402_RPC_URL": sandbox.url,
        "CEDROS_X402_WS_URL": sandbox.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sandbox.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sandbox.devnet.usdc_mint),
        "CEDROS_X402_GASLESS_ENABLED": "true",
        "X402_SERVER_WALLET_1": str(sandbox.wallets.server),
    }
    servers = []
    for name in ("a", "b"):
        port = free_port()
        servers.append(Server(f"serve-{name}", [cedros_executable(), "serve", "--config",
                                                str(config), "--host", HOST, "--port",
                                                str(port)],
                              port, "/cedros-health", workdir / f"serve-{name}.log"))
    try:
        for server in servers:
            server.start(workdir, env)
        for server in servers:
            await asyncio.to_thread(server.wait_ready)
        yield servers
    finally:
        for server in servers:  # off the loop: they close WebSockets served on it
            await asyncio.to_thread(server.stop)


async def soak(postgres_url: str, payments: int, copies: int, inflight: int) -> Figures:
    figures = Figures(payments, copies)
    receiver = WebhookReceiver().up()
    try:
        async with running_devnet_sandbox() as sandbox:
            with tempfile.TemporaryDirectory(prefix="cedros-soak-") as tmp:
                async with two_servers(Path(tmp), sandbox, postgres_url,
                                       receiver.url) as servers:
                    pools = [Pool(s.port) for s in servers]
                    before = _merchant_usdc(sandbox)
                    try:
                        await Soak(sandbox, pools, figures).run(inflight)
                    finally:
                        for pool in pools:
                            await pool.close()
                    for server in servers:
                        server.check_alive()
                    figures.merchant_paid = _merchant_usdc(sandbox) - before
                    await _settle_webhooks(figures, plain_dsn(postgres_url), receiver)
                for server in servers:
                    text = server.log_path.read_text(errors="replace")
                    figures.log_problems += [
                        f"{server.name} logged {needle!r} ({text.count(needle)}x)"
                        for needle in QUIET_LOG if needle in text]
    finally:
        receiver.down()
    return figures


async def _settle_webhooks(figures: Figures, dsn: str, receiver: WebhookReceiver) -> None:
    """Wait (up to a minute) until no webhook row is pending, then count."""
    deadline = time.monotonic() + 60
    while True:
        figures.rows, figures.events, figures.distinct_events, unsettled = await count_rows(dsn)
        if unsettled == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    delivered = receiver.snapshot()
    figures.deliveries = len(delivered)
    figures.distinct_deliveries = len({d.json()["eventId"] for d in delivered})


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh database on the test harness's server: a private one it starts, or the one
    `CEDROS_TEST_POSTGRES_URL` names."""
    server = start_postgres()
    name = f"soak_{uuid.uuid4().hex[:10]}"
    try:
        yield server.create_database(name)
    finally:
        with contextlib.suppress(Exception):
            server.drop_database(name)
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100,
                        help="distinct payments (default %(default)s)")
    parser.add_argument("--copies", type=int, default=100,
                        help="times each payment is sent at once (default %(default)s)")
    parser.add_argument("--inflight", type=int, default=1,
                        help="payments whose copies are in flight together (default "
                             "%(default)s)")
    args = parser.parse_args(argv)
    if args.payments < 1 or args.copies < 1 or args.inflight < 1:
        parser.error("--payments, --copies and --inflight must be at least 1")
    try:
        with database() as url:
            figures = asyncio.run(soak(url, args.payments, args.copies, args.inflight))
    except BenchError as exc:
        print(f"bench.soak: {exc}", file=sys.stderr)
        return 2
    print(figures.report())
    return 0 if not figures.problems() else 1


if __name__ == "__main__":
    raise SystemExit(main())

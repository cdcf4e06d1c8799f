"""`python -m bench.memory`: resident memory of `cedros-pay serve`, idle and under load.

One real `serve` process on bench/catalog.yaml (SQLite in a temporary directory, an RPC URL
nobody answers: no request of the mix reaches Solana) gets `--requests` (default 200,000)
requests of a mix that touches every layer a public client can reach: the quote, the
product list, the GraphQL catalog page and a GraphQL document never seen before (a fresh
alias), cart quotes under 1,000 Idempotency-Keys (stored, then replayed), a quote with
a coupon code nobody knows, a 402 offer from the resource endpoint, payment headers that
are garbage (random base64) on `/paywall/v1/verify` and `/paywall/{id}`, real signed
transfers that pay too little (each a new signature), look-ups of unknown signatures, and
a wallet header that changes on every product request (per-client limiter buckets). Every
other value a client controls is fresh per request, so a memo keyed by one of them shows
as growth.

VmRSS (/proc/<pid>/status) is read idle, then after each tenth of the run. Resident
memory grows while caches, pools and the allocator's arenas warm up; a leak keeps
growing. PASS: growth over the second half < 5 % and no answer is a 5xx or other than
the kind's expected status. The server is pinned to CPU 0 and this process to CPU 1
when there are two CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from bench.client import Request, Response, drive
from bench.errors import BenchError
from bench.servers import HOST, Server, cedros_executable, free_port, server_env, write_config
from bench.targets import GRAPHQL_QUERY
from cedros_pay.sandbox import spl

MAX_GROWTH = 0.05  # the target: < 5 % over the second half
SAMPLES = 10
CONNECTIONS = 16
# Idempotency keys the cart quotes cycle through: each stored response costs ~5 KiB, and
# the memory store keeps up to idempotency.max_entries (10,000) of them, so fresh keys on
# every request would measure that bound filling up (~50 MiB), not a leak.
IDEMPOTENCY_KEYS = 1_000


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


def _b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


@dataclass(frozen=True, slots=True)
class Kind:
    """One request shape of the mix: how to make a fresh one, and the status it gets."""

    name: str
    make: Callable[[], Request]
    expect: int


class Mix:
    """The request kinds, built from the catalog the server runs on."""

    def __init__(self, catalog: dict[str, object], only: str = "") -> None:
        x402 = catalog["x402"]
        assert isinstance(x402, dict)
        self._mint = Pubkey.from_string(x402["token_mint"])
        self._decimals = int(x402["token_decimals"])
        merchant = Pubkey.from_string(x402["payment_address"])
        self._destination = spl.associated_token_address(merchant, self._mint)
        self._payer = Keypair()
        self._source = spl.associated_token_address(self._payer.pubkey(), self._mint)
        keys = itertools.cycle([secrets.token_hex(16) for _ in range(IDEMPOTENCY_KEYS)])
        self.kinds: tuple[Kind, ...] = (
            Kind("quote", lambda: Request.json("POST", "/paywall/v1/quote",
                                               {"resource": "demo-article"}), 402),
            Kind("products", lambda: Request("GET", "/paywall/v1/products", (
                ("X-Wallet", str(Keypair().pubkey())),)), 200),
            Kind("graphql", lambda: Request.json("POST", "/graphql",
                                                 {"query": GRAPHQL_QUERY}), 200),
            Kind("graphql-fresh", lambda: Request.json("POST", "/graphql", {
                "query": f"{{ p{secrets.token_hex(4)}: products(first: 2) "
                         "{ edges { node { id } } } }"}), 200),
            Kind("cart-quote", lambda: Request.json("POST", "/paywall/v1/cart/quote", {
                "items": [{"resource": "demo-article", "quantity": 1},
                          {"resource": "demo-ebook", "quantity": 2}]},
                (("Idempotency-Key", next(keys)),)), 200),
            Kind("quote-coupon", lambda: Request.json("POST", "/paywall/v1/quote", {
                "resource": "demo-ebook", "couponCode": secrets.token_hex(6).upper()}), 402),
            Kind("offer", lambda: Request("GET", "/paywall/demo-ebook"), 402),
            Kind("verify-garbage", lambda: Request("POST", "/paywall/v1/verify", (
                ("X-PAYMENT", base64.b64encode(secrets.token_bytes(48)).decode()),)), 402),
            Kind("resource-garbage", lambda: Request("GET", "/paywall/demo-article", (
                ("PAYMENT-SIGNATURE", _b64({"x402Version": 2,
                                            "payload": secrets.token_hex(16)})),)), 402),
            Kind("verify-underpaid", self._underpaid, 402),
            Kind("lookup", lambda: Request(
                "GET", "/paywall/v1/x402-transaction/verify?signature="
                + str(Keypair().sign_message(secrets.token_bytes(8)))), 402),
        )
        if only:
            wanted = {name.strip() for name in only.split(",") if name.strip()}
            unknown = wanted - {k.name for k in self.kinds}
            if unknown:
                raise BenchError(f"unknown kind(s) {', '.join(sorted(unknown))}; choose from "
                                 f"{', '.join(k.name for k in self.kinds)}")
            self.kinds = tuple(k for k in self.kinds if k.name in wanted)

    def _underpaid(self) -> Request:
        """A real signed TransferChecked of 1 atomic unit for a 0.01 USDC product: refused
        offline (amount_below_minimum), never sent; a new signature every time."""
        blockhash = Hash.from_bytes(secrets.token_bytes(32))
        ix = spl.transfer_checked(self._source, self._mint, self._destination,
                                  self._payer.pubkey(), 1, self._decimals)
        tx = VersionedTransaction(MessageV0.try_compile(self._payer.pubkey(), [ix], [],
                                                        blockhash), [self._payer])
        header = _b64({"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
                       "payload": {"transaction": base64.b64encode(bytes(tx)).decode(),
                                   "signature": str(tx.signatures[0]),
                                   "resource": "demo-api-call"}})
        return Request("POST", "/paywall/v1/verify", (("X-PAYMENT", header),))

    def requests(self, count: int, seen: dict[int, Kind]) -> Iterator[Request]:
        """`count` fresh requests, the kinds in turn; `seen` maps each to its kind."""
        for kind in itertools.islice(itertools.cycle(self.kinds), count):
            request = kind.make()
            seen[id(request)] = kind
            yield request


@dataclass(slots=True)
class Outcome:
    samples: list[tuple[int, int]]  # (requests sent so far, VmRSS KiB)
    answers: Counter[tuple[str, int]]
    unexpected: list[str]
    seconds: float
    connections: int

    @property
    def half_growth(self) -> float:
        """Growth of VmRSS from the middle sample to the last."""
        middle = self.samples[len(self.samples) // 2][1]
        return (self.samples[-1][1] - middle) / middle

    @property
    def ok(self) -> bool:
        return self.half_growth < MAX_GROWTH and not self.unexpected


async def load(server: Server, mix: Mix, total: int, connections: int) -> Outcome:
    assert server.pid is not None
    answers: Counter[tuple[str, int]] = Counter()
    unexpected: list[str] = []
    kinds: dict[int, Kind] = {}

    def check(request: Request, response: Response) -> None:
        kind = kinds.pop(id(request))
        answers[kind.name, response.status] += 1
        if response.status != kind.expect and len(unexpected) < 10:
            unexpected.append(f"{kind.name}: {response.status} {response.body[:200]!r}")

    await asyncio.sleep(1.0)
    samples = [(0, rss_kib(server.pid))]
    step = total // SAMPLES
    started = time.perf_counter()
    for i in range(1, SAMPLES + 1):
        count = step if i < SAMPLES else total - step * (SAMPLES - 1)
        tally = await drive(server.port, mix.requests(count, kinds), connections=connections,
                            check=check)
        server.check_alive()
        if tally.failures:
            unexpected.extend(tally.failures)
        samples.append((samples[-1][0] + count, rss_kib(server.pid)))
        print(f"  {samples[-1][0]:>8,} requests  VmRSS {samples[-1][1] / 1024:7.1f} MiB  "
              f"({tally.rps:,.0f} req/s)", file=sys.stderr, flush=True)
    return Outcome(samples, answers, unexpected, time.perf_counter() - started,
                   connections)


def report(outcome: Outcome) -> str:
    idle = outcome.samples[0][1]
    middle_n, middle = outcome.samples[len(outcome.samples) // 2]
    last_n, last = outcome.samples[-1]
    lines = [
        f"{last_n:,} requests in {outcome.seconds:.1f} s "
        f"({last_n / outcome.seconds:,.0f} req/s, {outcome.connections} connections)",
        f"  VmRSS idle                  {idle / 1024:8.1f} MiB",
        f"  VmRSS after {middle_n:>9,}     {middle / 1024:8.1f} MiB  "
        f"({(middle - idle) / idle:+.1%} from idle)",
        f"  VmRSS after {last_n:>9,}     {last / 1024:8.1f} MiB  "
        f"({outcome.half_growth:+.2%} over the second half; target < {MAX_GROWTH:.0%})",
        "  answers: " + ", ".join(f"{name} {status}: {n:,}"
                                  for (name, status), n in sorted(outcome.answers.items())),
    ]
    lines += [f"  unexpected: {u}" for u in outcome.unexpected]
    lines.append("PASS" if outcome.ok else "FAIL")
    return "\n".join(lines)


async def run(total: int, connections: int, pin: list[str], only: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="cedros-bench-memory-") as tmp:
        work = Path(tmp)
        config = write_config(work)
        port = free_port()
        server = Server("cedros-pay", [*pin, cedros_executable(), "serve", "--config",
                                       str(config), "--host", HOST, "--port", str(port)],
                        port, "/cedros-health", work / "cedros.log")
        server.start(work, server_env())
        try:
            await asyncio.to_thread(server.wait_ready)
            mix = Mix(yaml.safe_load(config.read_text()), only)
            return await load(server, mix, total, connections)
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000,
                        help="requests in all (default %(default)s); VmRSS is read after "
                             "each tenth")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help="keep-alive connections (default %(default)s)")
    parser.add_argument("--only", default="", metavar="KINDS",
                        help="comma-separated request kinds (default: all), to find which "
                             "one grows")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server to CPU 0 and this process to CPU 1")
    args = parser.parse_args(argv)
    if args.requests < SAMPLES or args.connections < 1:
        parser.error(f"--requests must be at least {SAMPLES}, --connections at least 1")
    taskset = shutil.which("taskset")
    pin = [] if args.no_pin or not taskset or (os.cpu_count() or 1) < 2 else [taskset, "-c", "0"]
    if pin:
        os.sched_setaffinity(0, {1})
    try:
        outcome = asyncio.run(run(args.requests, args.connections, pin, args.only))
    except BenchError as exc:
        print(f"bench.memory: {exc}", file=sys.stderr)
        return 2
    print(report(outcome))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m bench.verify`: x402 settlements per second, ours and the official SDK's.

One sandbox chain runs in this process (CPU 1) with the load generator; each server under
test runs in its own process pinned to CPU 0, one after the other, against that chain:

- `v0`: Cedros, `POST /paywall/v1/verify` with a Cedros (x402Version 0) X-PAYMENT, the
  payer paying its own fee (the spec's targets: rate, server's own time, client p99);
- `exact`: Cedros, `GET /paywall/<product>` with a v2 PAYMENT-SIGNATURE, `exact` scheme,
  the server's wallet co-signing as fee payer;
- `peer`: the official x402 SDK's SVM `exact` facilitator (bench/peer_facilitator.py, in
  `.venv-x402`), verify + settle of the same kind of transaction, behind a minimal HTTP
  server.

Every payment is a real signed TransferChecked built just in time (the sandbox keeps 150
blockhashes and lands one block per settlement) that over-pays by i atomic units, so
every signature differs. The load generator is a lean keep-alive HTTP/1.1 client over
asyncio streams, one connection per in-flight payment (httpx would cost 3-4 ms of CPU a
request on the generator's core). The server's own time is its `Server-Timing` (v0:
check + submit, without the confirmation wait; peer: verify + settle). CPU per
settlement is read from /proc for the server process and from getrusage for this
process (sandbox + generator), so a loaded machine still shows where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.errors import BenchError
from bench.servers import (
    BENCH_DIR,
    HOST,
    REPO_DIR,
    Server,
    cedros_executable,
    free_port,
    server_env,
)
from cedros_pay.sandbox.network import DevnetSandbox, build_devnet_sandbox
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.server import SandboxServer
from cedros_pay.sandbox.testing import usdc_transfer

PRODUCT = "demo-api-call"  # 0.01 USDC, no memo template
PRICE = 10_000
TARGET_RATE = 400.0  # verifications/s (v0)
TARGET_OWN_P50_MS = 5.0
TARGET_CLIENT_P99_MS = 250.0
TARGET_PEER_RATIO = 2.0  # our exact settlements/s over the SDK facilitator's
SDK_PYTHON = REPO_DIR / ".venv-x402" / "bin" / "python"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the load generator -------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 port: int) -> None:
        self._reader, self._writer = reader, writer
        self._host = f"{HOST}:{port}".encode()

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer, port)

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host,
                b"Content-Length: " + str(len(body)).encode()]
        head += [f"{name}: {value}".encode() for name, value in headers.items()]
        self._writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        lines = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        data = await self._reader.readexactly(int(fields.get("content-length", "0")))
        return status, fields, data

    def close(self) -> None:
        self._writer.close()


def _timings(fields: dict[str, str]) -> dict[str, float]:
    parts = (p.split(";dur=") for p in fields.get("server-timing", "").split(", ") if p)
    return {name: float(ms) for name, ms in parts}


Pay = Callable[[Connection, int], Awaitable[tuple[bool, str, dict[str, float]]]]


@dataclass
class Run:
    name: str
    n: int
    concurrency: int
    own: tuple[str, ...]  # Server-Timing parts that make the server's own time
    wall: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    own_ms: list[float] = field(default_factory=list)
    confirm_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    local_cpu_s: float = 0.0

    @property
    def settled(self) -> int:
        return len(self.latency_ms)

    @property
    def rate(self) -> float:
        return self.settled / self.wall if self.wall else 0.0

    def report(self) -> None:
        print(f"{self.name}: {self.settled}/{self.n} settled, {self.concurrency} in flight, "
              f"{self.wall:.2f} s wall clock")
        print(f"  settlements/s             {self.rate:8.1f}")
        if self.settled:
            print(f"  client latency (ms)       p50 {statistics.median(self.latency_ms):6.2f}"
                  f"   p99 {_pct(self.latency_ms, 0.99):7.2f}")
        if self.own_ms:
            print(f"  server's own time (ms)    p50 {statistics.median(self.own_ms):6.2f}"
                  f"   p99 {_pct(self.own_ms, 0.99):7.2f}   ({' + '.join(self.own)})")
        if self.confirm_ms:
            print(f"  confirmation wait (ms)    p50 {statistics.median(self.confirm_ms):6.2f}"
                  f"   p99 {_pct(self.confirm_ms, 0.99):7.2f}   max {max(self.confirm_ms):.2f}")
        per = max(self.settled, 1)
        print(f"  CPU per settlement (ms)   server {self.server_cpu_s / per * 1000:6.2f}"
              f"   sandbox + load generator {self.local_cpu_s / per * 1000:6.2f}")
        for failure in self.failures[:5]:
            print(f"  failed: {failure}")


def _process_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(run: Run, server: Server, pay: Pay) -> Run:
    """A warm-up payment, then `n` payments on `concurrency` keep-alive connections."""
    conns = [await Connection.open(server.port) for _ in range(run.concurrency)]
    try:
        ok, why, _ = await pay(conns[0], 0)
        if not ok:
            raise BenchError(f"{run.name}: warm-up payment failed: {why}")
        indexes = itertools.count(1)

        async def worker(conn: Connection) -> None:
            while (i := next(indexes)) <= run.n:
                started = time.perf_counter()
                ok, why, timings = await pay(conn, i)
                if not ok:
                    run.failures.append(why)
                    continue
                run.latency_ms.append((time.perf_counter() - started) * 1000)
                run.own_ms.append(sum(timings.get(part, 0.0) for part in run.own))
                if "confirm" in timings:
                    run.confirm_ms.append(timings["confirm"])

        assert server.pid is not None
        server_cpu, local_cpu = _process_cpu(server.pid), _own_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in conns))
        run.wall = time.perf_counter() - started
        run.server_cpu_s = _process_cpu(server.pid) - server_cpu
        run.local_cpu_s = _own_cpu() - local_cpu
    finally:
        for conn in conns:
            conn.close()
    server.check_alive()
    return run


# --- what each side is paid with ------------------------------------------------------------


def _b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def v0_payer(devnet: DevnetSandbox) -> Pay:
    async def pay(conn: Connection, i: int) -> tuple[bool, str, dict[str, float]]:
        tx = usdc_transfer(devnet, PRICE + i, blockhash=devnet.chain.latest_block.blockhash)
        status, fields, body = await conn.request(
            "POST", "/paywall/v1/verify", {"X-PAYMENT": v0_payment_header(tx, PRODUCT)})
        return status == 200, f"{status} {body[:200]!r}", _timings(fields)

    return pay


def exact_transaction(devnet: DevnetSandbox, i: int, memo: str | None) -> str:
    """What the official SDK client builds: limit, price, transfer, memo; the fee payer's
    (the server wallet's) signature slot left empty."""
    tx = usdc_transfer(devnet, PRICE + i, blockhash=devnet.chain.latest_block.blockhash,
                       memo=memo, fee_payer=devnet.wallets.server.pubkey(),
                       compute_unit_limit=20_000, compute_unit_price=1)
    return base64.b64encode(bytes(tx)).decode()


async def exact_payer(devnet: DevnetSandbox, port: int) -> Pay:
    """Pays the v2 offer the server's 402 makes (its `accepted` echoed back)."""
    conn = await Connection.open(port)
    try:
        status, fields, _ = await conn.request("GET", f"/paywall/{PRODUCT}", {})
    finally:
        conn.close()
    if status != 402 or "payment-required" not in fields:
        raise BenchError(f"exact: GET /paywall/{PRODUCT} answered {status} without an offer")
    offer = json.loads(base64.b64decode(fields["payment-required"]))
    accepted, where = offer["accepts"][0], offer["resource"]
    memo = accepted.get("extra", {}).get("memo")

    async def pay(conn: Connection, i: int) -> tuple[bool, str, dict[str, float]]:
        doc = {"x402Version": 2, "accepted": accepted, "resource": where,
               "payload": {"transaction": exact_transaction(devnet, i, memo)}}
        status, fields, body = await conn.request("GET", f"/paywall/{PRODUCT}",
                                                  {"PAYMENT-SIGNATURE": _b64(doc)})
        return status == 200, f"{status} {body[:200]!r}", _timings(fields)

    return pay


def peer_payer(devnet: DevnetSandbox) -> Pay:
    async def pay(conn: Connection, i: int) -> tuple[bool, str, dict[str, float]]:
        body = json.dumps({"transaction": exact_transaction(devnet, i, None)}).encode()
        status, fields, answer = await conn.request(
            "POST", "/settle", {"Content-Type": "application/json"}, body)
        return status == 200, f"{status} {answer[:200]!r}", _timings(fields)

    return pay


# --- the servers --------------------------------------------------------------------------


def _cedros(devnet: DevnetSandbox, sandbox: SandboxServer, work: Path,
            pin: list[str], storage: str) -> Server:
    raw = yaml.safe_load((BENCH_DIR / "catalog.yaml").read_text())
    raw["storage"]["file_path"] = str(work / "verify.db")
    raw["storage"]["backend"] = storage
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = server_env() | {
        "CEDROS_X402_RPC_URL": sandbox.url, "CEDROS_X402_WS_URL": sandbox.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(devnet.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(devnet.usdc_mint),
        "CEDROS_X402_GASLESS_ENABLED": "true",  # the exact scheme's server-paid fee
        "X402_SERVER_WALLET_1": str(devnet.wallets.server),
    }
    port = free_port()
    server = Server("cedros-pay", [*pin, cedros_executable(), "serve", "--config",
                                   str(config), "--host", HOST, "--port", str(port)],
                    port, "/cedros-health", work / "cedros.log")
    server.start(work, env)
    return server


def _peer(devnet: DevnetSandbox, sandbox: SandboxServer, work: Path,
          pin: list[str]) -> Server:
    if not SDK_PYTHON.exists():
        raise BenchError(f"{SDK_PYTHON} is missing: the e2e tests build it on first use "
                         "(tests/support/x402_sdk.py ensure_sdk_venv)")
    port = free_port()
    server = Server("x402-sdk-facilitator", [
        *pin, str(SDK_PYTHON), str(BENCH_DIR / "peer_facilitator.py"), "--rpc", sandbox.url,
        "--fee-payer", str(devnet.wallets.server), "--mint", str(devnet.usdc_mint),
        "--pay-to", str(devnet.wallets.merchant.pubkey()), "--amount", str(PRICE),
        "--port", str(port)], port, "/", work / "peer.log")
    server.start(work, server_env())
    return server


async def _run(n: int, concurrency: int, pin: list[str], sides: list[str],
               rounds: int, storage: str) -> list[Run]:
    """Both servers up at once (an idle one costs nothing), the sides interleaved round by
    round, so a machine whose load drifts treats them alike; each side's fastest round
    is the one reported."""
    devnet = build_devnet_sandbox(payer_usdc=10**13)
    sandbox = SandboxServer(devnet.chain, port=0)
    work = Path(tempfile.mkdtemp(prefix="cedros-bench-verify-"))
    names = {"v0": ("cedros v0 (POST /paywall/v1/verify)", ("check", "submit")),
             "exact": ("cedros exact v2 (GET /paywall, gasless)", ("check", "submit")),
             "peer": ("x402 SDK facilitator exact (verify + settle)", ("verify", "settle"))}
    best: dict[str, Run] = {}
    async with sandbox:
        servers: dict[str, Server] = {}
        try:
            if {"v0", "exact"} & set(sides):
                servers["cedros"] = _cedros(devnet, sandbox, work, pin, storage)
            if "peer" in sides:
                servers["peer"] = _peer(devnet, sandbox, work, pin)
            for server in servers.values():
                await asyncio.to_thread(server.wait_ready)
            payers: dict[str, Pay] = {}
            if "v0" in sides:
                payers["v0"] = v0_payer(devnet)
            if "exact" in sides:
                payers["exact"] = await exact_payer(devnet, servers["cedros"].port)
            if "peer" in sides:
                payers["peer"] = peer_payer(devnet)
            for _ in range(rounds):
                for side in sides:
                    name, own = names[side]
                    server = servers["peer" if side == "peer" else "cedros"]
                    run = await _drive(Run(name, n, concurrency, own), server, payers[side])
                    if side not in best or run.rate > best[side].rate:
                        best[side] = run
        finally:
            for server in servers.values():
                server.stop()
    print(f"(logs in {work}; the fastest of {rounds} interleaved rounds per side)")
    return [best[side] for side in sides]


def verdicts(runs: list[Run]) -> list[tuple[bool, str]]:
    """PASS/FAIL lines against issue 16's targets, for the sides that ran."""
    by = {run.name.split(" ")[1]: run for run in runs if run.name.startswith("cedros")}
    out: list[tuple[bool, str]] = []
    v0 = by.get("v0")
    if v0 is not None:
        p50 = statistics.median(v0.own_ms) if v0.own_ms else float("inf")
        p99 = _pct(v0.latency_ms, 0.99) if v0.latency_ms else float("inf")
        out += [(v0.rate >= TARGET_RATE, f"v0 verifications/s {v0.rate:.1f} >= {TARGET_RATE:g}"),
                (p50 <= TARGET_OWN_P50_MS,
                 f"v0 server's own time p50 {p50:.2f} ms <= {TARGET_OWN_P50_MS:g} ms"),
                (p99 <= TARGET_CLIENT_P99_MS,
                 f"v0 client p99 {p99:.1f} ms <= {TARGET_CLIENT_P99_MS:g} ms"),
                (v0.settled == v0.n, f"v0 all settled ({v0.settled}/{v0.n})")]
    exact = by.get("exact")
    peer = next((run for run in runs if run.name.startswith("x402")), None)
    if exact is not None:
        out.append((exact.settled == exact.n, f"exact all settled ({exact.settled}/{exact.n})"))
    if exact is not None and peer is not None and peer.rate:
        ratio = exact.rate / peer.rate
        out.append((ratio >= TARGET_PEER_RATIO,
                    f"exact vs SDK facilitator {exact.rate:.1f}/s / {peer.rate:.1f}/s = "
                    f"{ratio:.2f}x >= {TARGET_PEER_RATIO:g}x"))
        cpu = (peer.server_cpu_s / max(peer.settled, 1)) / (
            exact.server_cpu_s / max(exact.settled, 1) or float("inf"))
        print(f"  (server CPU per settlement, SDK facilitator / ours exact: {cpu:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300,
                        help="payments per side and round (default %(default)s)")
    parser.add_argument("-c", "--concurrency", type=int, default=16,
                        help="in flight (default %(default)s)")
    parser.add_argument("--sides", default="v0,exact,peer",
                        help="comma-separated: v0, exact, peer (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per side (default %(default)s)")
    parser.add_argument("--storage", choices=("sqlite", "memory"), default="sqlite",
                        help="our server's storage backend (default %(default)s)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers to CPU 0")
    args = parser.parse_args(argv)
    sides = [side for side in ("v0", "exact", "peer") if side in args.sides.split(",")]
    pin = [] if args.no_pin or (os.cpu_count() or 1) < 2 else ["taskset", "-c", "0"]
    if pin:
        os.sched_setaffinity(0, {1})
    try:
        runs = asyncio.run(_run(args.n, args.concurrency, pin, sides, args.rounds,
                                args.storage))
    except BenchError as exc:
        print(f"bench.verify: {exc}")
        return 2
    for run in runs:
        run.report()
    results = verdicts(runs)
    for passed, line in results:
        print(f"{'PASS' if passed else 'FAIL'}  {line}")
    return 0 if all(passed for passed, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

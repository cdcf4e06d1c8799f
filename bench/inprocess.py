"""Where a request's time goes, measured in process (no sockets, no HTTP parsing).

    python -m bench.inprocess [--target quote|products|graphql|...] [-n 2000] [--rounds 5]
                              [--profile [--sort tottime|cumtime]]

Builds the server as bench/servers.py configures it (bench/catalog.yaml, a fresh SQLite
file in a temporary directory, seeded payments; `graphql-nocache` with the GraphQL result
cache off)
and drives ASGI requests through three entry points: the whole app (middleware chain +
routing + handler), the Starlette app alone (routing + handler) and, for the baseline,
the bare Starlette app of bench/baseline.py. The differences say what the chain and the
handler cost per request; each figure is the fastest of `--rounds` interleaved rounds.
`--profile` adds a cProfile of the whole app sorted by own time.

Figures are µs per request on this machine at this moment: compare them within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.servers import seed, write_config
from bench.targets import TARGETS

Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGI = Callable[[dict[str, Any], Any, Send], Awaitable[None]]

# name -> method, path, body, expected status, extra headers
REQUESTS: dict[str, tuple[str, str, bytes, int, tuple[tuple[bytes, bytes], ...]]] = {
    t.name: (t.method, t.path, t.body.encode(), t.expect_status,
             tuple((k.lower().encode(), v.encode()) for k, v in t.headers))
    for t in TARGETS if t.server != "baseline"}
REQUESTS["baseline"] = ("GET", "/", b"", 200, ())
CHOICES = [name for name in REQUESTS if name != "baseline"]


def scope_for(method: str, path: str, body: bytes,
              extra: tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"), (b"accept", b"*/*"),
               *extra]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": headers, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080),
            "state": {}}


async def one(app: ASGI, method: str, path: str, body: bytes,
              extra: tuple[tuple[bytes, bytes], ...] = ()) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(method, path, body, extra), receive, send)
    return status


async def per_request(app: ASGI, target: str, n: int) -> float:
    method, path, body, expect, extra = REQUESTS[target]
    status = await one(app, method, path, body, extra)
    if status != expect:
        raise SystemExit(f"{target}: status {status}, expected {expect}")
    started = time.perf_counter()
    for _ in range(n):
        await one(app, method, path, body, extra)
    return (time.perf_counter() - started) / n * 1e6


async def best_of(rounds: int, runs: list[Callable[[], Awaitable[float]]]) -> list[float]:
    """Each run `rounds` times, interleaved; the fastest round of each (the least noisy
    estimate of CPU-bound work on a shared machine)."""
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for i, run in enumerate(runs):
            best[i] = min(best[i], await run())
    return best


async def build(tmp: Path, target: str = "") -> Any:
    from cedros_pay.app import create_app
    from cedros_pay.config import load_config

    path = write_config(tmp, result_cache=target != "graphql-nocache")
    await seed(path)
    app = create_app(load_config(path, environ={}, dotenv_path=None))
    await app.start()
    return app


async def main(target: str, n: int, rounds: int, profile: bool, args_sort: str) -> None:
    from bench.baseline import app as baseline

    tmp = Path(tempfile.mkdtemp(prefix="cedros-inprocess-"))
    app = await build(tmp, target)
    try:
        labels = ["baseline (bare Starlette)", f"{target}: Starlette app, no chain",
                  f"{target}: whole app"]
        times = await best_of(rounds, [lambda: per_request(baseline, "baseline", n),
                                       lambda: per_request(app.starlette, target, n),
                                       lambda: per_request(app, target, n)])
        for label, micros in zip(labels, times, strict=True):
            print(f"{label:40s} {micros:8.1f} µs")
        print(f"{'chain (whole - Starlette)':40s} {times[2] - times[1]:8.1f} µs")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await per_request(app, target, n)
            prof.disable()
            pstats.Stats(prof).sort_stats(args_sort).print_stats(45)
    finally:
        await app.aclose()
        shutil.rmtree(tmp, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=CHOICES, default="quote")
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumtime)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    asyncio.run(main(args.target, args.n, args.rounds, args.profile, args.sort))


if __name__ == "__main__":
    cli()

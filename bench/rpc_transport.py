"""`python -m bench.rpc_transport`: CPU per Solana JSON-RPC call, httpx against keep-alive.

`SolanaRpc.call("sendTransaction", …)` with a real-sized base64 transaction runs in this
process against a canned JSON-RPC node in a child process (a bare asyncio server, so the
node's cost stays out of the figure), first over `HttpxTransport` (the app's httpx client,
what the server used before) and then over `KeepAlivePool` (what it uses now), rounds
interleaved. `-c` calls are in flight at once, as settlements would be. Reported: this
process's CPU time and wall time per call, and the ratio, both sides from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import resource
import socket
import time
from collections.abc import Callable

import httpx

from cedros_pay.integrations.keepalive_http import KeepAlivePool
from cedros_pay.integrations.solana.rpc import HttpxTransport, RpcTransport, SolanaRpc

REPLY = (b'{"jsonrpc":"2.0","id":1,"result":"5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnb'
         b'JLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"}')


async def _node(sock: socket.socket) -> None:
    """Answers every POST with REPLY; reads Content-Length bodies, keeps connections open."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        try:
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).lower().split(b"\r\n")
                length = next(int(x.split(b":")[1]) for x in lines
                              if x.startswith(b"content-length:"))
                await reader.readexactly(length)
                writer.write(head % len(REPLY) + REPLY)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, sock=sock)
    await server.serve_forever()


def _run_node(sock: socket.socket) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    asyncio.run(_node(sock))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(rpc: SolanaRpc, n: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call for n calls, `concurrency` at a time."""
    params = [base64.b64encode(os.urandom(400)).decode(),
              {"encoding": "base64", "skipPreflight": False}]
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < n:
            done += 1
            await rpc.call("sendTransaction", params)

    for _ in range(concurrency):  # warm: connections opened before the clock starts
        await rpc.call("sendTransaction", params)
    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (_cpu() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000


async def main(n: int, concurrency: int, rounds: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    node = multiprocessing.get_context("fork").Process(target=_run_node, args=(sock,),
                                                        daemon=True)
    node.start()
    sides: dict[str, Callable[[], RpcTransport]] = {
        "httpx": lambda: HttpxTransport(url, httpx.AsyncClient()),
        "keep-alive": lambda: KeepAlivePool(url),
    }
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(rounds):
            for name, make in sides.items():
                transport = make()
                rpc = SolanaRpc(url, transport=transport)
                figures = await _measure(rpc, n, concurrency)
                await transport.aclose()
                best[name] = min(best.get(name, figures), figures)
    finally:
        node.kill()
    print(f"{n} sendTransaction calls per side and round, {concurrency} in flight, "
          f"best of {rounds} rounds")
    for name, (cpu, wall) in best.items():
        print(f"  {name:<11} CPU {cpu:6.3f} ms/call   wall {wall:6.3f} ms/call")
    print(f"  keep-alive / httpx CPU per call: {best['keep-alive'][0] / best['httpx'][0]:.2f}x")


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rpc_transport",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="calls per side and round")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency, args.rounds))


if __name__ == "__main__":
    cli()

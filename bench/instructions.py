"""Machine instructions per request, counted by valgrind: a figure noise cannot move.

    python -m bench.instructions [--target quote|products|graphql|...] [--entry whole|starlette]

On a shared virtual machine, timings of the same code drift by ±30% from minute to
minute, which hides a 5% improvement. Instruction counts do not drift: the same code on
the same inputs executes the same instructions (with PYTHONHASHSEED fixed). This runs the
in-process harness of bench/inprocess.py under callgrind twice, with N and 3N requests
after a warm-up and with counting switched on only around the requests, and reports
(count(3N) - count(N)) / 2N. Needs valgrind (`apt-get install -y valgrind`); about a
minute per figure.

Fewer instructions is not always less time (cache misses, branch prediction), but on the
hot paths of this Python server the two have moved together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.inprocess import CHOICES, REQUESTS, build, one

WARMUP = 300


def _counting(on: bool) -> None:
    """Switch callgrind's counting for this process; blocking on purpose, so nothing else
    runs on the loop meanwhile."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   capture_output=True, check=False)


async def _child(target: str, entry: str, n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cedros-instructions-"))
    app = await build(tmp, target)
    asgi = app if entry == "whole" else app.starlette
    method, path, body, _, extra = REQUESTS[target]
    try:
        for _ in range(WARMUP):
            await one(asgi, method, path, body, extra)
        _counting(True)
        for _ in range(n):
            await one(asgi, method, path, body, extra)
        _counting(False)
    finally:
        await app.aclose()
        shutil.rmtree(tmp, ignore_errors=True)


def _count(target: str, entry: str, n: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions", "--child", str(n), "--target", target,
         "--entry", entry],
        capture_output=True, text=True, env=env, check=False,
        cwd=Path(__file__).resolve().parent.parent)
    found = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=CHOICES, default="quote")
    parser.add_argument("--entry", choices=["whole", "starlette"], default="whole",
                        help="the whole app (middleware chain included) or Starlette only")
    parser.add_argument("-n", type=int, default=500, help="requests of the shorter run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        import uvloop  # the server's loop

        uvloop.install()
        asyncio.run(_child(args.target, args.entry, args.child))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    short = _count(args.target, args.entry, args.n)
    long = _count(args.target, args.entry, 3 * args.n)
    per_request = (long - short) / (2 * args.n)
    print(f"{args.target} ({args.entry}): {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()

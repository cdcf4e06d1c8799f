"""Load Cedros Pay and a bare Starlette baseline with wrk; print req/s, p50, p99 and ratios.

One run starts two servers on 127.0.0.1, each a single uvicorn process with the same
settings (see servers.py): Cedros Pay on bench/catalog.yaml (SQLite in a temporary
directory, products and coupons from the YAML file, logs at `warn`), and the baseline,
bench/baseline.py, one route answering a fixed ~4 KB JSON body.

Every target gets the same load: wrk with 2 threads and 32 connections, a 2 s warm-up
(dropped, but its status codes are checked), then 10 s measured. With two or more CPUs
the servers are pinned to the first and wrk to the others (taskset), so the load
generator does not steal the server's core. Targets are measured in interleaved rounds
(3 by default) and the medians are reported; each ratio is the median of the per-round
ratios to the baseline.

The issues' targets: `POST /paywall/v1/quote` at >= 0.35x the baseline's requests/s with
p99 under 25 ms; GraphQL `products(first: 10)` at >= 0.5x `GET /paywall/v1/products`
(`graphql`) and >= 0.15x with the result cache off (`graphql-nocache`). Exit status: 0
met (or not selected), 1 missed or not measured, 2 the benchmark could not run (no wrk,
a server did not start, a bad option).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.cpu import QUIET_PERCENT, CpuMeter, machine_busy, wait_quiet
from bench.errors import BenchError
from bench.load import Settings, find_wrk, run_wrk, wrk_version
from bench.report import (
    Machine,
    Outcome,
    Run,
    graphql_verdicts,
    quote_verdict,
    record,
    usable_cpus,
)
from bench.servers import REPO_DIR, fetch, running_servers
from bench.targets import TARGET_NAMES, Target, select_targets

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
MAX_DURATION = 120
MAX_ROUNDS = 10


def preflight(target: Target, port: int) -> str | None:
    """Why the target cannot be measured (one request, checked), or None."""
    try:
        status, body = fetch(port, target.method, target.path, target.body,
                             extra=dict(target.headers))
    except OSError as exc:
        return f"request failed: {exc}"
    if status != target.expect_status:
        snippet = body[:200].decode(errors="replace")
        return f"status {status}, expected {target.expect_status}: {snippet}"
    return target.check(body)


def pinning(settings: Settings) -> tuple[list[str], list[str], str]:
    """taskset prefixes for the servers and for wrk, and a sentence saying what was done."""
    cpus = usable_cpus()
    taskset = shutil.which("taskset")
    if settings.pin and taskset and len(cpus) >= 2:
        rest = ",".join(map(str, cpus[1:]))
        return ([taskset, "-c", str(cpus[0])], [taskset, "-c", rest],
                f"taskset: both servers on CPU {cpus[0]}, wrk on CPU {rest}")
    why = ("--no-pin" if not settings.pin else
           "taskset not found" if not taskset else "only one CPU")
    return [], [], f"none ({why}): the servers and wrk share the CPUs"


def measure(targets: Sequence[Target], settings: Settings, wrk: str,
            server_pin: list[str], wrk_pin: list[str]) -> dict[str, Outcome]:
    outcomes = {t.name: Outcome(t) for t in targets}
    with tempfile.TemporaryDirectory(prefix="cedros-bench-") as tmp, \
            running_servers(Path(tmp), server_pin, {t.server for t in targets}) as servers:
        for t in targets:
            problem = preflight(t, servers[t.server].port)
            if problem:
                outcomes[t.name].skipped = problem
                print(f"skipping {t.label}: {problem}", file=sys.stderr)
        live = [t for t in targets if not outcomes[t.name].skipped]
        pids = [s.pid for s in servers.values() if s.pid is not None]
        for round_no in range(1, settings.rounds + 1):
            for t in live:
                url = servers[t.server].url(t.path)
                if settings.wait_quiet:
                    busy = wait_quiet(settings.wait_quiet)
                    if busy is not None and busy >= QUIET_PERCENT:
                        print(f"  machine still {busy:.0f}% busy after "
                              f"{settings.wait_quiet} s; measuring anyway", file=sys.stderr)
                print(f"[round {round_no}/{settings.rounds}] {t.label}: "
                      f"{settings.warmup} s warm-up, {settings.duration} s measured",
                      file=sys.stderr, flush=True)
                runs = []
                if settings.warmup:
                    warm = run_wrk(wrk, wrk_pin, url, t, settings.warmup, settings,
                                   count_statuses=True)
                    servers[t.server].check_alive()
                    outcomes[t.name].warmups.append(warm)
                    runs.append(("warm-up", warm))
                with CpuMeter(pids) as meter:
                    sample = run_wrk(wrk, wrk_pin, url, t, settings.duration, settings)
                servers[t.server].check_alive()
                outcomes[t.name].samples.append(sample)
                if meter.others is not None:
                    outcomes[t.name].others.append(meter.others)
                runs.append(("measured", sample))
                for kind, run in runs:
                    for problem in run.problems(t.expect_status):
                        print(f"  warning: {t.label} ({kind}): {problem}", file=sys.stderr)
    return outcomes


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load Cedros Pay and a bare Starlette baseline with wrk; print req/s, "
                    "p50, p99 and each target's ratio to the baseline.")
    parser.add_argument("--duration", type=_bounded(1, MAX_DURATION), default=10,
                        help="measured seconds per target and round (default 10)")
    parser.add_argument("--warmup", type=_bounded(0, 60), default=2,
                        help="warm-up seconds before each measured run (default 2)")
    parser.add_argument("--connections", type=_bounded(1, 1024), default=32,
                        help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=_bounded(1, 16), default=2,
                        help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=_bounded(1, MAX_ROUNDS), default=3,
                        help="measure every target N times, interleaved, and report the "
                             "medians (default 3; 1 for a quick look)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated subset of {','.join(TARGET_NAMES)} "
                             "(the baseline always runs)")
    parser.add_argument("--wait-quiet", type=_bounded(0, 3600), default=0, metavar="SECONDS",
                        help="before each target, wait up to SECONDS for the CPUs to be "
                             f"under {QUIET_PERCENT:g}%% busy (for shared machines)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the servers and wrk to separate CPUs")
    parser.add_argument("--write", action="store_true",
                        help=f"add this run to {RESULTS.relative_to(REPO_DIR)}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings(duration=args.duration, warmup=args.warmup,
                        connections=args.connections, threads=args.threads,
                        rounds=args.rounds, pin=args.pin, wait_quiet=args.wait_quiet)
    try:
        targets = select_targets(args.only)
        wrk = find_wrk()
        machine = Machine.describe(wrk_version(wrk))
        server_pin, wrk_pin, pinned = pinning(settings)
        load_before = machine_busy()
        outcomes = measure(targets, settings, wrk, server_pin, wrk_pin)
        load_after = machine_busy()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    run = Run(machine=machine, settings=settings, pinning=pinned, load_before=load_before,
              load_after=load_after, outcomes=outcomes,
              verdicts=[quote_verdict(outcomes, settings.connections),
                        *graphql_verdicts(outcomes)])
    print()
    print(run.terminal())
    if args.write:
        record(run.markdown(), RESULTS)
        print(f"recorded in {RESULTS.relative_to(REPO_DIR)}")
    return 0 if run.ok else 1

"""The load generator: wrk, driven through bench/wrk.lua, one run per call.

wrk's own summary is for people; the Lua `done()` hook prints a `BENCH_RESULT {json}`
line that is parsed here. Statuses are counted per code only in warm-up runs (see the
script); measured runs rely on wrk's count of statuses above 399.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.targets import Target

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
REQUEST_TIMEOUT = "5s"  # slower answers count as wrk timeouts
RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True, slots=True)
class Settings:
    """The load every target gets; the same for all of them within a run."""

    duration: int  # measured seconds
    warmup: int  # seconds run first and dropped
    connections: int
    threads: int
    rounds: int  # interleaved repetitions; medians are reported
    pin: bool  # servers and wrk on separate CPUs
    wait_quiet: int = 0  # seconds to wait, before each target, for the machine to calm down


@dataclass(frozen=True, slots=True)
class Sample:
    """One wrk run, as the Lua `done()` reported it."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]  # per status code; empty unless counted (warm-up runs)
    over_399: int  # wrk's own count of responses with a status above 399
    socket_errors: dict[str, int]

    @classmethod
    def from_wrk(cls, data: dict[str, Any]) -> Sample:
        return cls(requests=int(data["requests"]), rps=float(data["rps"]),
                   p50_ms=float(data["p50_ms"]), p99_ms=float(data["p99_ms"]),
                   statuses={int(k): int(v) for k, v in data["statuses"].items()},
                   over_399=int(data["status_over_399"]),
                   socket_errors={k: int(v) for k, v in data["errors"].items()})

    def problems(self, expect_status: int) -> list[str]:
        """What makes the figures untrustworthy: other statuses (429, 500), socket errors."""
        out = [f"{n} responses with status {code}"
               for code, n in sorted(self.statuses.items()) if code != expect_status]
        if expect_status < 400 and self.over_399:
            out.append(f"{self.over_399} responses with a status above 399")
        elif expect_status >= 400 and self.over_399 != self.requests:
            out.append(f"{self.requests - self.over_399} responses with a status below 400")
        out += [f"{n} socket {kind} errors" for kind, n in self.socket_errors.items() if n]
        if self.requests == 0:
            out.append("no requests completed")
        return out


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError(
            "wrk is not installed. Install it, then run again:\n"
            "    Debian/Ubuntu:  apt-get install -y wrk   (as root, or with sudo)\n"
            "    macOS:          brew install wrk")
    return wrk


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk\s+(\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "?"


def run_wrk(wrk: str, pin: list[str], url: str, target: Target, seconds: int,
            settings: Settings, *, count_statuses: bool = False) -> Sample:
    argv = [*pin, wrk, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{seconds}s",
            "--latency", "--timeout", REQUEST_TIMEOUT, "-s", str(WRK_SCRIPT), url]
    env = {**os.environ, "BENCH_METHOD": target.method, "BENCH_BODY": target.body,
           "BENCH_CONTENT_TYPE": "application/json",
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in target.headers),
           "BENCH_COUNT_STATUSES": "1" if count_statuses else "0"}
    limit = seconds + 60
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {limit} s") from exc
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return Sample.from_wrk(json.loads(line.removeprefix(RESULT_PREFIX)))
    raise BenchError(f"wrk printed no result (status {done.returncode}):\n"
                     f"{done.stdout}{done.stderr}")

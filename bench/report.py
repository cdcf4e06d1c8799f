"""Figures into words: medians, ratios, the verdicts, and bench/RESULTS.md entries."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.cpu import QUIET_PERCENT
from bench.load import Sample, Settings
from bench.targets import Target

REPO_DIR = Path(__file__).resolve().parent.parent
RUNS_MARKER = "<!-- bench:runs (newest first; `python -m bench --write` adds here) -->"

# The target for POST /paywall/v1/quote.
QUOTE_MIN_RATIO = 0.35
QUOTE_MAX_P99_MS = 25.0

# The targets for GraphQL `products(first: 10)`, as a ratio to the REST listing's
# req/s in the same run: the answer kept with the catalog snapshot, and every request
# executed (graphql.result_cache off).
GRAPHQL_MIN_RATIOS = (("graphql", 0.5), ("graphql-nocache", 0.15))

LEGEND = ("others' CPU: CPUs that other processes used during the measured runs "
          "(median); near 0 means a quiet machine.")
HEADER = ("target", "req/s", "p50 ms", "p99 ms", "x baseline", "others' CPU")


@dataclass(slots=True)
class Outcome:
    target: Target
    samples: list[Sample] = field(default_factory=list)  # one per round
    warmups: list[Sample] = field(default_factory=list)  # status-checked, not reported
    others: list[float] = field(default_factory=list)  # CPUs other processes used, per round
    skipped: str = ""  # why the target was not measured

    @property
    def measured(self) -> bool:
        return bool(self.samples) and not self.skipped

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in self.samples))

    def ratio_to(self, base: Outcome) -> float:
        """Median of the per-round req/s ratios: rounds interleave, so each ratio pairs
        runs minutes apart at most, which cancels slow drifts in the machine's speed."""
        return float(statistics.median(
            s.rps / b.rps for s, b in zip(self.samples, base.samples, strict=False)))

    def problems(self) -> list[str]:
        found = [p for s in (*self.warmups, *self.samples)
                 for p in s.problems(self.target.expect_status)]
        return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool  # False: the target was missed, or could not be judged
    line: str


def quote_verdict(outcomes: dict[str, Outcome], connections: int) -> Verdict:
    goal = (f"quote target (>= {QUOTE_MIN_RATIO:.2f}x baseline req/s and p99 < "
            f"{QUOTE_MAX_P99_MS:g} ms at {connections} connections)")
    quote, base = outcomes.get("quote"), outcomes.get("baseline")
    if quote is None:
        return Verdict(True, f"{goal}: not judged (quote not selected)")
    if base is None or not quote.measured or not base.measured:
        return Verdict(False, f"{goal}: NOT MEASURED")
    if quote.problems() or base.problems():
        return Verdict(False, f"{goal}: INVALID (unexpected responses, see the warnings)")
    ratio = quote.ratio_to(base)
    p99 = quote.median("p99_ms")
    passed = ratio >= QUOTE_MIN_RATIO and p99 < QUOTE_MAX_P99_MS
    misses = []
    if ratio < QUOTE_MIN_RATIO:
        misses.append(f"ratio {ratio:.2f} < {QUOTE_MIN_RATIO:.2f}")
    if p99 >= QUOTE_MAX_P99_MS:
        misses.append(f"p99 {p99:.1f} ms >= {QUOTE_MAX_P99_MS:g} ms")
    why = f"{ratio:.2f}x, p99 {p99:.1f} ms" + (" — " + ", ".join(misses) if misses else "")
    return Verdict(passed, f"{goal}: {'PASS' if passed else 'FAIL'} ({why})")


def graphql_verdicts(outcomes: dict[str, Outcome]) -> list[Verdict]:
    """One verdict per GraphQL listing target selected, against GET /products."""
    verdicts = []
    rest = outcomes.get("products")
    for name, least in GRAPHQL_MIN_RATIOS:
        outcome = outcomes.get(name)
        if outcome is None:
            continue
        goal = f"{outcome.target.label} (>= {least:.2f}x GET /paywall/v1/products req/s)"
        if rest is None or not outcome.measured or not rest.measured:
            verdicts.append(Verdict(False, f"{goal}: NOT MEASURED"))
        elif outcome.problems() or rest.problems():
            verdicts.append(Verdict(False, f"{goal}: INVALID (unexpected responses)"))
        else:
            ratio = outcome.ratio_to(rest)
            passed = ratio >= least
            verdicts.append(Verdict(passed, f"{goal}: {'PASS' if passed else 'FAIL'} "
                                            f"({ratio:.2f}x)"))
    return verdicts


def table_rows(outcomes: dict[str, Outcome]) -> list[tuple[str, ...]]:
    base = outcomes.get("baseline")
    rows: list[tuple[str, ...]] = []
    for outcome in outcomes.values():
        label = outcome.target.label
        if not outcome.measured:
            rows.append((label, "skipped", "", "", "", ""))
            continue
        ratio = (f"{outcome.ratio_to(base):.2f}" if base is not None and base.measured
                 else "n/a")
        others = f"{statistics.median(outcome.others):.2f}" if outcome.others else "?"
        rows.append((label, f"{outcome.median('rps'):,.0f}",
                     f"{outcome.median('p50_ms'):.2f}", f"{outcome.median('p99_ms'):.2f}",
                     ratio, others))
    return rows


def text_table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (HEADER, *rows)) for i in range(len(HEADER))]
    lines = []
    for row in (HEADER, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---" + "|---:" * (len(HEADER) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the machine -------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (what `nproc` counts)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = head.stdout.strip()
    return f"{rev} + uncommitted changes" if dirty.stdout.strip() else rev


@dataclass(frozen=True, slots=True)
class Machine:
    date: str
    cpus: int
    arch: str
    cpu: str
    python: str
    packages: str
    wrk: str
    revision: str

    @classmethod
    def describe(cls, wrk_version: str) -> Machine:
        packages = ", ".join(f"{d} {_version(d)}"
                             for d in ("uvicorn", "starlette", "strawberry-graphql", "uvloop"))
        return cls(date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   cpus=len(usable_cpus()), arch=platform.machine(), cpu=cpu_model(),
                   python=platform.python_version(), packages=packages, wrk=wrk_version,
                   revision=git_revision())

    def summary(self) -> str:
        return f"{self.cpu}, {self.cpus} CPUs, {self.arch}"


@dataclass(frozen=True, slots=True)
class Run:
    """Everything one invocation measured, for the terminal and for RESULTS.md."""

    machine: Machine
    settings: Settings
    pinning: str
    load_before: str
    load_after: str
    outcomes: dict[str, Outcome]
    verdicts: list[Verdict]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def load_line(self) -> str:
        rounds = (f", median of {self.settings.rounds} interleaved rounds"
                  if self.settings.rounds > 1 else "")
        quiet = (f"; waited up to {self.settings.wait_quiet} s before each target for the "
                 f"CPUs to be under {QUIET_PERCENT:g}% busy" if self.settings.wait_quiet else "")
        return (f"wrk {self.settings.threads} threads, {self.settings.connections} "
                f"connections, {self.settings.warmup} s warm-up + {self.settings.duration} s "
                f"per target{rounds}{quiet}")

    def rounds_line(self) -> str:
        parts = [f"{o.target.name} " + " / ".join(f"{s.rps:,.0f}" for s in o.samples)
                 for o in self.outcomes.values() if o.measured]
        return "req/s per round: " + "; ".join(parts)

    def notes(self) -> list[str]:
        out = []
        if self.settings.rounds > 1:
            out.append(self.rounds_line())
        for outcome in self.outcomes.values():
            if outcome.skipped:
                out.append(f"{outcome.target.label} skipped: {outcome.skipped}")
            out += [f"warning — {outcome.target.label}: {p}" for p in outcome.problems()]
        return out

    def terminal(self) -> str:
        m = self.machine
        lines = [
            f"{m.date}; {m.summary()}; Python {m.python}; wrk {m.wrk}; commit {m.revision}",
            f"{self.load_line()}",
            f"pinning: {self.pinning}",
            f"machine before/after: {self.load_before} / {self.load_after}",
            "",
            text_table(table_rows(self.outcomes)),
            "",
            LEGEND,
            *self.notes(),
            "",
            *[v.line for v in self.verdicts],
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        m = self.machine
        lines = [
            f"### {m.date} — {m.summary()}",
            "",
            f"- Python {m.python}; {m.packages}; wrk {m.wrk}; commit {m.revision}",
            f"- {self.load_line()}",
            f"- pinning: {self.pinning}",
            f"- machine before / after the run: {self.load_before} / {self.load_after}",
            "",
            markdown_table(table_rows(self.outcomes)),
            "",
            *[f"{note}\n" for note in self.notes()],
            *[f"**{v.line}**\n" for v in self.verdicts],
        ]
        return "\n".join(lines) + "\n"


def record(entry: str, path: Path) -> None:
    """Insert a run entry below the runs marker (newest first), keeping the prose above."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if RUNS_MARKER not in text:
        text = text.rstrip("\n") + "\n\n## Runs\n\n" + RUNS_MARKER + "\n"
    head, _, tail = text.partition(RUNS_MARKER)
    older = tail.lstrip("\n")
    path.write_text(head + RUNS_MARKER + "\n\n" + entry + ("\n" + older if older else ""))

"""How much CPU other processes took while a target was measured.

On a shared machine the figures move with whatever else runs. Each measured run is
wrapped in a `CpuMeter`: the machine's busy time (/proc/stat user, system and steal)
minus what the two servers (/proc/<pid>/stat) and wrk (this process's reaped children)
used, in CPUs. A run with others near 0 is clean; one with others near 1 on a 2-CPU
machine lost about half of it.
Linux only; elsewhere the meter reports nothing.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from pathlib import Path

QUIET_PERCENT = 15.0  # our idle servers add ~1%; anything above is someone else

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine() -> tuple[int, int] | None:
    """(busy, total) clock ticks summed over all CPUs."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = values
    # Interrupt time is left out: most of it is the loopback traffic we generate, and
    # Linux charges it to no process. Steal is in: it is other virtual machines.
    return user + nice + system + steal, sum(values)


def _process(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * _TICKS


def busy_percent(seconds: float = 1.0) -> float | None:
    """How busy all CPUs are over the next `seconds`, in percent (None off Linux)."""
    before = _machine()
    time.sleep(seconds)
    after = _machine()
    if before is None or after is None or after[1] == before[1]:
        return None
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def machine_busy(seconds: float = 1.0) -> str:
    """A one-line snapshot of how busy the machine is without our load."""
    busy = busy_percent(seconds)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = f"CPUs {busy:.0f}% busy, " if busy is not None else ""
    return f"{head}load average {load1:.2f}"


def wait_quiet(max_wait: float, threshold: float = QUIET_PERCENT) -> float | None:
    """Wait, at most `max_wait` seconds, until the CPUs are under `threshold` percent
    busy over one second; the last reading (None off Linux)."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_percent(1.0)
        if busy is None or busy < threshold or time.monotonic() >= deadline:
            return busy


class CpuMeter:
    """CPUs used by processes other than ours between `__enter__` and `__exit__`."""

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = list(pids)
        self.others: float | None = None  # in CPUs, e.g. 0.4

    def __enter__(self) -> CpuMeter:
        self._machine = _machine()
        self._ours = sum(_process(p) for p in self._pids) + _children()
        return self

    def __exit__(self, *exc: object) -> None:
        machine = _machine()
        if self._machine is None or machine is None or machine[1] == self._machine[1]:
            return
        ours = sum(_process(p) for p in self._pids) + _children() - self._ours
        busy = machine[0] - self._machine[0]
        wall = (machine[1] - self._machine[1]) / max(1, os.cpu_count() or 1)
        self.others = max(0.0, (busy - ours) / wall)

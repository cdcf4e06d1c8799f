"""Replay protection across OS processes sharing one database (spec 13)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade

WORKER = Path(__file__).with_name("race_worker.py")
REPO = Path(__file__).resolve().parents[2]


async def _run_workers(backend: str, location: str, processes: int, attempts: int) -> int:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), backend, location, "one-signature", str(attempts),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(processes)
    ]
    wins = 0
    for p in procs:
        out, err = await asyncio.wait_for(p.communicate(), timeout=120)
        assert p.returncode == 0, err.decode()
        wins += int(out.decode().strip())
    return wins


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_racing_one_signature_give_one_success(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "postgres":
        location = request.getfixturevalue("postgres_url")
        engine = create_postgres_engine(location)
    else:
        location = str(tmp_path / "race.db")
        engine = create_sqlite_engine(location)
    await upgrade(engine)
    await engine.dispose()
    assert await _run_workers(backend, location, processes=2, attempts=25) == 1

"""The contract suite's `store` fixture: the same tests on every storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store, memory_store

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, location): a fresh database for each test."""
    backend: str = request.param
    if backend == "postgres":
        return backend, request.getfixturevalue("postgres_url")
    return backend, str(tmp_path / "cedros.db")


async def open_store(backend: str, location: str) -> Store:
    if backend == "memory":
        return memory_store()
    if backend == "sqlite":
        engine = create_sqlite_engine(location)
    else:
        engine = create_postgres_engine(location)
    await upgrade(engine)
    return sql_store(engine)


@pytest.fixture
async def store(backend_target: tuple[str, str]) -> AsyncIterator[Store]:
    s = await open_store(*backend_target)
    yield s
    await s.close()

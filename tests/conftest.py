"""Session-wide fixtures: real PostgreSQL and Redis servers (DESIGN §5).

The servers start on first use, once per test session, and stop when the session ends (also
after Ctrl-C). A missing server is a test ERROR, never a skip: a skipped test must not stand
in for a feature. `support` is importable because pytest puts this directory on sys.path
(`pythonpath = ["tests"]` in pyproject.toml).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from support.postgres import PostgresServer, plain_dsn, start_postgres
from support.process import ServiceUnavailable
from support.redis import RedisServer, start_redis

_S = TypeVar("_S")


def _started(start: Callable[[], _S]) -> _S:
    """`start()`, turning ServiceUnavailable into a loud test error (never a skip)."""
    try:
        return start()
    except ServiceUnavailable as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    """The session's PostgreSQL server (`.url`, `.dsn`, `.create_database()`, …)."""
    server = _started(start_postgres)
    request.addfinalizer(server.stop)
    return server


def _database_name(request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    return f"t_{uuid.uuid4().hex[:8]}_{slug}"[:63].rstrip("_")


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test, as `postgresql+asyncpg://…/t_<id>_<test>`.

    The database is dropped after the test (open connections are cut).
    """
    name = _database_name(request)
    yield _started(lambda: postgres_server.create_database(name))
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_dsn(postgres_url: str) -> str:
    """The same database as `postgres_url`, as plain `postgresql://…` (for asyncpg.connect)."""
    return plain_dsn(postgres_url)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    """The session's Redis server."""
    server = _started(start_redis)
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """`redis://127.0.0.1:PORT/0` of the session's Redis server (shared: clean up your keys)."""
    return redis_server.url

"""The PostgreSQL harness gives each test a real, empty, fast database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support.postgres import PostgresServer, plain_dsn

pytestmark = pytest.mark.postgres


async def test_postgres_url_answers_select_1(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_postgres_url_works_with_sqlalchemy_asyncpg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select current_database()"))).scalar_one() == (
                postgres_url.rsplit("/", 1)[1]
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("round_", [1, 2])
async def test_each_test_gets_an_empty_database(postgres_dsn: str, round_: int) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        leftover = await conn.fetchval("select to_regclass('public.harness_probe')")
        assert leftover is None, "a previous test's table leaked into this database"
        await conn.execute("create table harness_probe (id int primary key)")
    finally:
        await conn.close()


async def test_durability_is_off_for_speed(postgres_server: PostgresServer) -> None:
    if postgres_server.external:
        pytest.fail("this checks the harness's own server; unset CEDROS_TEST_POSTGRES_URL")
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert await conn.fetchval(f"show {setting}") == "off"
        assert await conn.fetchval("select current_database()") == "cedros_test"
    finally:
        await conn.close()


async def test_dropping_a_database_cuts_its_connections(
    postgres_server: PostgresServer,
) -> None:
    url = await asyncio.to_thread(postgres_server.create_database, "harness_drop_probe")
    assert url.endswith("/harness_drop_probe")
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await asyncio.to_thread(postgres_server.drop_database, "harness_drop_probe")
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("select 1")
    finally:
        await conn.close()
    remaining = await asyncio.to_thread(
        postgres_server.execute,
        "select count(*) from pg_database where datname = 'harness_drop_probe'",
    )
    assert remaining == "0"

"""Races across OS processes sharing one database: replay protection (spec 13), cart
claims, coupon reservations and subscription activations by one payment (issue 13) each
have exactly one winner."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from contract.subscription_world import WALLET as SUBSCRIBER
from contract.subscription_world import pay, plan, subscriptions
from contract.test_catalog import coupon
from contract.test_quotes import cart

from cedros_pay.core.clock import SystemClock
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store

WORKER = Path(__file__).with_name("race_worker.py")
REPO = Path(__file__).resolve().parents[2]


async def _run_workers(backend: str, location: str, processes: int, attempts: int,
                       key: str = "one-signature", mode: str = "record") -> int:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), backend, location, key, str(attempts), mode,
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(processes)
    ]
    wins = 0
    for p in procs:
        out, err = await asyncio.wait_for(p.communicate(), timeout=120)
        assert p.returncode == 0, err.decode()
        wins += int(out.decode().strip())
    return wins


async def _database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database, seeded with a cart and a coupon with one use left."""
    if backend == "postgres":
        location = request.getfixturevalue("postgres_url")
        engine = create_postgres_engine(location)
    else:
        location = str(tmp_path / "race.db")
        engine = create_sqlite_engine(location)
    await upgrade(engine)
    store = sql_store(engine)
    await store.carts.save(cart("cart_race"))
    await store.coupons.create(coupon("LAST", limit=1))
    await store.close()
    return location


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_racing_one_signature_give_one_success(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = await _database(backend, request, tmp_path)
    assert await _run_workers(backend, location, processes=2, attempts=25) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_claiming_one_cart_give_one_claim(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = await _database(backend, request, tmp_path)
    assert await _run_workers(backend, location, processes=2, attempts=25,
                              key="cart_race", mode="claim") == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_reserving_the_last_coupon_use_give_one(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = await _database(backend, request, tmp_path)
    assert await _run_workers(backend, location, processes=2, attempts=25,
                              key="LAST", mode="coupon") == 1
    engine = (create_postgres_engine(location) if backend == "postgres"
              else create_sqlite_engine(location))
    store = sql_store(engine)
    got = await store.coupons.get("default", "LAST")
    assert got is not None and got.usage_count == 1
    await store.close()


def _sql_store(backend: str, location: str) -> Store:
    return sql_store(create_postgres_engine(location) if backend == "postgres"
                     else create_sqlite_engine(location))


@pytest.mark.parametrize("renewal", [False, True], ids=["first", "renewal"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_activating_one_payment_buy_one_period(
    backend: str, renewal: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = await _database(backend, request, tmp_path)
    store = _sql_store(backend, location)
    clock = SystemClock()
    try:
        await store.products.create(plan())
        if renewal:
            await pay(store, clock, "sig-earlier")
            await subscriptions(store, clock).activate("default", "plan", SUBSCRIBER,
                                                       "sig-earlier")
        await pay(store, clock, "sig-race")
        before = await store.subscriptions.list_by_product("default", "plan")
        assert await _run_workers(backend, location, processes=2, attempts=25,
                                  key="sig-race", mode="subscribe") == 1
        after = await store.subscriptions.list_by_product("default", "plan")
        assert len(after) == 1
        renewed = [w.event_type for w in await store.webhooks.list("default", None, 500)]
        assert renewed.count("subscription.renewed" if renewal
                             else "subscription.created") == 1
        if renewal:
            (old,) = before
            assert after[0].current_period_start == old.current_period_end
    finally:
        await store.close()

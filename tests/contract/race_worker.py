"""Child process for test_replay_processes: race for one thing, print how many attempts won.

    race_worker.py BACKEND LOCATION KEY ATTEMPTS [record|claim|coupon|subscribe]

`record` inserts the payment KEY, `claim` claims the cart KEY (each attempt with its own
holder, as different transactions would), `coupon` reserves a use of the coupon KEY,
`subscribe` activates the plan with the recorded payment KEY (wins: activations that bought
a period).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from subscription_world import WALLET, subscriptions

from cedros_pay.core.clock import SystemClock
from cedros_pay.core.models import PaymentTransaction
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store


async def _attempt(store: Store, mode: str, key: str, i: int) -> bool:
    now = datetime.now(UTC)
    if mode == "claim":
        return await store.carts.claim("default", key, f"sig-{os.getpid()}-{i}", now,
                                       timedelta(minutes=2))
    if mode == "coupon":
        return await store.coupons.increment_usage("default", key)
    tx = PaymentTransaction(signature=key, resource_id="r", wallet="w",
                            amount_atomic=1, asset="USDC", created_at=now)
    return await store.payments.record(tx)


async def main(backend: str, location: str, key: str, attempts: int, mode: str) -> int:
    engine = (create_postgres_engine(location) if backend == "postgres"
              else create_sqlite_engine(location))
    store = sql_store(engine)
    try:
        if mode == "subscribe":
            subs = subscriptions(store, SystemClock())
            bought = await asyncio.gather(*(subs.activate("default", "plan", WALLET, key)
                                            for _ in range(attempts)))
            return [b.quote is None for b in bought].count(True)
        results = await asyncio.gather(*(_attempt(store, mode, key, i)
                                         for i in range(attempts)))
    finally:
        await store.close()
    return results.count(True)


if __name__ == "__main__":
    mode = sys.argv[5] if len(sys.argv) > 5 else "record"
    print(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), mode)))

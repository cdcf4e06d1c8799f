"""Child process for test_replay_processes: race to record one signature, print wins."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from cedros_pay.core.models import PaymentTransaction
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.store import sql_store


async def main(backend: str, location: str, signature: str, attempts: int) -> int:
    engine = (create_postgres_engine(location) if backend == "postgres"
              else create_sqlite_engine(location))
    store = sql_store(engine)
    tx = PaymentTransaction(signature=signature, resource_id="r", wallet="w",
                            amount_atomic=1, asset="USDC", created_at=datetime.now(UTC))
    try:
        results = await asyncio.gather(*(store.payments.record(tx) for _ in range(attempts)))
    finally:
        await store.close()
    return results.count(True)


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))

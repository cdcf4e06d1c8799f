"""`subscriptions.backend`: defaults to `storage.backend`; `postgres` apart from the main
store keeps subscriptions in their own real PostgreSQL; `memory` beside a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.conftest import config_from

from cedros_pay.bootstrap.services import table_names
from cedros_pay.bootstrap.subscriptions import open_subscription_repo
from cedros_pay.core.models import Subscription, SubscriptionStatus
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.storage.memory.subscriptions import MemorySubscriptions
from cedros_pay.storage.open import open_store


def a_subscription() -> Subscription:
    now = datetime.now(UTC).replace(microsecond=0)
    return Subscription(id="00000000-0000-4000-8000-000000000001", product_id="monthly",
                        status=SubscriptionStatus.ACTIVE, current_period_start=now,
                        current_period_end=now + timedelta(days=30), created_at=now,
                        updated_at=now, wallet="11111111111111111111111111111111",
                        payment_method="x402", billing_period="month")


async def test_separate_postgres_holds_the_subscriptions(tmp_path: Path,
                                                         postgres_url: str) -> None:
    db = tmp_path / "main.db"
    (tmp_path / "c.yaml").write_text(
        f"storage: {{backend: file, file_path: '{db}'}}\n"
        f"subscriptions: {{enabled: true, backend: postgres, postgres_url: '{postgres_url}'}}\n")
    config = config_from(yaml_path=str(tmp_path / "c.yaml"))
    assert (config.storage.backend, config.subscriptions.backend) == ("sqlite", "postgres")
    main = await open_store("sqlite", file_path=str(db))
    lifecycle = Lifecycle()
    try:
        repo = await open_subscription_repo(config, main, lifecycle, table_names(config))
        await repo.create(a_subscription())
        assert await main.subscriptions.get("default", a_subscription().id) is None
    finally:
        await lifecycle.close()
        await main.close()
    pg = await open_store("postgres", postgres_url=postgres_url)
    try:
        found = await pg.subscriptions.get("default", a_subscription().id)
        assert found is not None and found.product_id == "monthly"
    finally:
        await pg.close()


async def test_backend_defaults_to_storage_and_memory_stands_apart(tmp_path: Path) -> None:
    db = tmp_path / "main.db"
    (tmp_path / "c.yaml").write_text(f"storage: {{backend: file, file_path: '{db}'}}\n"
                                     "subscriptions: {enabled: true}\n")
    config = config_from(yaml_path=str(tmp_path / "c.yaml"))
    assert config.subscriptions.backend == "sqlite"
    main = await open_store("sqlite", file_path=str(db))
    try:
        repo = await open_subscription_repo(config, main, Lifecycle(), table_names(config))
        assert repo is main.subscriptions
        (tmp_path / "m.yaml").write_text(f"storage: {{backend: file, file_path: '{db}'}}\n"
                                         "subscriptions: {enabled: true, backend: memory}\n")
        memory = config_from(yaml_path=str(tmp_path / "m.yaml"))
        repo = await open_subscription_repo(memory, main, Lifecycle(), table_names(memory))
        assert isinstance(repo, MemorySubscriptions)
    finally:
        await main.close()

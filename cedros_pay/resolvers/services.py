"""The services an adapter can reach: built once in `app.py`, read by REST and GraphQL."""

from __future__ import annotations

from dataclasses import dataclass

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.resolvers.health import Health
from cedros_pay.storage.store import Store


@dataclass(slots=True, kw_only=True)
class Services:
    config: Config
    clock: Clock
    store: Store
    health: Health

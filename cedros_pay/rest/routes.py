"""The REST route table, under the configured prefix (spec 02)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from cedros_pay.rest.health import health


def build_routes(prefix: str) -> list[BaseRoute]:
    return [
        Route(f"{prefix}/cedros-health", health, methods=["GET"], name="health"),
    ]

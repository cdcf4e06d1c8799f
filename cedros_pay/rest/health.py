"""GET /cedros-health (spec 02)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.clock import format_duration, to_rfc3339
from cedros_pay.logs import truncate_wallet
from cedros_pay.resolvers.health import HealthReport
from cedros_pay.rest.context import services
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import HealthResponse
from cedros_pay.rest.responses import spec_json


def render_health(r: HealthReport) -> dict[str, Any]:
    return {
        "status": r.status,
        "uptime": format_duration(timedelta(seconds=int(r.uptime.total_seconds()))),
        "timestamp": to_rfc3339(r.timestamp),
        "rpcHealthy": r.rpc_healthy,
        "routePrefix": r.route_prefix,
        "network": r.network,
        "features": r.features,
        "walletHealth": {
            name: {"address": truncate_wallet(w.address), "balance": w.balance_sol,
                   "status": w.status}
            for name, w in r.wallet_health.items()
        },
    }


@endpoint("Server health", tag="health", responses={200: HealthResponse, 503: HealthResponse},
          description="503 with the same body when the database is unreachable.")
async def health(request: Request) -> Response:
    report = await services(request).health.report()
    # Orchestrators only read the status code: 503 when the database is gone.
    return spec_json(render_health(report), status=503 if report.status == "error" else 200)

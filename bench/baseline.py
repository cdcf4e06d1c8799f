"""The baseline: a bare Starlette app answering one fixed JSON document.

It does what any Starlette endpoint does and nothing more (route match, JSON render,
response), so the ratio of a Cedros Pay endpoint to it is the cost of our own code. The
document looks like a ten-item catalog page and is about as large as the server's
`GET /paywall/v1/products` answer (~4 KB); it is rendered per request, as a handler
returning `JSONResponse(data)` would.

Served by the runner with the server's uvicorn settings:
    python -m uvicorn bench.baseline:app --host 127.0.0.1 --port N --no-access-log ...
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_KINDS = ("article", "download", "api", "course", "audio")


def _item(n: int) -> dict[str, Any]:
    cents = 150 * n + 99
    return {
        "id": f"baseline-item-{n:02d}",
        "title": f"Baseline catalog entry number {n}",
        "summary": f"Entry {n} of a fixed document that only measures the framework",
        "priceCents": cents,
        "price": cents / 100,
        "currency": "usd",
        "tokenAmount": cents / 100,
        "token": "USDC",
        "externalPriceId": "",
        "discounted": n % 3 == 0,
        "discountCode": "SAVE10" if n % 3 == 0 else "",
        "discountPercent": 10.0 if n % 3 == 0 else 0.0,
        "bundleCode": "",
        "bundlePercent": 0.0,
        "tags": {"kind": _KINDS[n % len(_KINDS)]},
        "updatedAt": "2026-01-01T00:00:00Z",
    }


DOCUMENT: dict[str, Any] = {"items": [_item(n) for n in range(1, 11)]}
BODY = json.dumps(DOCUMENT, separators=(",", ":")).encode()


async def catalog(_request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/", catalog, methods=["GET"])])

"""SpecJSON builds the same header list as Starlette's Response would for the same JSON."""

from __future__ import annotations

import orjson
import pytest
from starlette.responses import Response

from cedros_pay.rest.responses import spec_json


@pytest.mark.parametrize("headers", [
    None,
    {},
    {"PAYMENT-REQUIRED": "eyJ4IjoxfQ==", "Cache-Control": "no-store"},
    {"Content-Type": "application/problem+json"},
    {"content-length": "2", "X-Extra": "é"},
])
def test_same_headers_as_starlette(headers: dict[str, str] | None) -> None:
    body = {"error": {"code": "invalid_field", "message": "x"}}
    ours = spec_json(body, 402, headers)
    theirs = Response(orjson.dumps(body), status_code=402, headers=headers,
                      media_type="application/json")
    assert ours.raw_headers == theirs.raw_headers
    assert (ours.status_code, ours.body) == (theirs.status_code, theirs.body)

"""What the fuzzers found, kept as plain regression tests (fast, in-process)."""

from __future__ import annotations

from pathlib import Path

import httpx
from api.conftest import client_for, config_from

from cedros_pay.app import create_app
from cedros_pay.storage.store import memory_store


async def test_a_subscriber_proof_with_a_non_ascii_or_huge_timestamp_is_no_pass(
        tmp_path: Path) -> None:
    """`X-Message: subscription:<id>:<unix seconds>`: "²" is a digit to str.isdigit() and
    5,000 digits are too many for int(); both were a 500."""
    (tmp_path / "cedros.yaml").write_text("subscriptions:\n  enabled: true\n")
    cfg = config_from(yaml_path=str(tmp_path / "cedros.yaml"))
    async with client_for(create_app(cfg, store=memory_store())) as client:
        for stamp in (b"\xb2", b"9" * 5000):
            resp = await client.get("/paywall/any-product", headers={
                "X-Signer": "7cVfgArCheMR6Cs4t6vz5rfnqd56vZq4ndaBrY5xkxXy",
                "X-Signature": "A" * 88, "X-Message": b"subscription:any-product:" + stamp})
            assert resp.status_code == 404, resp.text
            assert resp.json()["error"]["code"] == "resource_not_found"


async def test_json_rpc_errors_of_the_request_itself_are_400() -> None:
    async with client_for(create_app(config_from(), store=memory_store())) as client:
        await _json_rpc_errors(client)


async def _json_rpc_errors(catalog_client: httpx.AsyncClient) -> None:
    for body in (b"{nope", b"", b'{"id": 3, "method": "x"}', b'{"jsonrpc": "2.0", "id": true}'):
        resp = await catalog_client.post("/resources/list", content=body)
        assert resp.status_code == 400, body
        assert resp.json()["error"]["code"] in (-32700, -32600)
    unknown = await catalog_client.post("/resources/list", json={
        "jsonrpc": "2.0", "id": 7, "method": "tools/call"})
    assert unknown.status_code == 200 and unknown.json()["error"]["code"] == -32601

"""`cedros-pay serve` refuses a request head over 64 KiB with 431, over raw sockets: in one
write, across many headers, and while a header is still streaming in."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from pathlib import Path

from solders.keypair import Keypair
from support.process import ServeProcess

from cedros_pay.rest.head_limit import MAX_HEAD_BYTES

REPO = Path(__file__).resolve().parents[2]


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """(status, body) of one request sent in one write; reads until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def get(path: str, *headers: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers,
             b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def streamed_header_until_answer(port: int) -> tuple[int, int]:
    """(status, bytes sent when the answer came) for a header that never ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /cedros-health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
    answer = asyncio.ensure_future(reader.read(-1))
    sent = 0
    try:
        while not answer.done() and sent < 4 * 1024 * 1024:
            writer.write(b"a" * 8192)
            await writer.drain()
            sent += 8192
            await asyncio.sleep(0.002)
    except ConnectionError:  # the server closed while we wrote
        pass
    body = await asyncio.wait_for(answer, 10)
    writer.close()
    return int(body.split(b" ")[1]), sent


def refusal(body: bytes) -> dict[str, object]:
    error: dict[str, object] = json.loads(body)["error"]
    return error


async def test_heads_over_the_limit_get_431_and_the_server_serves_on(tmp_path: Path) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    server = ServeProcess(tmp_path / "configs" / "demo.yaml", tmp_path, "serve", env={
        "CEDROS_X402_RPC_URL": "http://127.0.0.1:9/",  # nothing there: health is degraded
        "X402_SERVER_WALLET_1": str(Keypair())})
    try:
        await server.wait_started()
        port = server.port
        # A payment-sized header (X-PAYMENT may be 16 KiB) is fine.
        status, _ = await exchange(port, get("/cedros-health", b"X-Payment: " + b"a" * 20_000))
        assert status == 200
        # One header past the limit, in one write.
        status, body = await exchange(
            port, get("/cedros-health", b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 1)))
        assert status == 431
        assert refusal(body)["code"] == "invalid_field"
        assert refusal(body)["details"] == {"field": "headers"}
        # Many small headers past the limit together.
        many = [b"X-H%d: %s" % (i, b"b" * 1000) for i in range(MAX_HEAD_BYTES // 1000 + 2)]
        status, _ = await exchange(port, get("/cedros-health", *many))
        assert status == 431
        # A header that never ends is cut off near the limit, not buffered on.
        status, sent = await streamed_header_until_answer(port)
        assert status == 431
        assert sent < MAX_HEAD_BYTES + 512 * 1024
        # A body does not count: a 60 KB JSON body arriving with the head is read normally.
        body_bytes = json.dumps({"resource": "x" * 60_000}).encode()
        status, _ = await exchange(port, b"\r\n".join([
            b"POST /paywall/v1/quote HTTP/1.1", b"Host: 127.0.0.1",
            b"Content-Type: application/json", b"Content-Length: %d" % len(body_bytes),
            b"Connection: close", b"", body_bytes]))
        assert status not in (431, 500)
        # Keep-alive: a second request on the same connection has its own budget.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(b"GET /cedros-health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
                         + b"c" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
        writer.close()
    finally:
        code = await asyncio.to_thread(server.stop, signal.SIGTERM)
    assert code == 0
    assert "Traceback" not in server.log.read_text()

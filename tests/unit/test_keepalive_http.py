"""The keep-alive JSON-RPC client against a real local TCP server whose replies each test
writes byte by byte: reuse, stale connections, framing, timeouts, failures and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from cedros_pay.integrations.keepalive_http import ConnectionFailed, KeepAlivePool, proxied

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Origin"], Awaitable[None]]


class Origin:
    """A TCP server on 127.0.0.1 that counts connections and hands each to `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer, self)
        writer.close()


async def read_request(reader: asyncio.StreamReader, origin: Origin) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    origin.requests.append(head + body)
    return body


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       origin: Origin) -> None:
    while True:
        body = await read_request(reader, origin)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()


@contextlib.asynccontextmanager
async def origin_with(handler: Handler, ssl_context: ssl.SSLContext | None = None,
                      ) -> AsyncIterator[Origin]:
    origin = Origin(handler)
    origin.server = await asyncio.start_server(origin._serve, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield origin
    finally:
        for writer in origin.writers:
            writer.close()
        origin.server.close()
        await origin.server.wait_closed()


async def test_sequential_posts_share_one_connection_and_echo_the_body() -> None:
    async with origin_with(echo_forever) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/rpc?key=k")
        for n in range(5):
            reply = await pool.post(b'{"n":%d}' % n, time_limit=5)
            assert (reply.status, reply.body) == (200, b'{"n":%d}' % n)
        assert origin.connections == 1
        head = origin.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
        assert head[0] == b"POST /rpc?key=k HTTP/1.1"
        assert f"Host: 127.0.0.1:{origin.port}".encode() in head
        assert b"Content-Type: application/json" in head
        await pool.aclose()


async def test_concurrent_posts_open_their_own_connections_and_keep_them() -> None:
    async with origin_with(echo_forever) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/", max_idle=2)
        replies = await asyncio.gather(*(pool.post(b"%d" % n, time_limit=5) for n in range(4)))
        assert [r.body for r in replies] == [b"0", b"1", b"2", b"3"]
        assert origin.connections == 4
        await asyncio.gather(*(pool.post(b"x", time_limit=5) for _ in range(2)))
        assert origin.connections == 4  # two were kept idle (max_idle) and reused
        await pool.aclose()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def one_reply_then_hang_up(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter, origin: Origin) -> None:
        await read_request(reader, origin)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # an idle timeout: the server closes a kept-alive connection without a word

    async with origin_with(one_reply_then_hang_up) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        for _ in range(3):
            assert (await pool.post(b"{}", time_limit=5)).body == b"ok"
            await asyncio.sleep(0.05)
        assert origin.connections == 3
        await pool.aclose()


async def test_a_write_that_races_the_servers_close_is_sent_once_more() -> None:
    """The connection looks open when taken (the FIN has not been read yet), but the server
    reads nothing more and hangs up: the pool resends on a fresh connection."""
    async def close_on_second_request(reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter, origin: Origin) -> None:
        await read_request(reader, origin)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if origin.connections == 1:
            await reader.read(1)  # the second request's first byte: hang up without a reply

    async with origin_with(close_on_second_request) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        assert (await pool.post(b"{}", time_limit=5)).body == b"ok"
        assert (await pool.post(b"{}", time_limit=5)).body == b"ok"
        assert origin.connections == 2
        await pool.aclose()


async def test_a_reply_cut_off_midway_is_a_connection_failure_not_a_resend() -> None:
    async def half_a_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           origin: Origin) -> None:
        await read_request(reader, origin)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    async with origin_with(half_a_reply) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        with pytest.raises(ConnectionFailed):
            await pool.post(b"{}", time_limit=5)
        assert origin.connections == 1
        await pool.aclose()


async def test_chunked_close_delimited_and_interim_replies_are_read_whole() -> None:
    replies = [
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       origin: Origin) -> None:
        while True:
            await read_request(reader, origin)
            reply = replies[len(origin.requests) - 1]
            for i in range(0, len(reply), 7):  # in small pieces
                writer.write(reply[i:i + 7])
                await writer.drain()
            if b"Connection: close" in reply:
                return

    async with origin_with(scripted) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        assert (await pool.post(b"{}", time_limit=5)).body == b"abcde"
        assert (await pool.post(b"{}", time_limit=5)).body == b"to the end"
        assert origin.connections == 1
        assert (await pool.post(b"{}", time_limit=5)).status == 204  # after a close: reconnects
        assert origin.connections == 2
        await pool.aclose()


async def test_status_and_retry_after_are_reported() -> None:
    async def throttled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        origin: Origin) -> None:
        while True:
            await read_request(reader, origin)
            writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
                         b"Content-Length: 0\r\n\r\n")
            await writer.drain()

    async with origin_with(throttled) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        reply = await pool.post(b"{}", time_limit=5)
        assert (reply.status, reply.retry_after, reply.body) == (429, "3", b"")
        await pool.aclose()


async def test_a_slow_reply_times_out_and_its_connection_is_not_reused() -> None:
    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         origin: Origin) -> None:
        while True:
            await read_request(reader, origin)
            if len(origin.requests) == 1:
                await asyncio.sleep(0.5)  # the answer to the first request comes too late
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n%02d"
                         % len(origin.requests))
            await writer.drain()

    async with origin_with(slow_first) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        with pytest.raises(TimeoutError):
            await pool.post(b"{}", time_limit=0.1)
        # A fresh connection: the late answer to the first request cannot be taken as
        # this one's.
        assert (await pool.post(b"{}", time_limit=5)).body == b"02"
        assert origin.connections == 2
        await pool.aclose()


async def test_an_unreachable_origin_and_a_garbage_reply_are_connection_failures() -> None:
    async with origin_with(echo_forever) as origin:
        port = origin.port
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        await KeepAlivePool(f"http://127.0.0.1:{port}/").post(b"{}", time_limit=5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      origin: Origin) -> None:
        await read_request(reader, origin)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with origin_with(garbage) as origin:
        with pytest.raises(ConnectionFailed, match="malformed"):
            await KeepAlivePool(f"http://127.0.0.1:{origin.port}/").post(b"{}", time_limit=5)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (the openssl command line), and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https_with_basic_auth_from_the_url(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    async with origin_with(echo_forever, server_side) as origin:
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = KeepAlivePool(f"https://user:p%40ss@localhost:{origin.port}/", ssl_context=trusting)
        assert (await pool.post(b"secret", time_limit=5)).body == b"secret"
        assert b"Authorization: Basic dXNlcjpwQHNz" in origin.requests[0]  # user:p@ss
        await pool.aclose()
        with pytest.raises(ConnectionFailed):  # the system store does not trust it
            await KeepAlivePool(f"https://localhost:{origin.port}/").post(b"{}", time_limit=5)


def test_it_runs_on_uvloop_as_the_server_does() -> None:
    async def posts() -> list[bytes]:
        async with origin_with(echo_forever) as origin:
            pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
            bodies = [(await pool.post(b"%d" % n, time_limit=5)).body for n in range(3)]
            await pool.aclose()
            assert origin.connections == 1
            return bodies

    assert uvloop.run(posts()) == [b"0", b"1", b"2"]


def test_proxied_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                 "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not proxied("https://rpc.example/")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxied("https://rpc.example/")
    assert not proxied("http://rpc.example/")
    monkeypatch.setenv("NO_PROXY", "rpc.example")
    assert not proxied("https://rpc.example/")


async def test_a_connection_that_speaks_while_idle_is_not_reused() -> None:
    async def reply_then_time_out(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                  origin: Origin) -> None:
        await read_request(reader, origin)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # idle: the server gives up on the connection, politely
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)  # ...and would hang up only later

    async with origin_with(reply_then_time_out) as origin:
        pool = KeepAlivePool(f"http://127.0.0.1:{origin.port}/")
        assert (await pool.post(b"{}", time_limit=5)).body == b"ok"
        await asyncio.sleep(0.2)
        reply = await pool.post(b"{}", time_limit=5)
        assert (reply.status, reply.body) == (200, b"ok")  # not the stale 408
        assert origin.connections == 2
        await pool.aclose()

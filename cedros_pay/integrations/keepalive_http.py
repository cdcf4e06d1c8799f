"""A lean HTTP/1.1 keep-alive POST client for one origin: the Solana JSON-RPC hot path.

Why not httpx here: one `sendTransaction` through httpx cost about 1 ms of CPU (its
request and response models, anyio, httpcore's pool, h11), a fifth of the server's CPU
per settlement (bench/RESULTS.md, "Lean RPC transport"). A JSON-RPC POST needs none of
that: one origin, a fixed header block, a body, and the reply's status, Retry-After and
body. This client writes each request with one `write()` and parses the reply with
httptools (uvicorn's parser) inside an `asyncio.Protocol`, on connections it keeps open.

Not supported, by design: proxies, redirects, compression, HTTP/2, cookies, streaming.
`proxied(url)` tells a caller when the environment asks for a proxy, so it can use httpx.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import cast

import httptools


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    retry_after: str | None  # the Retry-After header, as sent


class ConnectionFailed(Exception):
    """The origin could not be reached, or the connection broke before a whole reply."""


def proxied(url: str) -> bool:
    """Whether the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) routes `url`
    through a proxy, as httpx would."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._body: list[bytes] = []
        self._retry_after: str | None = None
        self._framed = False  # Content-Length or chunked: the reply's end is in the stream
        self._headers_done = False
        self.received = False  # any byte of the current reply has arrived
        self.open = False
        self.reusable = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass)
        self._transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes on an idle connection (a server's 408 before it hangs up): it cannot
            # carry a request any more, as they would be read as that request's answer.
            self.close()
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(ConnectionFailed(f"malformed HTTP reply ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.reusable = False
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed:
            self._finish(keep=False)  # a reply delimited by the end of the connection
        else:
            self._fail(ConnectionFailed("the connection closed before the whole reply"))

    # --- httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif key in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:  # an interim reply: the real one follows
            self._reset()
            return
        self._finish(keep=self._parser.should_keep_alive())

    # --- one exchange -------------------------------------------------------------------

    async def send(self, request: bytes) -> Reply:
        assert self._transport is not None
        self._reset()
        self.received = False
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _reset(self) -> None:
        self._body = []
        self._retry_after = None
        self._framed = False
        self._headers_done = False

    def _finish(self, *, keep: bool) -> None:
        reply = Reply(self._parser.get_status_code(), b"".join(self._body), self._retry_after)
        self.reusable = keep and self.open
        if not keep:
            self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(reply)

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)


class KeepAlivePool:
    """POSTs to one URL over kept-alive connections; at most `max_idle` are kept idle.

    A request on a reused connection that the server closed in the meantime (its idle
    timeout raced our write) is sent once more on a fresh connection, if no byte of a
    reply had arrived. Callers resend only what is safe to resend: JSON-RPC reads, and
    signed transactions, which land at most once.
    """

    def __init__(self, url: str, *, content_type: str = "application/json",
                 max_idle: int = 16, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._closed = False
        authority = f"[{self._host}]" if ":" in self._host else self._host
        if parts.port is not None:
            authority += f":{parts.port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {authority}",
                 f"Content-Type: {content_type}", "Accept: application/json",
                 "User-Agent: cedros-pay"]
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def post(self, body: bytes, time_limit: float) -> Reply:
        """The reply to one POST of `body`. Raises TimeoutError past `time_limit` seconds
        (connecting included) and ConnectionFailed when the origin cannot be reached or
        hangs up mid-reply."""
        if self._closed:
            raise ConnectionFailed("the client is closed")
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        async with asyncio.timeout(time_limit):
            connection = self._take_idle()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except ConnectionFailed:
                    if connection.received:
                        raise
                    # The server closed the idle connection as we wrote: try a fresh one.
            return await self._exchange(await self._connect(), request)

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.open:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None)
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError)
            raise ConnectionFailed(f"cannot connect to {self._host}:{self._port} ({exc})") \
                from None
        return connection

    async def _exchange(self, connection: _Connection, request: bytes) -> Reply:
        try:
            reply = await connection.send(request)
        except BaseException:  # a timeout or a cancel leaves a reply in flight: drop it
            connection.close()
            raise
        if connection.reusable and not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            connection.close()
        return reply

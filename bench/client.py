"""A lean HTTP/1.1 keep-alive client on asyncio streams, for load that the server must feel.

httpx spends 3-4 ms of CPU per request, so on a 2-CPU machine it saturates a core before
the server does. This client writes a request as one byte string and parses only what a
load generator needs (status, headers, a Content-Length or chunked body); on a loopback
connection it costs a few tens of microseconds per request.

`Connection` is one socket, reused until the server closes it (then reopened once);
`drive` runs `connections` of them, each taking the next request from a shared iterator,
and returns a `Tally` of statuses and latencies. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
HEAD_LIMIT = 1 << 16  # bytes of status line and headers a response may have


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def json(cls, method: str, path: str, doc: Any,
             headers: tuple[tuple[str, str], ...] = ()) -> Request:
        return cls(method, path, (("Content-Type", "application/json"), *headers),
                   json.dumps(doc).encode())

    def encode(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error_code(self) -> str:
        """The spec error code of an error envelope, or "" when the body has none."""
        try:
            doc = self.json()
        except ValueError:
            return ""
        error = doc.get("error") if isinstance(doc, dict) else None
        return str(error.get("code", "")) if isinstance(error, dict) else ""


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 this client can read."""


class Connection:
    """One keep-alive connection to HOST:port; `send` reopens it if the server closed it."""

    def __init__(self, port: int, host: str = HOST) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=HEAD_LIMIT)
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, request: Request) -> Response:
        """One request and its response; one retry on a fresh socket if the kept-alive one
        was closed by the server before it read the request."""
        data = request.encode(self.host, self.port)
        for attempt in (1, 2):
            reader, writer = await self._open()
            try:
                writer.write(data)
                response = await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
                continue
            if response.headers.get("connection", "").lower() == "close":
                await self.close()
            return response
        raise AssertionError("unreachable")

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Response:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.1 status line: {status_line!r}")
        headers: dict[str, str] = {}
        for line in rest.split("\r\n"):
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Response(int(parts[1]), headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent by uvicorn
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass(slots=True)
class Tally:
    """What a load run saw: statuses, spec error codes of the refusals, latencies."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # error code of every status >= 400
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # transport errors, first few kept
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return float(statistics.median(self.latencies_ms)) if self.latencies_ms else 0.0

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def add(self, response: Response, ms: float) -> None:
        self.statuses[response.status] += 1
        self.latencies_ms.append(ms)
        if response.status >= 400:
            self.codes[response.error_code() or "(no code)"] += 1


Check = Callable[[Request, Response], Awaitable[None] | None]


async def drive(port: int, requests: Iterable[Request], *, connections: int,
                check: Check | None = None) -> Tally:
    """Send every request of `requests`, `connections` at a time on keep-alive sockets.

    `check` sees each (request, response) pair (a bench counts its own outcomes there).
    A transport failure is counted under status 0 and the connection reopened."""
    tally = Tally()
    source: Iterator[Request] = iter(requests)

    async def worker() -> None:
        async with Connection(port) as conn:
            for request in source:
                started = time.perf_counter()
                try:
                    response = await conn.send(request)
                except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    tally.statuses[0] += 1
                    if len(tally.failures) < 5:
                        tally.failures.append(f"{request.method} {request.path}: {exc!r}")
                    await conn.close()
                    continue
                ms = (time.perf_counter() - started) * 1000
                tally.add(response, ms)
                if check is not None:
                    outcome = check(request, response)
                    if outcome is not None:
                        await outcome

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    tally.seconds = time.perf_counter() - started
    return tally


class Pool:
    """Keep-alive connections to one port, opened as needed: N sends at once use N sockets,
    and a finished one goes back for the next send."""

    def __init__(self, port: int, host: str = HOST) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []

    async def send(self, request: Request) -> Response:
        conn = self._idle.pop() if self._idle else Connection(self.port, self.host)
        try:
            response = await conn.send(request)
        except BaseException:
            await conn.close()
            raise
        self._idle.append(conn)
        return response

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

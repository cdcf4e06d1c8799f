"""Run the sandbox RPC app under uvicorn: as a task on the caller's loop, or in its own thread.

uvicorn binds the port itself (port 0 means "any free one") and we read it back afterwards:
handing uvicorn a pre-bound socket instead cost ~40 ms per request in our measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Generator
from types import TracebackType

import uvicorn

from cedros_pay.sandbox.chain import SandboxChain
from cedros_pay.sandbox.faults import Faults
from cedros_pay.sandbox.rpc import create_rpc_app


class _Server(uvicorn.Server):
    """uvicorn that leaves signals alone and starts and stops without its 0.1 s polling.

    Tests start a sandbox each; uvicorn's stock shutdown (a fixed sleep plus 0.1 s polls)
    would add ~0.2 s to every one of them.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to whoever embeds us (pytest, the CLI), not to uvicorn.
        yield

    def request_exit(self) -> None:
        """Ask the server to stop; callable from any thread."""
        self.should_exit = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already gone
                self._loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # on_tick keeps the Date header fresh
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        running = list(self.server_state.tasks)  # requests still being answered
        if running:
            await asyncio.wait(running, timeout=self.config.timeout_graceful_shutdown)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


async def _serve(server: _Server, host: str, port: int) -> None:
    # uvicorn answers a bind failure with sys.exit(1); SystemExit escaping a task would take
    # down the caller's whole event loop, so it becomes an ordinary error here.
    try:
        await server.serve()
    except SystemExit:
        raise OSError(f"sandbox server could not listen on {host}:{port}") from None


class SandboxServer:
    """`async with SandboxServer(chain) as url:` or `url = server.start_in_thread()`."""

    def __init__(self, chain: SandboxChain, *, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults | None = None, log_level: str = "warning") -> None:
        self.chain = chain
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self._log_level = log_level
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> str:
        """Start serving on the running loop; returns the HTTP URL once the port is bound."""
        if self._server is not None:
            raise RuntimeError("sandbox server already started")
        app = self.faults.wrap(create_rpc_app(self.chain, self.faults))  # slow / dropped
        config = uvicorn.Config(app, host=self.host,
                                port=self.port, log_level=self._log_level, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        server = self._server = _Server(config)
        self._task = asyncio.create_task(_serve(server, self.host, self.port), name="sandbox-rpc")
        while not server.started:
            if self._task.done():
                self._server = None
                await self._task  # re-raise the startup failure
                raise RuntimeError(f"sandbox server could not listen on {self.host}:{self.port}")
            await asyncio.sleep(0.002)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.request_exit()
        await task
        self._server = self._task = None

    async def wait_closed(self) -> None:
        """Block until the server stops (the CLI's foreground mode)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # --- thread mode, for synchronous callers -----------------------------------------

    def start_in_thread(self) -> str:
        """Serve from a daemon thread with its own loop; returns the HTTP URL when ready."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                ready.set()
            await self.wait_closed()

        def run() -> None:
            with contextlib.suppress(BaseException):
                asyncio.run(serve())

        self._thread = threading.Thread(target=run, name="sandbox-rpc", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError("sandbox server failed to start") from failure[0]
        return self.url

    def stop_thread(self, timeout: float = 5.0) -> None:
        """Stop a server started with start_in_thread (uvicorn notices within ~0.1 s)."""
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._server = self._task = None

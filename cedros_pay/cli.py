"""`cedros-pay serve | migrate | sandbox | pay | keygen | version`.

Start-up follows spec 01: .env, flags, configuration, logger, then the app. A bad
configuration prints one line per problem and exits 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

from cedros_pay.config import Config, ConfigError, load_config
from cedros_pay.logs import configure_logging

log = logging.getLogger("cedros_pay.cli")

SHUTDOWN_BUDGET_SECONDS = 15


def version_info() -> dict[str, str]:
    """Version from the installed package; build time stamped by the image build."""
    from cedros_pay.bootstrap import version

    return {"version": version(), "buildTime": os.environ.get("CEDROS_BUILD_TIME", "unknown")}


def split_address(address: str) -> tuple[str, int]:
    """Go-style listen address: ':8080' listens everywhere, 'host:port' on one host."""
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def _load(path: str | None, *, validate: bool = True,
          environ: dict[str, str] | None = None) -> Config:
    """`migrate` needs only the storage section, so it skips the payment rules."""
    try:
        if environ is not None:
            return load_config(path, environ=environ, dotenv_path=None, validate=validate)
        return load_config(path, validate=validate)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def banner(config: Config, host: str, port: int, *, rpc_url: str | None = None,
           payer: Path | None = None) -> str:
    """What a person starting the server wants to know first: where everything is and how
    to pay (printed once, on stderr, after the server accepts connections)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}{config.server.route_prefix}"
    lines = [
        f"Cedros Pay is serving on {base}",
        f"  GraphiQL      {base}/graphql",
        f"  OpenAPI       {base}/openapi.json",
        f"  metrics       {base}/metrics",
        f"  health        http://{shown}:{port}/cedros-health",
    ]
    if rpc_url:
        lines.append(f"  sandbox RPC   {rpc_url}")
    if payer is not None:
        lines += [
            "Pay as an agent:",
            f"  cedros-pay pay demo-article --keypair {payer}",
            "Pay with the official x402 client (see docs/x402-official-client.md):",
            f"  PYTHONPATH=. .venv-x402/bin/python -m cedros_pay.sandbox.payer demo-api-call "
            f"--official --keypair {payer} --server {base}",
        ]
    return "\n".join(lines)


async def _serve(config: Config, host: str, port: int, *, announce: str | None = None,
                 sock: socket.socket | None = None) -> None:
    import uvicorn

    from cedros_pay.bootstrap import create_app
    from cedros_pay.rest.head_limit import HeadLimitedHttpToolsProtocol

    class _Server(uvicorn.Server):
        # uvicorn re-raises the caught signal after shutting down, so a clean SIGTERM
        # would end the process as "killed"; we handle the signals ourselves instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if announce and self.started:
                print(announce, file=sys.stderr, flush=True)
            # What exists once the app has started lives as long as the process: frozen
            # out of the collector's sight, a full collection under load walks only what
            # requests allocate (no 100k-object pause in the middle of a payment).
            gc.freeze()

    app = create_app(config)
    server = _Server(uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_config=None, access_log=False,
        http=HeadLimitedHttpToolsProtocol,  # 431 for a request head over 64 KiB
        timeout_graceful_shutdown=SHUTDOWN_BUDGET_SECONDS, server_header=False,
        # Forwarding headers are judged by our real-IP middleware against
        # server.trusted_proxies; uvicorn's own rewrite would trust loopback blindly.
        proxy_headers=False,
    ))

    def stop(sig: signal.Signals) -> None:
        log.info("shutting down", extra={"signal": sig.name})
        if server.should_exit:  # a second signal: stop waiting for in-flight requests
            server.force_exit = True
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    await server.serve(sockets=[sock] if sock is not None else None)
    if not server.started:
        raise SystemExit(1)


async def _serve_on_sandbox(args: argparse.Namespace) -> None:
    """`serve --sandbox`: a local devnet look-alike in this process, config pointed at it,
    so x402 works offline out of the box (`make run`)."""
    from dotenv import dotenv_values

    from cedros_pay.sandbox.network import build_devnet_sandbox, write_cedros_config
    from cedros_pay.sandbox.server import SandboxServer

    devnet = build_devnet_sandbox(state_dir=args.sandbox_dir)
    server = SandboxServer(devnet.chain, port=args.sandbox_port)
    async with server:
        files = write_cedros_config(devnet, args.sandbox_dir, rpc_url=server.url,
                                    ws_url=server.ws_url)
        overrides = {k: v for k, v in dotenv_values(files.env).items() if v is not None}
        config = _load(args.config, environ={**os.environ, **overrides})
        configure_logging(config.logging.level, config.logging.format)
        log.info("sandbox chain running", extra={
            "rpc_url": server.url, "payer_keypair": str(files.keypairs["payer"])})
        host, port = split_address(config.server.address)
        host, port = args.host or host, args.port or port
        await _serve(config, host, port, announce=banner(
            config, host, port, rpc_url=server.url, payer=files.keypairs["payer"]))


async def _migrate(config: Config) -> str:
    from cedros_pay.bootstrap import open_configured_store

    store = await open_configured_store(config)  # opening runs the migrations
    await store.close()
    return store.backend


def multi_process_problems(config: Config, workers: int) -> list[str]:
    """Why `config` cannot be served by `workers` processes: state that would be per process.

    Replay protection and webhook claims are database rows (primary-key inserts, leases),
    so they are shared already; rate limits and idempotency live in Redis or per process."""
    if workers <= 1:
        return []
    problems = []
    stores = {"storage.backend": config.storage.backend,
              "callbacks.backend": config.callbacks.backend}
    if config.subscriptions.enabled:
        stores["subscriptions.backend"] = config.subscriptions.backend
    memory = ", ".join(key for key, backend in stores.items() if backend == "memory")
    if memory:
        problems.append(f"--workers {workers} needs a database the processes share, "
                        f"not memory ({memory})")
    rl = config.rate_limit
    limited = any(rule.enabled for rule in (rl.global_, rl.per_wallet, rl.per_ip))
    shared = {"rate_limit": limited and rl.backend != "redis",
              "idempotency": config.idempotency.enabled
              and config.idempotency.backend != "redis"}
    local = " and ".join(name for name, per_process in shared.items() if per_process)
    if local:
        problems.append(f"--workers {workers} needs Redis for {local} (set redis.url or "
                        f"CEDROS_REDIS_URL): in process memory they would not be shared")
    return problems


def worker_config(config: Config, index: int) -> Config:
    """The configuration of worker process `index` of `serve --workers N`.

    Every process runs webhook delivery (rows claimed with leases), cleanup (deletes of
    expired rows, idempotent) and wallet health (each process picks fee payers from its
    own view). Archival (copy, then delete: two at once collide on the archive's keys)
    and the low-balance monitor (each process would alert) run in worker 0 only."""
    if index == 0:
        return config
    storage = config.storage.model_copy(
        update={"archival": config.storage.archival.model_copy(update={"enabled": False})})
    monitoring = config.monitoring.model_copy(update={"low_balance_alert_url": ""})
    return config.model_copy(update={"storage": storage, "monitoring": monitoring})


def worker_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A socket of its own for each worker, all on one port (SO_REUSEPORT).

    With one shared listening socket the kernel hands a new connection to whichever worker
    is blocked in accept, and a busy benchmark split 32 keep-alive connections 23/9 or
    29/3; with a socket per worker it spreads them by the connection's address instead.
    The parent binds one without listening, to hold (or pick) the port for the workers.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    return sock


def serve_workers(config: Config, host: str, port: int, workers: int) -> int:
    """`serve --workers N`: pre-fork N server processes, each listening on the port.

    The parent only supervises: SIGTERM/SIGINT go to every worker; when one worker ends
    on its own the others are stopped too and the exit code says so (the process manager
    restarts the whole service, never a half of it)."""
    asyncio.run(_migrate(config))  # once, before the workers would race to do it
    held = worker_socket(host, port, listen=False)
    port = held.getsockname()[1]
    children: dict[int, int] = {}
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # Before forking, so no signal finds the parent unprepared; each worker puts the
    # defaults back until its event loop takes the signals over.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own event loop, never returns
            # Its own process group: a terminal's Ctrl-C reaches the parent alone, which
            # passes it on once (a second signal would mean "stop waiting for requests").
            os.setpgid(0, 0)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = 1
            try:
                announce = banner(config, host, port) + f"\n  workers       {workers}"
                held.close()
                sock = worker_socket(host, port)
                run_server(_serve(worker_config(config, index), host, port, sock=sock,
                                  announce=announce if index == 0 else None))
                code = 0
            except KeyboardInterrupt:
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:
                print(f"error: worker {index}: {exc}", file=sys.stderr)
            finally:
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index = children.pop(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code != 0 or not stopping:
            code = code or 1
            if not stopping:
                log.error("worker process ended; stopping the others",
                          extra={"worker": index, "exit_code": exit_code})
                stop(signal.SIGTERM, None)
    held.close()
    return code


def _keygen() -> dict[str, str]:
    import base58
    from solders.keypair import Keypair

    kp = Keypair()
    return {"publicKey": str(kp.pubkey()), "secretKey": base58.b58encode(bytes(kp)).decode()}


def run_server(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop when it is installed (uvicorn's own choice, which a plain
    `asyncio.run` would bypass), else on the standard loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cedros-pay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print version and exit")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", "-c", help="YAML configuration file")
    serve.add_argument("--host", help="override server.address's host")
    serve.add_argument("--port", type=int, help="override server.address's port")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (default %(default)s; more "
                            "than 1 needs a database and Redis that they share)")
    serve.add_argument("--sandbox", action="store_true",
                       help="run a local Solana chain in-process and pay on it (demo)")
    serve.add_argument("--sandbox-dir", type=Path, default=Path("data/sandbox"),
                       help="sandbox keys and config (default %(default)s)")
    serve.add_argument("--sandbox-port", type=int, default=8899,
                       help="sandbox RPC/WebSocket port (default %(default)s)")
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config", "-c", help="YAML configuration file")
    sub.add_parser("sandbox", help="run a local Solana chain (devnet look-alike) for demos",
                   add_help=False)
    sub.add_parser("pay", help="pay an x402 resource as an agent would", add_help=False)
    sub.add_parser("keygen", help="print a new Solana keypair (base58) as JSON")
    sub.add_parser("version", help="print version and build time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["sandbox"]:  # its own flags; see `cedros-pay sandbox --help`
        from cedros_pay.sandbox.cli import main as sandbox_main

        return sandbox_main(raw[1:])
    if raw[:1] == ["pay"]:
        from cedros_pay.sandbox.payer import main as pay_main

        return pay_main(raw[1:])
    args = build_parser().parse_args(raw)
    if args.version or args.command == "version":
        info = version_info()
        print(f"cedros-pay {info['version']} (built {info['buildTime']})")
        return 0
    if args.command == "keygen":
        print(json.dumps(_keygen()))
        return 0
    if args.command not in ("serve", "migrate"):
        build_parser().print_help()
        return 2
    if args.command == "serve" and args.sandbox and args.workers != 1:
        print("config error: --sandbox runs its chain inside the one server process; "
              "drop --workers", file=sys.stderr)
        return 1
    if args.command == "serve" and args.sandbox:
        try:
            run_server(_serve_on_sandbox(args))
        except KeyboardInterrupt:
            return 130
        except OSError as exc:  # e.g. the sandbox port is taken
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    config = _load(args.config, validate=args.command == "serve")
    if args.command == "serve":
        problems = multi_process_problems(config, args.workers)
        if args.workers < 1:
            problems.append("--workers must be at least 1")
        for problem in problems:
            print(f"config error: {problem}", file=sys.stderr)
        if problems:
            return 1
    configure_logging(config.logging.level, config.logging.format)
    try:
        if args.command == "migrate":
            backend = asyncio.run(_migrate(config))
            log.info("migrations applied", extra={"storage_backend": backend})
            return 0
        host, port = split_address(config.server.address)
        host, port = args.host or host, args.port or port
        if args.workers > 1:
            return serve_workers(config, host, port, args.workers)
        run_server(_serve(config, host, port, announce=banner(config, host, port)))
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # start-up failure: one clear line, details in the log
        log.debug("start-up failed", exc_info=exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

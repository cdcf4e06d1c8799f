"""`cedros-pay sandbox`: a local devnet look-alike in the foreground, for demos and `make run`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.chain import LAMPORTS_PER_SOL
from cedros_pay.sandbox.network import (
    USDC_DECIMALS,
    DevnetSandbox,
    SandboxConfigFiles,
    build_devnet_sandbox,
    write_cedros_config,
)
from cedros_pay.sandbox.server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cedros-pay sandbox",
        description="Run a local Solana chain that passes for devnet (LiteSVM behind JSON-RPC "
                    "and WebSocket), with funded wallets and a Cedros config pointing at it.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8899,
                        help="HTTP and WebSocket port, 0 for any free one (default %(default)s)")
    parser.add_argument("--state-dir", type=Path, default=Path("data/sandbox"),
                        help="keeps the wallet keys across restarts (default %(default)s)")
    parser.add_argument("--config-dir", type=Path, default=None,
                        help="where to write the config, env file and keypairs "
                             "(default: the state dir)")
    parser.add_argument("--payer-usdc", type=int, default=1000,
                        help="whole USDC minted to the payer wallet (default %(default)s)")
    parser.add_argument("--token-2022", action="store_true",
                        help="make the USDC mint a Token-2022 mint")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    devnet = build_devnet_sandbox(
        state_dir=args.state_dir, payer_usdc=args.payer_usdc * 10**USDC_DECIMALS,
        token_program=spl.TOKEN_2022_PROGRAM_ID if args.token_2022 else spl.TOKEN_PROGRAM_ID)
    server = SandboxServer(devnet.chain, host=args.host, port=args.port,
                           log_level=args.log_level)
    try:
        await server.start()
    except OSError as exc:
        print(f"cedros-pay sandbox: {exc}", file=sys.stderr)
        return 1
    files = write_cedros_config(devnet, args.config_dir or args.state_dir, rpc_url=server.url,
                                ws_url=server.ws_url)
    print(_banner(devnet, server, files), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    closed = asyncio.ensure_future(server.wait_closed())
    await asyncio.wait([stopped, closed], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    await server.stop()
    print("sandbox stopped", flush=True)
    return 0


def _banner(devnet: DevnetSandbox, server: SandboxServer, files: SandboxConfigFiles) -> str:
    w = devnet.wallets
    chain = devnet.chain
    usdc = chain.token_balance(w.payer.pubkey(), devnet.usdc_mint) / 10**devnet.decimals
    sol = chain.balance(w.payer.pubkey()) / LAMPORTS_PER_SOL
    return "\n".join([
        "Cedros sandbox chain (presents itself as devnet)",
        f"  RPC         {server.url}",
        f"  WebSocket   {server.ws_url}",
        f"  genesis     {chain.genesis_hash}",
        f"  USDC mint   {devnet.usdc_mint} ({devnet.decimals} decimals)",
        f"  merchant    {w.merchant.pubkey()}  (x402.payment_address)",
        f"  server      {w.server.pubkey()}  (fee payer, X402_SERVER_WALLET_1)",
        f"  payer       {w.payer.pubkey()}  ({usdc:g} USDC, {sol:g} SOL)",
        "Wrote",
        f"  config      {files.config}",
        f"  env         {files.env}",
        *(f"  {role:<11} {path}" for role, path in files.keypairs.items()),
        "Point Cedros at it:",
        f"  set -a; . {files.env}; set +a; cedros-pay serve --config configs/demo.yaml",
        "Ctrl-C stops the sandbox.",
    ])

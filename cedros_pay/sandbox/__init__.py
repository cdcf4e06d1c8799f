"""A local Solana network for tests, demos and `make run`: LiteSVM behind real JSON-RPC.

    chain.py       SandboxChain: LiteSVM plus blocks, a 150-block blockhash window, wall-clock
                   time, signature verification and transaction history; funding helpers
    rpc.py         create_rpc_app(chain): JSON-RPC over HTTP POST and WebSocket at "/"
    server.py      SandboxServer: `async with SandboxServer(chain) as url` or start_in_thread()
    network.py     build_devnet_sandbox(), write_cedros_config(): a funded devnet look-alike
    testing.py     running_devnet_sandbox(), usdc_transfer(), RawRpc for tests
    cli.py         `cedros-pay sandbox` / `python -m cedros_pay.sandbox`

Importing this package imports nothing else, so the server's runtime pays for none of it.
"""

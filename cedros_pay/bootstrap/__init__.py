"""The composition root: the only package that knows every concrete class.

    infra.py     hooks, metrics, breakers, middleware state, the middleware chain
    solana.py    one RPC client per URL, server wallets, gasless, tx queue, verifier
    services.py  the store, the resolvers and the values adapters render
    workers.py   the background workers, one list
    app.py       the ASGI app: assembled at once, opened on start, closed LIFO
"""

from cedros_pay.bootstrap.app import CedrosApp, create_app
from cedros_pay.bootstrap.services import build_services, open_configured_store, version

__all__ = ["CedrosApp", "build_services", "create_app", "open_configured_store", "version"]

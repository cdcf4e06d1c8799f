"""The composition root builds the Solana side once: every RPC caller, the verifier
included, goes out through the app's one httpx client and the one `solana_rpc` breaker."""

from __future__ import annotations

import json

import httpx
import pytest
from solders.keypair import Keypair

from cedros_pay.bootstrap.infra import build_infra
from cedros_pay.bootstrap.solana import open_solana
from cedros_pay.config import Config
from cedros_pay.core.errors import CedrosError
from cedros_pay.integrations.solana.rpc_health import RpcHealthProbe
from cedros_pay.integrations.solana.verifier import SolanaVerifier
from cedros_pay.lifecycle import Lifecycle


async def test_every_solana_caller_shares_the_apps_client_and_breaker() -> None:
    sent: list[str] = []

    def overloaded(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["method"])
        return httpx.Response(503)

    wallet = Keypair()
    config = Config(x402={"rpc_url": "http://rpc.test", "gasless_enabled": True,
                          "server_wallets": [bytes(wallet)]})
    infra = build_infra(config)
    lifecycle = Lifecycle()
    async with httpx.AsyncClient(transport=httpx.MockTransport(overloaded)) as http:
        solana = open_solana(config.x402, http=http, breaker=infra.breakers["solana_rpc"],
                             lifecycle=lifecycle)
        assert isinstance(solana.verifier, SolanaVerifier)
        assert solana.rpc is not None
        assert solana.wallets is not None and solana.gasless is not None
        assert solana.fee_payers is solana.wallets
        # The verifier's probe reaches the node through the shared client...
        assert await solana.verifier.health() is False
        assert sent == ["getHealth"]
        # ...and its failure counts on the same breaker as the app's RPC client's.
        with pytest.raises(CedrosError):
            await solana.rpc.call("getSlot", [])
        assert infra.breakers.snapshot()["solana_rpc"]["state"] == "open"
        before = len(sent)
        assert await solana.verifier.health() is False
        with pytest.raises(CedrosError):
            await solana.wallets.balance(str(wallet.pubkey()))
        assert len(sent) == before  # the open breaker answered; nothing was sent
        await lifecycle.close()



async def test_one_rpc_client_serves_the_verifier_and_the_health_probe() -> None:
    sent: list[str] = []
    healthy = True

    def node(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["method"])
        if not healthy:
            return httpx.Response(503)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": "ok"})

    config = Config(x402={"rpc_url": "http://rpc.test", "tx_queue_max_in_flight": 2})
    infra = build_infra(config)
    lifecycle = Lifecycle()
    async with httpx.AsyncClient(transport=httpx.MockTransport(node)) as http:
        solana = open_solana(config.x402, http=http, breaker=infra.breakers["solana_rpc"],
                             lifecycle=lifecycle)
        rpc = solana.rpc
        assert rpc is not None and isinstance(solana.verifier, SolanaVerifier)
        assert solana.verifier.rpc is rpc  # one client object for the URL, queue included
        probe = solana.health_probe
        assert probe is not None
        assert await probe() is True  # the shared client asked the node
        assert sent == ["getHealth"]
        healthy = False
        assert await RpcHealthProbe(rpc.health, ttl=0)() is False  # down: degraded
        # The probe's getHealth goes through the shared breaker: once the app's calls
        # open it, the probe answers unhealthy without sending anything.
        with pytest.raises(CedrosError):
            await rpc.call("getSlot", [])
        assert infra.breakers.snapshot()["solana_rpc"]["state"] == "open"
        before = len(sent)
        wired = open_solana(config.x402, http=http, breaker=infra.breakers["solana_rpc"],
                            lifecycle=lifecycle).health_probe
        assert wired is not None and await wired() is False
        # The first probe cached "healthy" a moment ago; an open breaker overrides it.
        assert await probe() is False
        assert len(sent) == before
        await lifecycle.close()

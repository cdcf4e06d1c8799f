"""Everything that talks to Solana, built once per start from `x402.*`.

One `SolanaRpc` for the configured URL, on its keep-alive transport (or an injected httpx
client) and behind the `solana_rpc` breaker, serves the server wallets' balances, the
gasless builder, token account creation, the exact scheme's mint look-ups, the verifier's
submission and confirmation calls and the health probe's `getHealth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from cedros_pay.config.models import X402Config
from cedros_pay.integrations.circuit_breaker import CircuitBreaker, State
from cedros_pay.integrations.solana.cosigner import WalletCosigner
from cedros_pay.integrations.solana.gasless import GaslessBuilder, TokenAccountCreator
from cedros_pay.integrations.solana.mints import MintPrograms
from cedros_pay.integrations.solana.rpc import SolanaRpc
from cedros_pay.integrations.solana.rpc_health import RpcHealthProbe
from cedros_pay.integrations.solana.tx_queue import TxQueue
from cedros_pay.integrations.solana.verifier import SolanaVerifier
from cedros_pay.integrations.solana.wallets import WalletPool, keypairs_from_secrets, rpc_balance
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.resolvers.payments import FeePayers, MintProgramSource, PaymentVerifier
from cedros_pay.x402 import exact

# The exact scheme's compute-unit ceiling when the configured limit is lower: official
# x402 clients choose their own budget, up to the scheme's price ceiling.
EXACT_COMPUTE_UNIT_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Solana:
    verifier: PaymentVerifier
    rpc: SolanaRpc | None = None  # None without x402.rpc_url
    health_probe: RpcHealthProbe | None = None
    wallets: WalletPool | None = None  # X402_SERVER_WALLET_N, health-checked
    gasless: GaslessBuilder | None = None
    fee_payers: FeePayers | None = None  # offered as fee payer to official x402 clients
    mint_programs: MintProgramSource | None = None


def open_solana(x: X402Config, *, breaker: CircuitBreaker, lifecycle: Lifecycle,
                http: httpx.AsyncClient | None = None, verifier: PaymentVerifier | None = None,
                fee_payers: FeePayers | None = None) -> Solana:
    """The Solana side. JSON-RPC goes over `http` when given, else over the RPC client's
    own keep-alive transport; `verifier` and `fee_payers` replace the configured ones
    (tests)."""
    rpc = None
    if x.rpc_url:
        rpc = SolanaRpc(x.rpc_url, http=http, breaker=breaker)
        lifecycle.push("solana_rpc", rpc.aclose)
    wallets = server_wallets(x, rpc) if rpc is not None and x.server_wallets else None
    gasless = None
    if wallets is not None and rpc is not None and x.gasless_enabled:
        gasless = GaslessBuilder(rpc, wallets, compute_unit_limit=x.compute_unit_limit,
                                 compute_unit_price=x.compute_unit_price_micro_lamports,
                                 commitment=x.commitment)
    if verifier is None:
        verifier = open_verifier(x, http=http, breaker=breaker, lifecycle=lifecycle, rpc=rpc,
                                 wallets=wallets)
    if fee_payers is None and wallets is not None and x.gasless_enabled:
        fee_payers = wallets
    return Solana(
        verifier=verifier, rpc=rpc,
        health_probe=RpcHealthProbe(rpc.health, refusing=lambda: breaker.state is State.OPEN)
        if rpc is not None else None,
        wallets=wallets, gasless=gasless, fee_payers=fee_payers,
        # exact payments pin the mint's owner, read from chain
        mint_programs=MintPrograms(rpc.call) if rpc is not None else None)


def server_wallets(x: X402Config, rpc: SolanaRpc) -> WalletPool:
    async def balance(address: str) -> int:
        return await rpc_balance(rpc.call, address)

    return WalletPool(keypairs_from_secrets(x.server_wallets), balance)


def open_verifier(x: X402Config, *, http: httpx.AsyncClient | None, breaker: CircuitBreaker,
                  lifecycle: Lifecycle, rpc: SolanaRpc | None,
                  wallets: WalletPool | None) -> SolanaVerifier:
    queue = tx_queue(x)
    verifier = SolanaVerifier(
        x.rpc_url, x.ws_url or None, network=x.network, commitment=x.commitment,
        skip_preflight=x.skip_preflight, rpc=rpc, http=http, breaker=breaker,
        cosigner=WalletCosigner(
            wallets, max_compute_unit_limit=max(x.compute_unit_limit, EXACT_COMPUTE_UNIT_LIMIT),
            max_compute_unit_price=max(x.compute_unit_price_micro_lamports,
                                       exact.MAX_COMPUTE_UNIT_PRICE))
        if wallets is not None and x.gasless_enabled else None,
        tx_queue=queue,
        account_creator=TokenAccountCreator(rpc, wallets, x.payment_address,
                                            commitment=x.commitment)
        if rpc is not None and wallets is not None and x.auto_create_token_account else None)
    lifecycle.push("solana_verifier", verifier.aclose)
    if queue is not None:  # drained before the verifier closes
        lifecycle.push("tx_queue", queue.shutdown)
    return verifier


def tx_queue(x: X402Config) -> TxQueue | None:
    """spec 22 transaction queue, when either limit is configured."""
    spacing = x.tx_queue_min_time_between.total_seconds()
    if spacing <= 0 and x.tx_queue_max_in_flight <= 0:
        return None
    queue = TxQueue(min_time_between=spacing, max_in_flight=x.tx_queue_max_in_flight)
    queue.start()
    return queue

"""Helpers for tests that pay through the sandbox (ours and other modules' e2e tests).

No pytest here: wrap these in fixtures where needed, e.g.

    @pytest.fixture
    async def sandbox() -> AsyncIterator[RunningSandbox]:
        async with running_devnet_sandbox() as running:
            yield running
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.chain import SandboxChain
from cedros_pay.sandbox.network import DevnetSandbox, SandboxWallets, build_devnet_sandbox
from cedros_pay.sandbox.server import SandboxServer


@dataclass(frozen=True)
class RunningSandbox:
    devnet: DevnetSandbox
    server: SandboxServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def chain(self) -> SandboxChain:
        return self.devnet.chain

    @property
    def wallets(self) -> SandboxWallets:
        return self.devnet.wallets


@asynccontextmanager
async def running_devnet_sandbox(**build: Any) -> AsyncIterator[RunningSandbox]:
    """A funded devnet look-alike served on a free 127.0.0.1 port for the block's duration.

    `build` goes to build_devnet_sandbox (payer_usdc=..., token_program=..., ...).
    """
    devnet = build_devnet_sandbox(**build)
    server = SandboxServer(devnet.chain)
    async with server:
        yield RunningSandbox(devnet, server)


class RawRpc:
    """Plain JSON-RPC over HTTP, for asserting exact wire shapes and calling sandbox_* methods.

    Give it a shared httpx client: building one costs ~30 ms (it loads the CA bundle).
    """

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self.url = url
        self.http = http

    async def post(self, body: Any) -> httpx.Response:
        return await self.http.post(self.url, json=body)

    async def call(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        """The whole reply document (`result` or `error`) of one request."""
        reply = await self.post({"jsonrpc": "2.0", "id": 1, "method": method,
                                 "params": params or []})
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body


def usdc_transfer(
    devnet: DevnetSandbox,
    amount: int,
    *,
    blockhash: Hash,
    payer: Keypair | None = None,
    recipient_owner: Pubkey | None = None,
    memo: str | None = None,
    fee_payer: Keypair | Pubkey | None = None,
    compute_unit_limit: int | None = None,
    compute_unit_price: int | None = None,
    legacy: bool = False,
) -> VersionedTransaction:
    """A TransferChecked of `amount` atomic USDC to the merchant (or `recipient_owner`),
    shaped like an x402 client's: optional compute budget, the transfer, optional memo.

    A `fee_payer` given as a bare Pubkey gets an empty signature slot for a server to fill
    in (the gasless flow); a Keypair signs.
    """
    payer = payer or devnet.wallets.payer
    owner = recipient_owner or devnet.wallets.merchant.pubkey()
    program = devnet.chain.get_account(devnet.usdc_mint)
    token_program = program.owner if program else spl.TOKEN_PROGRAM_ID
    source = spl.associated_token_address(payer.pubkey(), devnet.usdc_mint, token_program)
    destination = spl.associated_token_address(owner, devnet.usdc_mint, token_program)
    instructions: list[Instruction] = []
    if compute_unit_limit is not None:
        instructions.append(set_compute_unit_limit(compute_unit_limit))
    if compute_unit_price is not None:
        instructions.append(set_compute_unit_price(compute_unit_price))
    instructions.append(spl.transfer_checked(source, devnet.usdc_mint, destination,
                                             payer.pubkey(), amount, devnet.decimals,
                                             token_program))
    if memo is not None:
        instructions.append(spl.memo(memo))
    fee_key = fee_payer.pubkey() if isinstance(fee_payer, Keypair) else fee_payer
    fee_key = fee_key or payer.pubkey()
    message: Message | MessageV0 = (
        Message.new_with_blockhash(instructions, fee_key, blockhash) if legacy
        else MessageV0.try_compile(fee_key, instructions, [], blockhash))
    signers: list[Keypair | NullSigner] = [payer]
    if isinstance(fee_payer, Keypair) and fee_payer.pubkey() != payer.pubkey():
        signers.insert(0, fee_payer)
    elif isinstance(fee_payer, Pubkey) and fee_payer != payer.pubkey():
        signers.insert(0, NullSigner(fee_payer))
    return VersionedTransaction(message, signers)

"""The sandbox's JSON-RPC surface, through solana-py's AsyncClient and raw HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.models import TokenAccountOpts
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from cedros_pay.sandbox.network import DEVNET_GENESIS_HASH, DEVNET_USDC_MINT
from cedros_pay.sandbox.testing import RawRpc, RunningSandbox, running_devnet_sandbox

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as running:
        yield running


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(sandbox.url) as rpc:
        yield rpc


@pytest.fixture
async def raw(sandbox: RunningSandbox) -> AsyncIterator[RawRpc]:
    async with httpx.AsyncClient() as http:
        yield RawRpc(sandbox.url, http)


async def test_sandbox_presents_itself_as_devnet(raw: RawRpc, client: AsyncClient) -> None:
    assert (await client.get_genesis_hash()).value == DEVNET_GENESIS_HASH
    version = (await client.get_version()).value
    assert version.solana_core.startswith("2.")
    latest = await client.get_latest_blockhash()
    height = (await client.get_block_height()).value
    assert latest.value.last_valid_block_height == height + 150
    assert latest.context.slot == (await client.get_slot()).value
    valid = await raw.call("isBlockhashValid", [str(latest.value.blockhash)])
    assert valid["result"]["value"] is True
    epoch = (await client.get_epoch_info()).value
    assert epoch.absolute_slot == latest.context.slot and epoch.block_height == height
    assert (await raw.call("getHealth"))["result"] == "ok"


async def test_clock_sysvar_follows_wall_time(client: AsyncClient) -> None:
    account = (await client.get_account_info(CLOCK_SYSVAR)).value
    assert account is not None
    unix_timestamp = int.from_bytes(account.data[32:40], "little", signed=True)
    assert abs(unix_timestamp - time.time()) < 5


async def test_batch_answers_each_request_in_order(raw: RawRpc) -> None:
    reply = await raw.post([
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": "two", "method": "getGenesisHash"},
        {"jsonrpc": "2.0", "id": 3, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "method": "getSlot"},  # a notification: no reply
    ])
    body = reply.json()
    assert [item["id"] for item in body] == [1, "two", 3]
    assert isinstance(body[0]["result"], int)
    assert body[1]["result"] == str(DEVNET_GENESIS_HASH)
    assert body[2]["error"] == {"code": -32601, "message": "Method not found"}


async def test_protocol_errors_use_jsonrpc_codes(raw: RawRpc) -> None:
    assert (await raw.call("getBogus"))["error"]["code"] == -32601
    parse = (await raw.http.post(raw.url, content=b"{not json")).json()
    assert parse == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                     "id": None}
    invalid = (await raw.post({"id": 4, "method": "getSlot"})).json()
    assert invalid["error"]["code"] == -32600 and invalid["id"] == 4
    assert (await raw.post([])).json()["error"]["code"] == -32600
    bad_key = await raw.call("getBalance", ["not-a-key"])
    assert bad_key["error"]["code"] == -32602
    assert bad_key["error"]["message"].startswith("Invalid param")
    missing = await raw.call("getBalance", [])
    assert missing["error"]["code"] == -32602


async def test_fault_switch_answers_429_then_recovers(
        raw: RawRpc, sandbox: RunningSandbox, client: AsyncClient) -> None:
    sandbox.server.faults.fail_next(2)
    first = await raw.post({"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert first.json()["error"]["code"] == 429
    with pytest.raises(SolanaRpcException):
        await client.get_slot()  # solana-py surfaces the 429 (it does not retry)
    assert (await client.get_slot()).value > 0
    # The same switch over RPC, for a sandbox running in another process.
    assert (await raw.call("sandbox_failNext", [1, 503]))["result"] == 1
    assert (await raw.post({"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
            ).status_code == 503
    assert (await client.get_slot()).value > 0


async def test_accounts_balances_and_token_accounts(
        raw: RawRpc, sandbox: RunningSandbox, client: AsyncClient) -> None:
    devnet = sandbox.devnet
    payer = devnet.wallets.payer.pubkey()
    assert (await client.get_balance(payer)).value == 5_000_000_000
    balance = (await client.get_token_account_balance(devnet.payer_usdc)).value
    assert (balance.amount, balance.decimals, balance.ui_amount_string) == ("1000000000", 6, "1000")

    plain = (await client.get_account_info(devnet.payer_usdc)).value
    assert plain is not None and len(plain.data) == 165
    assert str(plain.owner) == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    parsed = (await client.get_account_info_json_parsed(devnet.payer_usdc)).value
    assert parsed is not None
    info = parsed.data.parsed["info"]  # type: ignore[union-attr]
    assert info["mint"] == str(DEVNET_USDC_MINT) and info["owner"] == str(payer)
    assert info["tokenAmount"]["amount"] == "1000000000"
    mint = (await client.get_account_info_json_parsed(DEVNET_USDC_MINT)).value
    assert mint is not None
    assert mint.data.parsed["info"]["decimals"] == 6  # type: ignore[union-attr]

    many = (await client.get_multiple_accounts([payer, Keypair().pubkey()])).value
    assert many[0] is not None and many[1] is None
    assert (await client.get_account_info(Keypair().pubkey())).value is None
    rent = (await client.get_minimum_balance_for_rent_exemption(165)).value
    assert rent == devnet.chain.rent_exempt_minimum(165) > 0

    owned = (await client.get_token_accounts_by_owner(payer, TokenAccountOpts(
        mint=DEVNET_USDC_MINT))).value
    assert [a.pubkey for a in owned] == [devnet.payer_usdc]
    not_token = await raw.call("getTokenAccountBalance", [str(payer)])
    assert not_token["error"] == {"code": -32602, "message": "Invalid param: not a Token account"}


async def test_request_airdrop_lands_as_a_transaction(client: AsyncClient) -> None:
    wallet = Keypair().pubkey()
    signature = (await client.request_airdrop(wallet, 2_000_000_000)).value
    await client.confirm_transaction(signature, sleep_seconds=0.01)
    assert (await client.get_balance(wallet)).value == 2_000_000_000


async def test_fee_for_message_counts_signatures_and_priority(
        raw: RawRpc, sandbox: RunningSandbox, client: AsyncClient) -> None:
    payer = sandbox.wallets.payer.pubkey()
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ixs = [set_compute_unit_limit(200_000), set_compute_unit_price(10_000),
           transfer(TransferParams(from_pubkey=payer, to_pubkey=Keypair().pubkey(),
                                   lamports=1_000_000))]
    message = Message.new_with_blockhash(ixs, payer, blockhash)
    assert (await client.get_fee_for_message(message)).value == 5_000 + 2_000
    stale = Message.new_with_blockhash(ixs, payer, Hash.new_unique())
    reply = await raw.call("getFeeForMessage",
                        [base64.b64encode(to_bytes_versioned(stale)).decode()])
    assert reply["result"]["value"] is None

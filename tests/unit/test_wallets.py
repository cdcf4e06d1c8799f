"""Server wallet pool: health thresholds, round-robin selection, the critical callback,
and the co-signer's refusals (spec 22 "Wallet Health Checker", "Security Considerations")."""

from __future__ import annotations

import pytest
from solders.compute_budget import set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.cosigner import WalletCosigner
from cedros_pay.integrations.solana.transaction import inspect
from cedros_pay.integrations.solana.wallets import (
    LAMPORTS_PER_SOL,
    CriticalCallback,
    WalletHealth,
    WalletPool,
    keypairs_from_secrets,
    truncate,
)
from cedros_pay.sandbox import spl
from cedros_pay.x402.svm import LIGHTHOUSE_PROGRAM_ID


def pool_with(balances: dict[str, int], keys: list[Keypair],
              on_critical: CriticalCallback | None = None) -> WalletPool:
    async def balance(address: str) -> int:
        value = balances[address]
        if value < 0:
            raise ConnectionError("rpc down")
        return value

    return WalletPool(keys, balance, on_critical=on_critical)


def sol(amount: float) -> int:
    return int(amount * LAMPORTS_PER_SOL)


def test_truncate_keeps_head_and_tail() -> None:
    assert truncate("7cVfgArCheMR6Cs4t6vz5rfnqd56vZq4ndaBrY5xkxXy") == "7cVf...xXy"


def test_keypairs_from_secrets_round_trips() -> None:
    key = Keypair()
    assert keypairs_from_secrets([bytes(key)]) == (key,)
    tampered = bytes(key)[:32] + bytes(Keypair().pubkey())
    with pytest.raises(ValueError):
        keypairs_from_secrets([tampered])


async def test_wallets_start_critical_then_follow_thresholds() -> None:
    a, b, c = Keypair(), Keypair(), Keypair()
    balances = {str(a.pubkey()): sol(0.005), str(b.pubkey()): sol(0.003),
                str(c.pubkey()): sol(0.001)}
    pool = pool_with(balances, [a, b, c])
    assert {h.status for h in pool.health().values()} == {"critical"}
    await pool.check_all()
    statuses = {addr: h.status for addr, h in pool.health().items()}
    assert statuses == {str(a.pubkey()): "healthy", str(b.pubkey()): "low",
                        str(c.pubkey()): "critical"}
    assert pool.summary() == (1, 2, 1)


async def test_round_robin_skips_unhealthy_wallets() -> None:
    a, b, c = Keypair(), Keypair(), Keypair()
    balances = {str(a.pubkey()): sol(1), str(b.pubkey()): sol(0.002), str(c.pubkey()): sol(1)}
    pool = pool_with(balances, [a, b, c])
    await pool.check_all()
    picks = [pool.pick() for _ in range(4)]
    assert picks == [str(a.pubkey()), str(c.pubkey()), str(a.pubkey()), str(c.pubkey())]


async def test_round_robin_alternates_two_healthy_wallets() -> None:
    a, b = Keypair(), Keypair()
    pool = pool_with({str(a.pubkey()): sol(1), str(b.pubkey()): sol(1)}, [a, b])
    await pool.check_all()
    assert [pool.pick() for _ in range(3)] == [str(a.pubkey()), str(b.pubkey()),
                                               str(a.pubkey())]


async def test_all_unhealthy_still_rotates() -> None:
    a, b = Keypair(), Keypair()
    pool = pool_with({str(a.pubkey()): 0, str(b.pubkey()): 0}, [a, b])
    await pool.check_all()
    assert [pool.pick() for _ in range(3)] == [str(a.pubkey()), str(b.pubkey()),
                                               str(a.pubkey())]
    assert pool_with({}, []).pick() is None


async def test_critical_callback_fires_on_transition_only() -> None:
    a = Keypair()
    address = str(a.pubkey())
    balances = {address: sol(1)}
    seen: list[WalletHealth] = []

    async def alert(health: WalletHealth) -> None:
        seen.append(health)

    pool = pool_with(balances, [a], on_critical=alert)
    await pool.check_all()
    assert seen == []
    balances[address] = sol(0.0005)
    await pool.check_all()
    await pool.check_all()  # still critical: no second alert
    assert [h.balance_sol for h in seen] == [0.0005]
    balances[address] = sol(1)
    await pool.check_all()
    balances[address] = 0
    await pool.check_all()
    assert len(seen) == 2


async def test_failed_balance_read_keeps_state_and_records_error() -> None:
    a = Keypair()
    address = str(a.pubkey())
    balances = {address: sol(1)}
    pool = pool_with(balances, [a])
    await pool.check_all()
    balances[address] = -1
    await pool.check_all()
    health = pool.wallet_health(address)
    assert health is not None and health.healthy and health.last_error is not None


# --- the co-signer ----------------------------------------------------------------------

MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")


def gasless_tx(fee_payer: Pubkey, buyer: Keypair, *, authority: Pubkey | None = None,
               extra: list[Instruction] | None = None) -> VersionedTransaction:
    authority = authority or buyer.pubkey()
    merchant = Keypair().pubkey()
    ix = spl.transfer_checked(spl.associated_token_address(authority, MINT), MINT,
                              spl.associated_token_address(merchant, MINT), authority,
                              1_000, 6)
    message = MessageV0.try_compile(fee_payer, [ix, *(extra or [])], [], Hash.default())
    signers: list[Keypair | NullSigner] = [NullSigner(fee_payer)]
    if authority == buyer.pubkey():
        signers.append(buyer)
    return VersionedTransaction(message, signers)


def cosigner_for(server: Keypair) -> WalletCosigner:
    return WalletCosigner(pool_with({}, [server]), max_compute_unit_limit=200_000,
                          max_compute_unit_price=1)


def reason(err: CedrosError) -> str:
    assert err.details is not None
    return str(err.details["reason"])


async def test_cosigner_signs_a_clean_gasless_payment() -> None:
    server, buyer = Keypair(), Keypair()
    signed = await cosigner_for(server).cosign(gasless_tx(server.pubkey(), buyer))
    assert all(signed.verify_with_results())


async def test_cosigner_refuses_our_wallet_as_transfer_authority() -> None:
    server, buyer = Keypair(), Keypair()
    tx = gasless_tx(server.pubkey(), buyer, authority=server.pubkey())
    with pytest.raises(CedrosError) as caught:
        await cosigner_for(server).cosign(tx)
    assert caught.value.code is ErrorCode.INVALID_TRANSACTION
    assert reason(caught.value) == "fee_payer_misused"


async def test_cosigner_refuses_a_sol_payment_from_our_wallet() -> None:
    server, buyer = Keypair(), Keypair()
    drain = transfer(TransferParams(from_pubkey=server.pubkey(), to_pubkey=buyer.pubkey(),
                                    lamports=10**9))
    with pytest.raises(CedrosError) as caught:
        await cosigner_for(server).cosign(gasless_tx(server.pubkey(), buyer, extra=[drain]))
    assert reason(caught.value) == "fee_payer_misused"


async def test_cosigner_refuses_foreign_fee_payer_and_expensive_fees() -> None:
    server, buyer = Keypair(), Keypair()
    with pytest.raises(CedrosError) as caught:
        cosigner_for(server).check(gasless_tx(Keypair().pubkey(), buyer))
    assert reason(caught.value) == "fee_payer_not_server"
    pricey = gasless_tx(server.pubkey(), buyer, extra=[set_compute_unit_price(10**9)])
    with pytest.raises(CedrosError) as caught:
        cosigner_for(server).check(pricey)
    assert reason(caught.value) == "fee_too_high"
    other = Instruction(Keypair().pubkey(), b"x", [AccountMeta(buyer.pubkey(), True, False)])
    with pytest.raises(CedrosError) as caught:
        cosigner_for(server).check(gasless_tx(server.pubkey(), buyer, extra=[other]))
    assert reason(caught.value) == "unexpected_program"


async def test_cosigner_given_the_verifiers_facts_refuses_the_same_transactions() -> None:
    """The verifier passes its own inspection along; the rules that read it still hold."""
    server, buyer = Keypair(), Keypair()
    pricey = gasless_tx(server.pubkey(), buyer, extra=[set_compute_unit_price(10**9)])
    other = Instruction(Keypair().pubkey(), b"x", [AccountMeta(buyer.pubkey(), True, False)])
    unexpected = gasless_tx(server.pubkey(), buyer, extra=[other])
    for tx, expected in ((pricey, "fee_too_high"), (unexpected, "unexpected_program")):
        with pytest.raises(CedrosError) as caught:
            await cosigner_for(server).cosign(tx, inspect(tx))
        assert reason(caught.value) == expected
    fine = gasless_tx(server.pubkey(), buyer)
    assert all((await cosigner_for(server).cosign(fine, inspect(fine))).verify_with_results())


async def test_cosigner_accepts_wallet_lighthouse_assertions() -> None:
    server, buyer = Keypair(), Keypair()
    guard = Instruction(LIGHTHOUSE_PROGRAM_ID, b"\x00", [
        AccountMeta(buyer.pubkey(), False, False)])
    signed = await cosigner_for(server).cosign(gasless_tx(server.pubkey(), buyer, extra=[guard]))
    assert all(signed.verify_with_results())

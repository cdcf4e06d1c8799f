"""Gasless co-signing in the verifier: the facts it keeps after the fee payer signs are the
facts a full inspection of the co-signed transaction gives (randomised shapes), and a
cosigner that changes more than the fee payer's slot is judged afresh."""

from __future__ import annotations

import base64
import random

import pytest
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.cosigner import WalletCosigner
from cedros_pay.integrations.solana.transaction import TransferFacts, inspect
from cedros_pay.integrations.solana.verifier import Requirement, SolanaVerifier
from cedros_pay.integrations.solana.wallets import WalletPool
from cedros_pay.sandbox import spl
from cedros_pay.x402.schemas import PaymentPayload, SolanaPayload

MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
MERCHANT = Keypair().pubkey()


async def _no_balance(address: str) -> int:
    return 0


def gasless(server: Pubkey, buyer: Keypair, rng: random.Random) -> VersionedTransaction:
    ixs: list[Instruction] = []
    if rng.random() < 0.7:
        ixs += [set_compute_unit_limit(rng.randint(1_000, 200_000)),
                set_compute_unit_price(rng.randint(0, 1))]
    ixs.append(spl.transfer_checked(spl.associated_token_address(buyer.pubkey(), MINT), MINT,
                                    spl.associated_token_address(MERCHANT, MINT),
                                    buyer.pubkey(), rng.randint(10_000, 10**9), 6))
    for _ in range(rng.randint(0, 2)):
        ixs.append(spl.memo(f"memo-{rng.randint(0, 10**6)}"))
    blockhash = Hash(bytes(rng.randrange(256) for _ in range(32)))
    message = MessageV0.try_compile(server, ixs, [], blockhash)
    return VersionedTransaction(message, [NullSigner(server), buyer])


def payload(tx: VersionedTransaction) -> PaymentPayload:
    return PaymentPayload(0, "solana-spl-transfer", "devnet", SolanaPayload(
        transaction=base64.b64encode(bytes(tx)).decode()))


REQUIREMENT = Requirement(network="devnet", mints=(str(MINT),), decimals=6,
                          amount_atomic=10_000, recipient_owner=str(MERCHANT))


def verifier_with(cosigner: object) -> SolanaVerifier:
    return SolanaVerifier("http://127.0.0.1:9", network="devnet", use_websocket=False,
                          cosigner=cosigner)  # type: ignore[arg-type]


async def test_facts_after_cosigning_equal_a_full_inspection() -> None:
    server = Keypair()
    cosigner = WalletCosigner(WalletPool([server], _no_balance), max_compute_unit_limit=200_000,
                              max_compute_unit_price=1)
    verifier = verifier_with(cosigner)
    rng = random.Random(16)
    for _ in range(40):
        tx = gasless(server.pubkey(), Keypair(), rng)
        prepared = verifier.prepare(payload(tx), REQUIREMENT, tx)
        assert prepared.needs_cosign and prepared.facts.missing_signers
        signed, facts = await verifier._cosign(prepared.tx, prepared.facts, REQUIREMENT)
        assert facts == inspect(signed)
        assert facts.fully_signed and facts.signature == str(signed.signatures[0])


class Tampering:
    """Signs, then swaps the message for another one (a broken cosigner)."""

    def __init__(self, server: Keypair) -> None:
        self.server = server

    def holds(self, fee_payer: str) -> bool:
        return fee_payer == str(self.server.pubkey())

    async def cosign(self, tx: VersionedTransaction,
                     facts: TransferFacts | None = None) -> VersionedTransaction:
        other = gasless(self.server.pubkey(), Keypair(), random.Random(1))
        return VersionedTransaction(other.message, [self.server, NullSigner(
            other.message.account_keys[1])])


async def test_a_cosigner_that_changes_the_message_is_checked_again() -> None:
    server = Keypair()
    verifier = verifier_with(Tampering(server))
    tx = gasless(server.pubkey(), Keypair(), random.Random(2))
    prepared = verifier.prepare(payload(tx), REQUIREMENT, tx)
    with pytest.raises(CedrosError) as refused:
        await verifier._cosign(prepared.tx, prepared.facts, REQUIREMENT)
    # The swapped transaction's buyer never signed: the full check says so.
    assert refused.value.code is ErrorCode.INVALID_SIGNATURE

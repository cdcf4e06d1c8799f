"""The server's fee-payer signature for gasless payments (spec 22 "Security
Considerations", spec 07 "Signer Arrangement").

A gasless transaction arrives signed by the buyer with slot 0 (the fee payer) empty. Before
a server wallet signs it, this module makes sure the wallet's signature buys nothing but
the network fee of one payment:

- the fee payer is one of our wallets (else `invalid_transaction`, `fee_payer_not_server`);
- no instruction touches the fee payer's account: it is never the transfer authority, never
  the source of a SOL transfer, never an account of any program (`fee_payer_misused`);
- the compute budget is no larger than the one the server builds with, so a client cannot
  spend the wallet's SOL on priority fees (`fee_too_high`);
- no program beyond compute budget, token, memo, ATA, system and Lighthouse (the
  assertions wallets add to x402 exact payments) runs on our fee (`unexpected_program`).

The checks read the compiled message itself, not `TransferFacts`, because a misuse can sit
in any instruction, not only the transfer.
"""

from __future__ import annotations

from typing import NoReturn

from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.transaction import TransferFacts, inspect
from cedros_pay.integrations.solana.wallets import WalletPool, truncate
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.svm import LIGHTHOUSE_PROGRAM_ID

_LIGHTHOUSE = str(LIGHTHOUSE_PROGRAM_ID)


class WalletCosigner:
    """`verifier.Cosigner` over a `WalletPool`: checks the transaction, then signs slot 0."""

    def __init__(self, wallets: WalletPool, *, max_compute_unit_limit: int,
                 max_compute_unit_price: int) -> None:
        self._wallets = wallets
        self._max_limit = max_compute_unit_limit
        self._max_price = max_compute_unit_price

    def holds(self, fee_payer: str) -> bool:
        return self._wallets.holds(fee_payer)

    def check(self, tx: VersionedTransaction, facts: TransferFacts | None = None) -> str:
        """The fee payer's address if our wallet may sign `tx`; else refuse (module doc).
        `facts` is `inspect(tx)` when the caller has it (the verifier does)."""
        message = tx.message
        fee_payer = str(message.account_keys[0])
        if not self._wallets.holds(fee_payer):
            _refuse(Reason.FEE_PAYER_NOT_SERVER,
                    "the fee payer is not one of this server's wallets",
                    feePayer=truncate(fee_payer))
        for index, ix in enumerate(message.instructions):
            if ix.program_id_index == 0 or 0 in bytes(ix.accounts):
                _refuse(Reason.FEE_PAYER_MISUSED,
                        "the server's fee payer may only pay the fee; instruction "
                        f"{index} uses its account", instruction=index)
        if facts is None:
            facts = inspect(tx)
        others = [p for p in facts.other_programs if p != _LIGHTHOUSE]
        if others:
            _refuse(Reason.UNEXPECTED_PROGRAM,
                    "a gasless payment may only run compute budget, token and memo "
                    "instructions", programs=others)
        limit = facts.compute_unit_limit
        price = facts.compute_unit_price or 0
        if (limit is not None and limit > self._max_limit) or price > self._max_price:
            _refuse(Reason.FEE_TOO_HIGH,
                    "the transaction's compute budget exceeds what this server pays for",
                    maxComputeUnitLimit=self._max_limit,
                    maxComputeUnitPrice=self._max_price)
        return fee_payer

    async def cosign(self, tx: VersionedTransaction,
                     facts: TransferFacts | None = None) -> VersionedTransaction:
        """`tx` with our fee payer's signature in slot 0, after `check`."""
        fee_payer = self.check(tx, facts)
        signature = self._wallets.sign(fee_payer, to_bytes_versioned(tx.message))
        return VersionedTransaction.populate(tx.message, [signature, *tx.signatures[1:]])


def _refuse(reason: Reason, message: str, **details: object) -> NoReturn:
    raise CedrosError(ErrorCode.INVALID_TRANSACTION, message,
                      {"reason": reason.value, **details})

"""What the sandbox remembers about blocks and transactions.

LiteSVM keeps no blocks and (as we configure it) no history, so the chain records here what
getSignatureStatuses, getTransaction and signature subscriptions must answer later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    InnerInstruction,
    SimulatedTransactionInfo,
    TransactionMetadata,
)
from solders.transaction_status import TransactionErrorType

from cedros_pay.sandbox import spl


@dataclass(frozen=True)
class Block:
    """One produced block: the sandbox makes one per landed transaction (plus on request)."""

    slot: int
    height: int
    blockhash: Hash
    unix_time: int


@dataclass(frozen=True)
class TokenBalance:
    account_index: int
    mint: Pubkey
    owner: Pubkey
    program: Pubkey
    amount: int
    decimals: int


@dataclass(frozen=True)
class Execution:
    """The outcome of running or simulating a transaction, whatever LiteSVM type it came in."""

    err: TransactionErrorType | None
    logs: list[str]
    units_consumed: int
    fee: int
    inner_instructions: list[list[InnerInstruction]] = field(default_factory=list)
    return_data: tuple[Pubkey, bytes] | None = None
    post_accounts: dict[Pubkey, Account] = field(default_factory=dict)

    @classmethod
    def of(cls, result: TransactionMetadata | FailedTransactionMetadata | SimulatedTransactionInfo
           ) -> Execution:
        err: TransactionErrorType | None = None
        post: dict[Pubkey, Account] = {}
        if isinstance(result, FailedTransactionMetadata):
            err, meta = result.err(), result.meta()
        elif isinstance(result, SimulatedTransactionInfo):
            meta = result.meta()
            post = dict(result.post_accounts())
        else:
            meta = result
        returned = meta.return_data()
        data = bytes(returned.data)
        return cls(err=err, logs=list(meta.logs()), units_consumed=meta.compute_units_consumed(),
                   fee=meta.fee(), inner_instructions=meta.inner_instructions(),
                   return_data=(returned.program_id, data) if data else None, post_accounts=post)

    @classmethod
    def refused(cls, err: TransactionErrorType) -> Execution:
        """A check that fails before any program runs (blockhash, duplicate): no logs, 0 CU."""
        return cls(err=err, logs=[], units_consumed=0, fee=0)


@dataclass(frozen=True)
class AccountKeys:
    """The message's static keys followed by the addresses its lookup tables loaded."""

    static: list[Pubkey]
    writable: list[Pubkey] = field(default_factory=list)
    readonly: list[Pubkey] = field(default_factory=list)

    @property
    def all(self) -> list[Pubkey]:
        return [*self.static, *self.writable, *self.readonly]


@dataclass(frozen=True)
class Snapshot:
    """Lamports and token balances of a transaction's accounts at one moment."""

    lamports: list[int]
    tokens: list[TokenBalance]


@dataclass(frozen=True)
class LandedTransaction:
    """A transaction that made it into a block (successfully or with an error, fee charged)."""

    signature: Signature
    transaction: VersionedTransaction
    block: Block
    execution: Execution
    keys: AccountKeys
    pre: Snapshot
    post: Snapshot

    @property
    def slot(self) -> int:
        return self.block.slot

    @property
    def err(self) -> TransactionErrorType | None:
        return self.execution.err


def token_balances(keys: list[Pubkey], accounts: list[Account | None],
                   lookup: Callable[[Pubkey], Account | None]) -> list[TokenBalance]:
    """Token balances the way the validator lists them in transaction meta."""
    out: list[TokenBalance] = []
    for index, (key, account) in enumerate(zip(keys, accounts, strict=True)):
        info = spl.read_token_account(key, account)
        if info is None:
            continue
        mint = spl.read_mint(info.mint, lookup(info.mint))
        if mint is None:
            continue
        out.append(TokenBalance(index, info.mint, info.owner, info.program, info.amount,
                                mint.decimals))
    return out

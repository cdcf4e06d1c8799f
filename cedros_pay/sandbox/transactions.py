"""Transaction checks the validator makes before running anything, and small rewrites."""

from __future__ import annotations

from solders.hash import Hash
from solders.message import Message, MessageV0
from solders.transaction import SanitizeError, Transaction, VersionedTransaction

AnyTransaction = Transaction | VersionedTransaction


class MalformedTransaction(ValueError):
    """The bytes are not a sane transaction (the validator's -32602 "invalid transaction")."""


class SignatureVerificationFailed(ValueError):
    """A signature does not match its key (the validator's -32003)."""


def as_versioned(tx: AnyTransaction) -> VersionedTransaction:
    return VersionedTransaction.from_legacy(tx) if isinstance(tx, Transaction) else tx


def check_well_formed(tx: VersionedTransaction) -> None:
    if not isinstance(tx.message, Message | MessageV0):
        raise MalformedTransaction("Transaction version is unsupported")
    try:
        tx.sanitize()
    except SanitizeError:
        raise MalformedTransaction(
            "Transaction failed to sanitize accounts offsets correctly") from None
    if not tx.signatures:
        raise MalformedTransaction("Transaction requires a fee but has no signature present")


def verify_signatures(tx: VersionedTransaction) -> None:
    if not all(tx.verify_with_results()):
        raise SignatureVerificationFailed("Transaction signature verification failure")


def with_blockhash(tx: VersionedTransaction, blockhash: Hash) -> VersionedTransaction:
    """The same transaction under another blockhash (signatures no longer match)."""
    m = tx.message
    message: Message | MessageV0
    if isinstance(m, MessageV0):
        message = MessageV0(m.header, m.account_keys, blockhash, m.instructions,
                            m.address_table_lookups)
    else:
        assert isinstance(m, Message)
        h = m.header
        message = Message.new_with_compiled_instructions(
            h.num_required_signatures, h.num_readonly_signed_accounts,
            h.num_readonly_unsigned_accounts, m.account_keys, blockhash, m.instructions)
    return VersionedTransaction.populate(message, tx.signatures)

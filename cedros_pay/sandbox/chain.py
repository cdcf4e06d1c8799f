"""A local Solana ledger: LiteSVM plus the parts of a validator LiteSVM leaves out.

LiteSVM executes real programs (Token, Token-2022, ATA, Memo, ComputeBudget ship with it) but
has no blocks, accepts only its single latest blockhash, starts its clock at unix time 0, and
keeps no queryable history. A payment client needs all of those: it fetches a blockhash, signs,
sends a moment later, then polls statuses or waits on a subscription. So this class turns off
LiteSVM's blockhash and signature checks and does them itself, validator-style:

- one block per landed transaction, each with a fresh blockhash; a transaction is accepted while
  its blockhash is among the last 150 (the validator's MAX_PROCESSING_AGE);
- the Clock sysvar follows wall time as blocks are produced;
- signatures are verified here (so simulation can skip them, as `sigVerify: false` asks);
- a history of landed transactions, with balances before and after, for statuses and
  getTransaction.

All methods are thread-safe: the RPC server may run in another thread than the test code.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionErrorType

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.errors import ALREADY_PROCESSED, BLOCKHASH_NOT_FOUND
from cedros_pay.sandbox.fees import fee_for_message
from cedros_pay.sandbox.ledger import (
    AccountKeys,
    Block,
    Execution,
    LandedTransaction,
    Snapshot,
    token_balances,
)
from cedros_pay.sandbox.transactions import (
    AnyTransaction,
    as_versioned,
    check_well_formed,
    verify_signatures,
    with_blockhash,
)

LAMPORTS_PER_SOL = 1_000_000_000
BLOCKHASH_WINDOW = 150  # blocks a blockhash stays usable (MAX_PROCESSING_AGE)
STATUS_CACHE_SLOTS = 300  # how far back getSignatureStatuses looks without history search
RENT_EPOCH_EXEMPT = 2**64 - 1  # what the validator reports for rent-exempt accounts
_FAUCET_LAMPORTS = 500_000_000 * LAMPORTS_PER_SOL
_ALT_HEADER = 56  # address lookup table metadata before its 32-byte addresses

Listener = Callable[[LandedTransaction], None]


class TransactionRejected(Exception):
    """Preflight found an error, so nothing was sent; `execution` holds the simulation."""

    def __init__(self, execution: Execution) -> None:
        super().__init__(str(execution.err))
        self.execution = execution


@dataclass(frozen=True)
class Simulation:
    execution: Execution
    keys: AccountKeys
    replacement: Block | None = None  # set when the blockhash was replaced


class SandboxChain:
    """LiteSVM with blocks, a blockhash window, wall-clock time and transaction history."""

    def __init__(
        self,
        *,
        genesis_hash: Hash | None = None,
        blockhash_window: int = BLOCKHASH_WINDOW,
        history_capacity: int = 100_000,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self._svm = (LiteSVM().with_sigverify(False).with_blockhash_check(False)
                     .with_transaction_history(0))
        self.genesis_hash = genesis_hash or Hash(os.urandom(32))
        self.blockhash_window = blockhash_window
        self._history_capacity = history_capacity
        self._now = now
        self._time_offset = 0.0
        self._schedule = self._svm.get_epoch_schedule()
        self._blocks: deque[Block] = deque(maxlen=blockhash_window + 1)
        self._heights: dict[Hash, int] = {}
        self._history: OrderedDict[Signature, LandedTransaction] = OrderedDict()
        self._listeners: list[Listener] = []
        self.transaction_count = 0
        # Pays for airdrops, token accounts and mints; holds every sandbox mint's authority.
        self.faucet = Keypair()
        self._svm.set_account(self.faucet.pubkey(), Account(
            _FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID, False, RENT_EPOCH_EXEMPT))
        slot = self._svm.get_clock().slot
        # A random first blockhash: LiteSVM's own are the same in every instance, and two
        # sandboxes (both "devnet") should not accept each other's transactions.
        first = Block(slot, slot - slot // 16, Hash(os.urandom(32)), self._unix_time(0))
        self._append(first)
        slot_index = self._schedule.get_epoch_and_slot_index(slot)[1]
        self._epoch_start = first.unix_time - slot_index * 2 // 5  # 400 ms slots
        self._set_clock(first)

    # --- blocks and time -------------------------------------------------------------

    @property
    def latest_block(self) -> Block:
        with self._lock:
            return self._blocks[-1]

    @property
    def slot(self) -> int:
        return self.latest_block.slot

    @property
    def block_height(self) -> int:
        return self.latest_block.height

    @property
    def epoch_schedule_info(self) -> tuple[int, int, int]:
        """(epoch, slot index, slots in epoch) of the current slot."""
        slot = self.slot
        epoch, index = self._schedule.get_epoch_and_slot_index(slot)
        return epoch, index, self._schedule.get_slots_in_epoch(epoch)

    def last_valid_block_height(self, blockhash: Hash) -> int | None:
        """Height up to which a transaction with this blockhash lands; None once expired."""
        with self._lock:
            height = self._heights.get(blockhash)
            return None if height is None else height + self.blockhash_window

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        return self.last_valid_block_height(blockhash) is not None

    def produce_blocks(self, count: int = 1) -> Block:
        """Produce empty blocks, e.g. to age a blockhash out of the window in a test."""
        with self._lock:
            for _ in range(count):
                self._commit_block(self._next_block())
            return self._blocks[-1]

    def advance_time(self, seconds: float) -> Block:
        """Move the on-chain clock forward (and produce a block that carries the new time)."""
        with self._lock:
            self._time_offset += seconds
            return self.produce_blocks(1)

    def _unix_time(self, floor: int) -> int:
        return max(floor, int(self._now() + self._time_offset))

    def _hash_after(self, previous: Hash, slot: int) -> Hash:
        return Hash(hashlib.sha256(bytes(previous) + slot.to_bytes(8, "little")).digest())

    def _next_block(self) -> Block:
        last = self._blocks[-1]
        slot = last.slot + 1
        return Block(slot, last.height + 1, self._hash_after(last.blockhash, slot),
                     self._unix_time(last.unix_time))

    def _append(self, block: Block) -> None:
        if len(self._blocks) == self._blocks.maxlen:
            self._heights.pop(self._blocks[0].blockhash, None)
        self._blocks.append(block)
        self._heights[block.blockhash] = block.height

    def _commit_block(self, block: Block) -> None:
        self._append(block)
        self._svm.expire_blockhash()  # keep LiteSVM's own notion moving, for durable nonces
        self._set_clock(block)

    def _set_clock(self, block: Block) -> None:
        epoch = self._schedule.get_epoch(block.slot)
        leader_epoch = self._schedule.get_leader_schedule_epoch(block.slot)
        self._svm.set_clock(Clock(block.slot, self._epoch_start, epoch, leader_epoch,
                                  block.unix_time))

    # --- sending and simulating -------------------------------------------------------

    def send_transaction(self, tx: AnyTransaction, *, skip_preflight: bool = False) -> Signature:
        """Submit like `sendTransaction`: verify, preflight unless skipped, then land.

        With `skip_preflight` a transaction that cannot land (unknown blockhash, duplicate,
        unpayable fee) is dropped silently, as a validator would, and its signature returned.
        """
        vtx = as_versioned(tx)
        check_well_formed(vtx)
        verify_signatures(vtx)
        with self._lock:
            if not skip_preflight:
                execution = self._simulate(vtx)
                if execution.err is not None:
                    raise TransactionRejected(execution)
            landed = self._land(vtx)
            listeners = list(self._listeners)
        if landed is not None:
            for listener in listeners:
                listener(landed)
        return vtx.signatures[0]

    def simulate_transaction(self, tx: AnyTransaction, *, sig_verify: bool = False,
                             replace_blockhash: bool = False) -> Simulation:
        vtx = as_versioned(tx)
        check_well_formed(vtx)
        if sig_verify:
            verify_signatures(vtx)
        with self._lock:
            replacement = None
            if replace_blockhash:
                replacement = self._blocks[-1]
                vtx = with_blockhash(vtx, replacement.blockhash)
            return Simulation(self._simulate(vtx), self._account_keys(vtx), replacement)

    def fee_for_message(self, message: Message | MessageV0) -> int | None:
        """The fee the message would pay now, or None if its blockhash is not usable."""
        if not self.is_blockhash_valid(message.recent_blockhash):
            return None
        return fee_for_message(message)

    def _precheck(self, tx: VersionedTransaction) -> TransactionErrorType | None:
        """The validator's order: blockhash age first, then the status cache."""
        if tx.message.recent_blockhash not in self._heights:
            return BLOCKHASH_NOT_FOUND
        if tx.signatures[0] in self._history:
            return ALREADY_PROCESSED
        return None

    def _simulate(self, tx: VersionedTransaction) -> Execution:
        refused = self._precheck(tx)
        if refused is not None:
            return Execution.refused(refused)
        return Execution.of(self._svm.simulate_transaction(tx))

    def _land(self, tx: VersionedTransaction) -> LandedTransaction | None:
        if self._precheck(tx) is not None:
            return None
        keys = self._account_keys(tx)
        pre = self._snapshot(keys)
        block = self._next_block()
        self._set_clock(block)  # programs run with the new block's clock
        execution = Execution.of(self._svm.send_transaction(tx))
        payer_charged = self._lamports(keys.static[0]) < pre.lamports[0]
        if execution.err is not None and not payer_charged:
            self._set_clock(self._blocks[-1])  # dropped before execution: no block
            return None
        self._commit_block(block)
        record = LandedTransaction(tx.signatures[0], tx, block, execution, keys, pre,
                                   self._snapshot(keys))
        self._history[record.signature] = record
        if len(self._history) > self._history_capacity:
            self._history.popitem(last=False)
        self.transaction_count += 1
        return record

    def _account_keys(self, tx: VersionedTransaction) -> AccountKeys:
        message = tx.message
        static = list(message.account_keys)
        if not isinstance(message, MessageV0) or not message.address_table_lookups:
            return AccountKeys(static)
        writable: list[Pubkey] = []
        readonly: list[Pubkey] = []
        try:
            for lookup in message.address_table_lookups:
                table = self._svm.get_account(lookup.account_key)
                data = bytes(table.data) if table else b""
                addresses = [Pubkey.from_bytes(data[i : i + 32])
                             for i in range(_ALT_HEADER, len(data) - 31, 32)]
                writable += [addresses[i] for i in bytes(lookup.writable_indexes)]
                readonly += [addresses[i] for i in bytes(lookup.readonly_indexes)]
        except IndexError:
            return AccountKeys(static)  # LiteSVM reports the bad lookup itself
        return AccountKeys(static, writable, readonly)

    def _snapshot(self, keys: AccountKeys) -> Snapshot:
        addresses = keys.all
        accounts = [self._svm.get_account(key) for key in addresses]
        lamports = [a.lamports if a else 0 for a in accounts]
        return Snapshot(lamports, token_balances(addresses, accounts, self._svm.get_account))

    def _lamports(self, key: Pubkey) -> int:
        account = self._svm.get_account(key)
        return account.lamports if account else 0

    # --- history and subscriptions ----------------------------------------------------

    def transaction(self, signature: Signature) -> LandedTransaction | None:
        with self._lock:
            return self._history.get(signature)

    def status(self, signature: Signature, *, search_history: bool = False
               ) -> LandedTransaction | None:
        """A landed transaction as getSignatureStatuses sees it.

        Without `search_history` only the recent status cache (300 slots) is consulted, which is
        what the validator does too.
        """
        with self._lock:
            record = self._history.get(signature)
            if record is None or search_history:
                return record
            return record if self._blocks[-1].slot - record.slot <= STATUS_CACHE_SLOTS else None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` (from the sending thread) for every landed transaction."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return remove

    # --- accounts ---------------------------------------------------------------------

    def get_account(self, address: Pubkey) -> Account | None:
        with self._lock:
            return self._svm.get_account(address)

    def set_account(self, address: Pubkey, account: Account) -> None:
        """Write any account at any address (how mints land at real-world addresses)."""
        with self._lock:
            self._svm.set_account(address, account)

    def balance(self, address: Pubkey) -> int:
        with self._lock:
            return self._lamports(address)

    def token_accounts(self, program: Pubkey) -> list[tuple[Pubkey, Account]]:
        with self._lock:
            return self._svm.get_program_accounts(program)

    def rent_exempt_minimum(self, data_len: int) -> int:
        with self._lock:
            return self._svm.minimum_balance_for_rent_exemption(data_len)

    # --- funding helpers (real transactions signed by the faucet) ---------------------

    def airdrop(self, to: Pubkey, lamports: int) -> Signature:
        return self._faucet_send([transfer(TransferParams(
            from_pubkey=self.faucet.pubkey(), to_pubkey=to, lamports=lamports))])

    def create_mint(self, address: Pubkey, decimals: int = 6, *,
                    program: Pubkey = spl.TOKEN_PROGRAM_ID,
                    freeze_authority: Pubkey | None = None) -> Pubkey:
        """Place an initialized mint at `address` (any address: no key needed).

        The faucet is its mint authority, so `mint_to` can issue tokens.
        """
        if program not in spl.TOKEN_PROGRAMS:
            raise ValueError(f"{program} is not a token program")
        data = spl.pack_mint(decimals, 0, self.faucet.pubkey(), freeze_authority)
        self.set_account(address, Account(self.rent_exempt_minimum(len(data)), data, program,
                                          False, RENT_EPOCH_EXEMPT))
        return address

    def create_token_account(self, owner: Pubkey, mint: Pubkey) -> Pubkey:
        """The owner's associated token account for `mint`, created if missing."""
        program = self._mint_program(mint)
        ata = spl.associated_token_address(owner, mint, program)
        if self.get_account(ata) is None:
            self._faucet_send([spl.create_ata_idempotent(self.faucet.pubkey(), owner, mint,
                                                         program)])
        return ata

    def mint_to(self, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
        """Issue `amount` atomic units into the owner's associated token account."""
        info = spl.read_mint(mint, self.get_account(mint))
        if info is None or info.mint_authority != self.faucet.pubkey():
            raise ValueError(f"{mint} is not a mint this sandbox can issue")
        ata = self.create_token_account(owner, mint)
        self._faucet_send([spl.mint_to_checked(mint, ata, self.faucet.pubkey(), amount,
                                               info.decimals, info.program)])
        return ata

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        """Atomic units in the owner's associated token account (0 if it has none)."""
        ata = spl.associated_token_address(owner, mint, self._mint_program(mint))
        info = spl.read_token_account(ata, self.get_account(ata))
        return info.amount if info else 0

    def _mint_program(self, mint: Pubkey) -> Pubkey:
        account = self.get_account(mint)
        if account is None or account.owner not in spl.TOKEN_PROGRAMS:
            raise ValueError(f"{mint} is not a token mint")
        return account.owner

    def _faucet_send(self, instructions: Sequence[Instruction]) -> Signature:
        message = Message.new_with_blockhash(instructions, self.faucet.pubkey(),
                                             self.latest_block.blockhash)
        return self.send_transaction(Transaction([self.faucet], message,
                                                 message.recent_blockhash))

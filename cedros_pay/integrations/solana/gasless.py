"""Gasless transactions and recipient token accounts (spec 22 "Gasless Transaction
Builder", "Auto Token Account Creation"; spec 07 "Expected Instruction Order").

`GaslessBuilder` builds the payment a buyer only has to sign: a server wallet pays the
fee, the buyer is the transfer authority, and the server co-signs at /verify
(`cosigner.WalletCosigner`). Instruction order is the spec's:

    0 SetComputeUnitLimit   1 SetComputeUnitPrice   2 TransferChecked   3 Memo (if any)

The message is legacy (every wallet adapter signs it) with the fee payer in account 0 and
the buyer in account 1; both signature slots are left empty.

`TokenAccountCreator` creates the merchant's associated token account when a payment
fails because it does not exist yet (first payment in a new token), paid by a healthy
server wallet, then waits for it to propagate (30 checks, 500 ms doubling to 2 s). It only
ever creates the ATA of the configured merchant owner, never an account a client names.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.accounts import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    associated_token_address,
    token_program_for,
)
from cedros_pay.integrations.solana.failures import send_failure
from cedros_pay.integrations.solana.rpc import RpcCallError, SolanaRpc
from cedros_pay.integrations.solana.wallets import WalletPool, truncate
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.svm import MEMO_PROGRAM_ID, TRANSFER_CHECKED

log = logging.getLogger("cedros_pay.solana.gasless")

SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
_CREATE_IDEMPOTENT = 1  # AssociatedTokenAccountInstruction::CreateIdempotent


@dataclass(frozen=True, slots=True)
class GaslessTransaction:
    """spec 02 `POST /paywall/v1/gasless-transaction` response, before rendering."""

    transaction: str  # base64, unsigned
    fee_payer: str
    blockhash: str
    last_valid_block_height: int
    signers: tuple[str, ...]  # fee payer, then buyer


def transfer_checked(source: Pubkey, mint: Pubkey, destination: Pubkey, authority: Pubkey,
                     amount: int, decimals: int, program: Pubkey) -> Instruction:
    data = bytes([TRANSFER_CHECKED]) + amount.to_bytes(8, "little") + bytes([decimals])
    return Instruction(program, data, [
        AccountMeta(source, is_signer=False, is_writable=True),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(destination, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=True, is_writable=False),
    ])


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: Pubkey,
                          program: Pubkey) -> Instruction:
    ata = Pubkey.from_string(associated_token_address(str(owner), str(mint), str(program)))
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([_CREATE_IDEMPOTENT]), [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(ata, is_signer=False, is_writable=True),
        AccountMeta(owner, is_signer=False, is_writable=False),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(program, is_signer=False, is_writable=False),
    ])


def _pubkey(value: str, field: str) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise CedrosError(ErrorCode.INVALID_WALLET if field == "userWallet"
                          else ErrorCode.INVALID_FIELD,
                          f"{field} is not a Solana address", {"field": field}) from None


class GaslessBuilder:
    def __init__(self, rpc: SolanaRpc, wallets: WalletPool, *, compute_unit_limit: int,
                 compute_unit_price: int, commitment: str = "confirmed") -> None:
        self._rpc = rpc
        self._wallets = wallets
        self.compute_unit_limit = compute_unit_limit
        self.compute_unit_price = compute_unit_price
        self._commitment = commitment

    def fee_payer(self, requested: str | None) -> str:
        """The requested server wallet (healthy or not: it was asked for), or the next
        healthy one round-robin (spec 22 "Server Wallet Selection Rules")."""
        if requested:
            if not self._wallets.holds(requested):
                raise CedrosError(ErrorCode.INVALID_FIELD,
                                  "feePayer is not one of this server's wallets",
                                  {"field": "feePayer",
                                   "reason": Reason.FEE_PAYER_NOT_SERVER.value})
            return requested
        chosen = self._wallets.pick()
        if chosen is None:
            raise CedrosError(ErrorCode.CONFIG_ERROR, "no server wallet is configured")
        return chosen

    async def build(self, *, payer: str, mint: str, amount: int, decimals: int,
                    recipient_token_account: str, memo: str | None = None,
                    fee_payer: str | None = None,
                    token_program: str | None = None) -> GaslessTransaction:
        """The unsigned payment (module doc) on a fresh blockhash."""
        buyer = _pubkey(payer, "userWallet")
        payer_key = _pubkey(self.fee_payer(fee_payer), "feePayer")
        if payer_key == buyer:
            raise CedrosError(ErrorCode.INVALID_WALLET,
                              "the buyer cannot be the server's fee payer",
                              {"field": "userWallet"})
        program = Pubkey.from_string(token_program) if token_program else token_program_for(mint)
        mint_key = _pubkey(mint, "mint")
        source = Pubkey.from_string(associated_token_address(str(buyer), mint, str(program)))
        instructions = [
            set_compute_unit_limit(self.compute_unit_limit),
            set_compute_unit_price(self.compute_unit_price),
            transfer_checked(source, mint_key, _pubkey(recipient_token_account, "payTo"),
                             buyer, amount, decimals, program),
        ]
        if memo:
            instructions.append(Instruction(MEMO_PROGRAM_ID, memo.encode(), []))
        blockhash, last_valid = await self._rpc.latest_blockhash(commitment=self._commitment)
        message = Message.new_with_blockhash(instructions, payer_key,
                                             Hash.from_string(blockhash))
        tx = VersionedTransaction.populate(message, [Signature.default()] * 2)
        return GaslessTransaction(
            transaction=base64.b64encode(bytes(tx)).decode(), fee_payer=str(payer_key),
            blockhash=blockhash, last_valid_block_height=last_valid,
            signers=(str(payer_key), str(buyer)))


class TokenAccountCreator:
    """Creates the merchant's missing ATA on demand (module doc)."""

    def __init__(self, rpc: SolanaRpc, wallets: WalletPool, owner: str, *,
                 attempts: int = 30, backoff: float = 0.5, max_backoff: float = 2.0,
                 commitment: str = "confirmed") -> None:
        self._rpc = rpc
        self._wallets = wallets
        self._owner = owner
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._commitment = commitment
        self._lock = asyncio.Lock()  # two payments racing create it once
        self.created: list[str] = []

    async def exists(self, address: str) -> bool:
        result = await self._rpc.call("getAccountInfo", [
            address, {"encoding": "base64", "commitment": self._commitment}])
        return isinstance(result, dict) and result.get("value") is not None

    async def ensure(self, destination: str, mint: str, token_program: str) -> bool:
        """Create `destination` if it is the merchant's ATA and missing; True if it now
        exists after being created here (the caller retries its payment once)."""
        if destination != associated_token_address(self._owner, mint, token_program):
            return False
        async with self._lock:
            if await self.exists(destination):
                return destination in self.created  # created by a racing payment
            payer = self._wallets.pick()
            if payer is None:
                return False
            ix = create_ata_idempotent(Pubkey.from_string(payer), Pubkey.from_string(self._owner),
                                       Pubkey.from_string(mint), Pubkey.from_string(token_program))
            blockhash, _ = await self._rpc.latest_blockhash(commitment=self._commitment)
            message = Message.new_with_blockhash([ix], Pubkey.from_string(payer),
                                                 Hash.from_string(blockhash))
            signature = self._wallets.sign(payer, to_bytes_versioned(message))
            tx = VersionedTransaction.populate(message, [signature])
            try:
                await self._rpc.send_transaction(bytes(tx), skip_preflight=False,
                                                 preflight_commitment=self._commitment)
            except RpcCallError as exc:
                # Our wallet pays: a SOL shortage is `server_insufficient_funds`.
                raise send_failure(exc, signature=str(signature), transfer_index=None,
                                   gasless=True) from None
            log.info("creating token account %s for the merchant, paid by %s",
                     truncate(destination), truncate(payer))
            await self._wait_for(destination)
            self.created.append(destination)
            return True

    async def _wait_for(self, address: str) -> None:
        delay = self._backoff
        for _ in range(self._attempts):
            if await self.exists(address):
                return
            await asyncio.sleep(delay)
            delay = min(self._max_backoff, delay * 2)
        raise CedrosError(ErrorCode.SEND_FAILED,
                          "the new recipient token account did not appear in time",
                          {"reason": Reason.NOT_CONFIRMED.value})

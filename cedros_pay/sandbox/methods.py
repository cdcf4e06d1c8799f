"""The JSON-RPC methods a payment server and its clients call, answered from a SandboxChain.

Each handler takes the request's `params` and returns the `result`, or raises RpcError with the
code and wording the validator uses, because clients classify failures by them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from solders.hash import Hash
from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature

from cedros_pay.sandbox import encoding as enc
from cedros_pay.sandbox import spl
from cedros_pay.sandbox.chain import SandboxChain, TransactionRejected
from cedros_pay.sandbox.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
    RpcError,
    invalid_param,
    invalid_params,
    transaction_error_json,
    transaction_error_text,
)
from cedros_pay.sandbox.faults import Faults
from cedros_pay.sandbox.ledger import Execution, LandedTransaction
from cedros_pay.sandbox.transactions import MalformedTransaction, SignatureVerificationFailed

SOLANA_CORE_VERSION = "2.2.20"
FEATURE_SET = 3294202862
_MAX_SIGNATURES = 256
_MAX_ACCOUNTS = 100

Handler = Callable[[Any], Any]


def _args(params: Any, required: int, total: int) -> list[Any]:
    """Positional params padded with None, or the validator's "invalid length" complaint."""
    if params is None:
        params = []
    if not isinstance(params, list):
        raise invalid_params("expected an array of parameters")
    if not required <= len(params) <= total:
        raise invalid_params(f"invalid length {len(params)}, expected "
                             f"{required if required == total else f'{required} to {total}'} "
                             "elements")
    return params + [None] * (total - len(params))


def _config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_params("expected a configuration object")
    return value


def _signature(value: Any) -> Signature:
    try:
        if isinstance(value, str):
            return Signature.from_string(value)
    except ValueError:
        pass
    raise invalid_param("Invalid")


def _hash(value: Any) -> Hash:
    try:
        if isinstance(value, str):
            return Hash.from_string(value)
    except ValueError:
        pass
    raise invalid_param("Invalid")


def _non_negative(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"{name} must be a non-negative integer")
    return value


class RpcMethods:
    """Method table over one chain; `faults` backs the sandbox_* control methods."""

    def __init__(self, chain: SandboxChain, faults: Faults) -> None:
        self.chain = chain
        self.faults = faults
        self.table: dict[str, Handler] = {
            "getHealth": lambda p: "ok",
            "getVersion": self.get_version,
            "getGenesisHash": lambda p: str(chain.genesis_hash),
            "getIdentity": lambda p: {"identity": str(chain.faucet.pubkey())},
            "getSlot": lambda p: chain.slot,
            "getBlockHeight": lambda p: chain.block_height,
            "getTransactionCount": lambda p: chain.transaction_count,
            "getEpochInfo": self.get_epoch_info,
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "getFeeForMessage": self.get_fee_for_message,
            "getRecentPrioritizationFees": lambda p: [{"slot": chain.slot,
                                                       "prioritizationFee": 0}],
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenSupply": self.get_token_supply,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "sandbox_failNext": self.fail_next,
            "sandbox_produceBlocks": self.produce_blocks,
            "sandbox_advanceTime": self.advance_time,
            "sandbox_mintTo": self.mint_to,
        }

    def _context(self) -> dict[str, Any]:
        return {"slot": self.chain.slot, "apiVersion": SOLANA_CORE_VERSION}

    def _wrap(self, value: Any) -> dict[str, Any]:
        return {"context": self._context(), "value": value}

    # --- cluster ----------------------------------------------------------------------

    def get_version(self, params: list[Any]) -> dict[str, Any]:
        return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}

    def get_epoch_info(self, params: list[Any]) -> dict[str, Any]:
        epoch, index, slots = self.chain.epoch_schedule_info
        return {"absoluteSlot": self.chain.slot, "blockHeight": self.chain.block_height,
                "epoch": epoch, "slotIndex": index, "slotsInEpoch": slots,
                "transactionCount": self.chain.transaction_count}

    def get_latest_blockhash(self, params: list[Any]) -> dict[str, Any]:
        block = self.chain.latest_block
        return {"context": {"slot": block.slot, "apiVersion": SOLANA_CORE_VERSION},
                "value": {"blockhash": str(block.blockhash),
                          "lastValidBlockHeight": block.height + self.chain.blockhash_window}}

    def is_blockhash_valid(self, params: list[Any]) -> dict[str, Any]:
        value, _ = _args(params, 1, 2)
        return self._wrap(self.chain.is_blockhash_valid(_hash(value)))

    def get_fee_for_message(self, params: list[Any]) -> dict[str, Any]:
        value, _ = _args(params, 1, 2)
        try:
            message = from_bytes_versioned(base64.b64decode(value, validate=True))
        except (TypeError, ValueError):
            raise invalid_params("invalid message") from None
        if not isinstance(message, Message | MessageV0):
            raise invalid_params("unsupported message version")
        return self._wrap(self.chain.fee_for_message(message))

    def get_minimum_balance(self, params: list[Any]) -> int:
        size, _ = _args(params, 1, 2)
        return self.chain.rent_exempt_minimum(_non_negative(size, "data length"))

    # --- accounts ---------------------------------------------------------------------

    def get_balance(self, params: list[Any]) -> dict[str, Any]:
        key, _ = _args(params, 1, 2)
        return self._wrap(self.chain.balance(enc.parse_pubkey(key)))

    def _account(self, key: Pubkey, config: dict[str, Any]) -> dict[str, Any] | None:
        account = self.chain.get_account(key)
        if account is None or (account.lamports == 0 and not account.data):
            return None
        slice_ = config.get("dataSlice")
        window = None
        if isinstance(slice_, dict):
            window = (_non_negative(slice_.get("offset"), "dataSlice.offset"),
                      _non_negative(slice_.get("length"), "dataSlice.length"))
        return enc.account_json(account, key, config.get("encoding") or "base64", window,
                                self.chain.get_account)

    def get_account_info(self, params: list[Any]) -> dict[str, Any]:
        key, config = _args(params, 1, 2)
        return self._wrap(self._account(enc.parse_pubkey(key), _config(config)))

    def get_multiple_accounts(self, params: list[Any]) -> dict[str, Any]:
        keys, config = _args(params, 1, 2)
        if not isinstance(keys, list):
            raise invalid_params("expected an array of addresses")
        if len(keys) > _MAX_ACCOUNTS:
            raise invalid_params(f"Too many inputs provided; max {_MAX_ACCOUNTS}")
        cfg = _config(config)
        return self._wrap([self._account(enc.parse_pubkey(k), cfg) for k in keys])

    def _token_account(self, value: Any) -> spl.TokenAccountInfo:
        key = enc.parse_pubkey(value)
        account = self.chain.get_account(key)
        if account is None:
            raise invalid_param("could not find account")
        info = spl.read_token_account(key, account)
        if info is None:
            raise invalid_param("not a Token account")
        return info

    def _decimals(self, mint: Pubkey) -> int:
        info = spl.read_mint(mint, self.chain.get_account(mint))
        if info is None:
            raise invalid_param("Token mint could not be unpacked")
        return info.decimals

    def get_token_account_balance(self, params: list[Any]) -> dict[str, Any]:
        key, _ = _args(params, 1, 2)
        info = self._token_account(key)
        return self._wrap(spl.ui_token_amount(info.amount, self._decimals(info.mint)))

    def get_token_supply(self, params: list[Any]) -> dict[str, Any]:
        key, _ = _args(params, 1, 2)
        address = enc.parse_pubkey(key)
        mint = spl.read_mint(address, self.chain.get_account(address))
        if mint is None:
            raise invalid_param("Token mint could not be unpacked")
        return self._wrap(spl.ui_token_amount(mint.supply, mint.decimals))

    def get_token_accounts_by_owner(self, params: list[Any]) -> dict[str, Any]:
        owner_value, filter_, config = _args(params, 2, 3)
        owner = enc.parse_pubkey(owner_value)
        if not isinstance(filter_, dict) or len(filter_) != 1:
            raise invalid_params("expected a filter object with mint or programId")
        mint = enc.parse_pubkey(filter_["mint"]) if "mint" in filter_ else None
        if mint is not None:
            mint_account = self.chain.get_account(mint)
            program_ids = ([mint_account.owner] if mint_account
                           and mint_account.owner in spl.TOKEN_PROGRAMS else [])
        else:
            program = enc.parse_pubkey(filter_.get("programId"))
            if program not in spl.TOKEN_PROGRAMS:
                raise invalid_param("unrecognized Token program id")
            program_ids = [program]
        cfg = _config(config)
        found = []
        for program in program_ids:
            for address, account in self.chain.token_accounts(program):
                info = spl.read_token_account(address, account)
                if info and info.owner == owner and (mint is None or info.mint == mint):
                    found.append({"pubkey": str(address), "account": enc.account_json(
                        account, address, cfg.get("encoding") or "base64", None,
                        self.chain.get_account)})
        return self._wrap(found)

    def request_airdrop(self, params: list[Any]) -> str:
        key, lamports, _ = _args(params, 2, 3)
        try:
            return str(self.chain.airdrop(enc.parse_pubkey(key),
                                          _non_negative(lamports, "lamports")))
        except TransactionRejected as exc:
            raise RpcError(INTERNAL_ERROR, f"airdrop request failed: {exc}") from None

    # --- transactions -----------------------------------------------------------------

    def send_transaction(self, params: list[Any]) -> str:
        raw, config = _args(params, 1, 2)
        cfg = _config(config)
        if not isinstance(raw, str):
            raise invalid_params("expected an encoded transaction")
        tx = enc.decode_transaction(raw, cfg.get("encoding") or "base58")
        try:
            return str(self.chain.send_transaction(
                tx, skip_preflight=bool(cfg.get("skipPreflight", False))))
        except MalformedTransaction as exc:
            raise invalid_params(f"invalid transaction: {exc}") from None
        except SignatureVerificationFailed as exc:
            raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(exc)) from None
        except TransactionRejected as exc:
            failure = exc.execution
            raise RpcError(
                SEND_TRANSACTION_PREFLIGHT_FAILURE,
                f"Transaction simulation failed: {transaction_error_text(failure.err)}"
                if failure.err is not None else "Transaction simulation failed",
                self._simulation_value(failure, None, None, None),
            ) from None

    def simulate_transaction(self, params: list[Any]) -> dict[str, Any]:
        raw, config = _args(params, 1, 2)
        cfg = _config(config)
        if not isinstance(raw, str):
            raise invalid_params("expected an encoded transaction")
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        tx = enc.decode_transaction(raw, cfg.get("encoding") or "base58")
        try:
            sim = self.chain.simulate_transaction(tx, sig_verify=sig_verify,
                                                  replace_blockhash=replace)
        except MalformedTransaction as exc:
            raise invalid_params(f"invalid transaction: {exc}") from None
        except SignatureVerificationFailed as exc:
            raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(exc)) from None
        replacement = None
        if sim.replacement is not None:
            replacement = {"blockhash": str(sim.replacement.blockhash),
                           "lastValidBlockHeight": sim.replacement.height
                           + self.chain.blockhash_window}
        accounts = cfg.get("accounts")
        return self._wrap(self._simulation_value(
            sim.execution, self._simulated_accounts(sim.execution, accounts), replacement,
            enc.inner_instructions_json(sim.execution) if cfg.get("innerInstructions")
            else None))

    def _simulated_accounts(self, execution: Execution, config: Any) -> list[Any] | None:
        if not isinstance(config, dict):
            return None
        addresses = config.get("addresses") or []
        encoding = config.get("encoding") or "base64"
        out: list[Any] = []
        for value in addresses:
            key = enc.parse_pubkey(value)
            account = execution.post_accounts.get(key) or self.chain.get_account(key)
            out.append(None if account is None else
                       enc.account_json(account, key, encoding, None, self.chain.get_account))
        return out

    def _simulation_value(self, execution: Execution, accounts: list[Any] | None,
                          replacement: dict[str, Any] | None,
                          inner: list[dict[str, Any]] | None) -> dict[str, Any]:
        return {
            "err": transaction_error_json(execution.err),
            "logs": execution.logs,
            "accounts": accounts,
            "unitsConsumed": execution.units_consumed,
            "returnData": enc.return_data_json(execution),
            "innerInstructions": inner,
            "replacementBlockhash": replacement,
            "fee": execution.fee if execution.err is None else None,
        }

    def get_signature_statuses(self, params: list[Any]) -> dict[str, Any]:
        values, config = _args(params, 1, 2)
        if not isinstance(values, list):
            raise invalid_params("expected an array of signatures")
        if len(values) > _MAX_SIGNATURES:
            raise invalid_params(f"Too many inputs provided; max {_MAX_SIGNATURES}")
        search = bool(_config(config).get("searchTransactionHistory", False))
        statuses = [self.chain.status(_signature(v), search_history=search) for v in values]
        return self._wrap([None if s is None else _status_json(s) for s in statuses])

    def get_transaction(self, params: list[Any]) -> dict[str, Any] | None:
        value, config = _args(params, 1, 2)
        cfg = _config(config) if not isinstance(config, str) else {"encoding": config}
        if cfg.get("commitment") == "processed":
            raise invalid_params("Method does not support commitment below `confirmed`")
        record = self.chain.transaction(_signature(value))
        if record is None:
            return None
        max_version = cfg.get("maxSupportedTransactionVersion")
        if isinstance(record.transaction.message, MessageV0) and max_version is None:
            raise RpcError(
                UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try "
                "the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0')
        return enc.confirmed_transaction_json(record, cfg.get("encoding") or "json",
                                              max_version is not None)

    # --- sandbox control (not Solana methods) -----------------------------------------

    def fail_next(self, params: list[Any]) -> int:
        count, status = _args(params, 1, 2)
        self.faults.fail_next(_non_negative(count, "count"), status or 429)
        return self.faults.pending

    def produce_blocks(self, params: list[Any]) -> int:
        (count,) = _args(params, 1, 1)
        return self.chain.produce_blocks(_non_negative(count, "count")).slot

    def advance_time(self, params: list[Any]) -> int:
        (seconds,) = _args(params, 1, 1)
        return self.chain.advance_time(_non_negative(seconds, "seconds")).unix_time

    def mint_to(self, params: list[Any]) -> str:
        owner, mint, amount = _args(params, 3, 3)
        try:
            ata = self.chain.mint_to(enc.parse_pubkey(owner), enc.parse_pubkey(mint),
                                     _non_negative(amount, "amount"))
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from None
        return str(ata)


def _status_json(record: LandedTransaction) -> dict[str, Any]:
    # Everything is final as soon as it lands: there is one validator and no forks.
    err = transaction_error_json(record.err)
    return {"slot": record.slot, "confirmations": None, "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "confirmationStatus": "finalized"}

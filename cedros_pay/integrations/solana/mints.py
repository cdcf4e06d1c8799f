"""Which token program owns a mint, as the chain says (the exact scheme pins it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cedros_pay.core.errors import CedrosError
from cedros_pay.integrations.solana.accounts import token_program_for
from cedros_pay.integrations.solana.rpc import RpcCallError

log = logging.getLogger("cedros_pay.solana.mints")

RpcCall = Callable[[str, list[Any]], Awaitable[Any]]  # SolanaRpc.call


class MintPrograms:
    """Which token program owns a mint, read from the chain once per mint.

    The exact scheme pins the transfer's program to the mint's owner (Token or Token-2022),
    and so does the client, which reads the mint account to build its transfer. A mint's
    owner never changes, so one successful read is kept for good; when the RPC cannot
    answer, the built-in table of known mints (`accounts.token_program_for`) stands in.
    """

    def __init__(self, call: RpcCall) -> None:
        self._call = call
        self._known: dict[str, str] = {}

    async def program_of(self, mint: str) -> str:
        cached = self._known.get(mint)
        if cached is not None:
            return cached
        try:
            result = await self._call("getAccountInfo", [mint, {"encoding": "base64"}])
        except (CedrosError, RpcCallError, OSError, ValueError) as exc:
            log.warning("mint owner lookup failed for %s: %s", mint[:8], exc)
            return str(token_program_for(mint))
        value = result.get("value") if isinstance(result, dict) else None
        owner = value.get("owner") if isinstance(value, dict) else None
        if not isinstance(owner, str):
            return str(token_program_for(mint))
        self._known[mint] = owner
        return owner

"""Server wallets and their health (spec 22 "Wallet Health Checker", "Server Wallet
Selection for Gasless"; spec 11 "Wallet Health Checker").

The server's wallets (X402_SERVER_WALLET_N) pay network fees for gasless payments and
rent for token accounts it creates. `WalletPool` holds their keys, reads their SOL
balances now and then, and hands out the next healthy one round-robin.

Rules, from the spec:
- healthy: balance >= 0.005 SOL; critical: balance <= 0.001 SOL; in between: low.
- A wallet starts critical (assume the worst) until its first check.
- Selection skips unhealthy wallets; when none is healthy it still rotates (a payment
  that may fail beats one refused up front), logging an error when all are critical.
- A wallet that *becomes* critical triggers the critical callback once per transition.
- Health is refreshed in the background (every 5 minutes), never during a payment.

Addresses are logged truncated (`7cVf...jpT`); secret keys never leave this module except
as signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from solders.keypair import Keypair
from solders.signature import Signature

from cedros_pay.logs import truncate_wallet

log = logging.getLogger("cedros_pay.solana.wallets")

LAMPORTS_PER_SOL = 1_000_000_000
MIN_HEALTHY_SOL = 0.005
CRITICAL_SOL = 0.001
CHECK_INTERVAL = 300.0  # seconds (5 minutes)
CHECK_TIMEOUT = 10.0  # seconds, per balance read

Balance = Callable[[str], Awaitable[int]]  # address -> lamports
CriticalCallback = Callable[["WalletHealth"], Awaitable[None] | None]
Status = Literal["healthy", "low", "critical"]


truncate = truncate_wallet  # `7cVf...jpT`: enough to tell wallets apart in logs


def keypairs_from_secrets(secrets: Sequence[bytes]) -> tuple[Keypair, ...]:
    """64-byte secret keys (config `x402.server_wallets`) -> keypairs; a key whose public
    half does not match its secret half is refused rather than signing as someone else."""
    pairs = []
    for index, secret in enumerate(secrets, start=1):
        pair = Keypair.from_bytes(bytes(secret))
        if bytes(pair)[32:] != bytes(secret)[32:]:
            raise ValueError(f"server wallet {index}: public key does not match secret key")
        pairs.append(pair)
    return tuple(pairs)


async def rpc_balance(call: Callable[[str, list[object]], Awaitable[object]],
                      address: str) -> int:
    """Lamports of `address` via JSON-RPC `getBalance` (a SolanaRpc's `call`)."""
    result = await call("getBalance", [address, {"commitment": "confirmed"}])
    value = result.get("value") if isinstance(result, dict) else result
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("getBalance returned no integer balance")
    return value


@dataclass(frozen=True, slots=True)
class WalletHealth:
    """One wallet's last known state (spec 22 `WalletHealth`)."""

    address: str
    balance_sol: float = 0.0
    healthy: bool = False
    critical: bool = True  # until the first check says otherwise
    last_checked: float | None = None  # unix time
    last_error: str | None = None

    @property
    def status(self) -> Status:
        if self.healthy:
            return "healthy"
        return "critical" if self.critical else "low"


class WalletPool:
    """The server wallets: keys, health, round-robin selection, co-signing material.

    Also the `FeePayers` seam of the payment resolver (`pick`, `holds`).
    """

    def __init__(self, keypairs: Sequence[Keypair], balance: Balance, *,
                 min_healthy_sol: float = MIN_HEALTHY_SOL, critical_sol: float = CRITICAL_SOL,
                 check_timeout: float = CHECK_TIMEOUT,
                 on_critical: CriticalCallback | None = None) -> None:
        self._keys = {str(k.pubkey()): k for k in keypairs}
        self.addresses: tuple[str, ...] = tuple(self._keys)
        self._balance = balance
        self._min_healthy = min_healthy_sol
        self._critical = critical_sol
        self._timeout = check_timeout
        self._on_critical = on_critical
        self._health = {a: WalletHealth(a) for a in self.addresses}
        self._next = 0

    def __len__(self) -> int:
        return len(self.addresses)

    async def balance(self, address: str) -> int:
        """Lamports of `address`, read now (the balance monitor shares this reader)."""
        return await self._balance(address)

    def set_critical_callback(self, callback: CriticalCallback | None) -> None:
        self._on_critical = callback

    # --- keys ---------------------------------------------------------------------------

    def holds(self, address: str) -> bool:
        return address in self._keys

    def sign(self, address: str, message: bytes) -> Signature:
        """Sign `message` with the wallet at `address` (KeyError if it is not ours)."""
        return self._keys[address].sign_message(message)

    def keypair(self, address: str) -> Keypair:
        return self._keys[address]

    # --- selection ----------------------------------------------------------------------

    def pick(self) -> str | None:
        """The next healthy wallet round-robin; if none is healthy, the next one anyway."""
        if not self.addresses:
            return None
        count = len(self.addresses)
        start = self._next
        for offset in range(count):
            address = self.addresses[(start + offset) % count]
            if self._health[address].healthy:
                self._next = start + offset + 1
                return address
        address = self.addresses[start % count]
        self._next = start + 1
        if all(h.critical and h.last_checked is not None for h in self._health.values()):
            log.error("every server wallet is critically low on SOL; using %s anyway",
                      truncate(address))
        return address

    # --- health -------------------------------------------------------------------------

    def health(self) -> dict[str, WalletHealth]:
        return dict(self._health)

    def wallet_health(self, address: str) -> WalletHealth | None:
        return self._health.get(address)

    def summary(self) -> tuple[int, int, int]:
        """(healthy, unhealthy, critical) counts; critical wallets count as unhealthy."""
        values = self._health.values()
        healthy = sum(1 for h in values if h.healthy)
        return healthy, len(self._health) - healthy, sum(1 for h in values if h.critical)

    async def check_all(self) -> None:
        """Read every wallet's balance now (concurrently) and update its state."""
        await asyncio.gather(*(self._check(a) for a in self.addresses))

    async def _check(self, address: str) -> None:
        before = self._health[address]
        try:
            lamports = await asyncio.wait_for(self._balance(address), self._timeout)
        except Exception as exc:  # a failed read keeps the last state, noted as stale
            self._health[address] = replace(before, last_error=f"{type(exc).__name__}: {exc}",
                                            last_checked=time.time())
            log.warning("balance check failed for server wallet %s: %s", truncate(address),
                        type(exc).__name__)
            return
        sol = lamports / LAMPORTS_PER_SOL
        after = WalletHealth(address, sol, healthy=sol >= self._min_healthy,
                             critical=sol <= self._critical, last_checked=time.time())
        self._health[address] = after
        first = before.last_checked is None
        if after.status != before.status or first:
            level = logging.INFO if after.healthy else (
                logging.ERROR if after.critical else logging.WARNING)
            log.log(level, "server wallet %s is %s (%.6f SOL)", truncate(address),
                    after.status, sol)
        if after.critical and (first or not before.critical):
            await self._notify_critical(after)

    async def _notify_critical(self, health: WalletHealth) -> None:
        if self._on_critical is None:
            return
        try:
            outcome = self._on_critical(health)
            if outcome is not None:
                await outcome
        except Exception:  # an alert failing must not stop the health checks
            log.exception("critical-balance callback failed")

    async def run(self, stopping: asyncio.Event, interval: float = CHECK_INTERVAL) -> None:
        """The background loop (a SupervisedWorker body): check, then every `interval`."""
        while not stopping.is_set():
            await self.check_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

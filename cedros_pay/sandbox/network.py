"""A sandbox that passes for devnet, with funded wallets and a matching Cedros config.

Cedros validates that the configured mint belongs to the configured network (devnet USDC on
devnet), and clients compare the genesis hash to tell clusters apart. So rather than inventing
a "localnet" identity, the sandbox wears devnet's genesis hash and puts a 6-decimal mint at the
devnet USDC address: the server runs with its normal devnet settings, only the URLs change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.chain import LAMPORTS_PER_SOL, SandboxChain

DEVNET_GENESIS_HASH = Hash.from_string("EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG")
DEVNET_USDC_MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
USDC_DECIMALS = 6

_WALLET_FILES = {"merchant": "merchant.json", "server": "server-wallet.json",
                 "payer": "payer.json"}


@dataclass(frozen=True)
class SandboxWallets:
    """merchant receives payments; server pays fees (X402_SERVER_WALLET_1); payer buys."""

    merchant: Keypair
    server: Keypair
    payer: Keypair

    @classmethod
    def generate(cls) -> SandboxWallets:
        return cls(Keypair(), Keypair(), Keypair())

    @classmethod
    def load_or_create(cls, state_dir: Path) -> SandboxWallets:
        """Keys from `state_dir` (solana-keygen JSON files), generating any that are missing,
        so a restarted sandbox keeps the addresses a config already points at."""
        state_dir.mkdir(parents=True, exist_ok=True)
        keys: dict[str, Keypair] = {}
        for role, name in _WALLET_FILES.items():
            path = state_dir / name
            if path.exists():
                keys[role] = Keypair.from_bytes(bytes(json.loads(path.read_text())))
            else:
                keys[role] = Keypair()
                write_keypair(path, keys[role])
        return cls(**keys)


def write_keypair(path: Path, keypair: Keypair) -> None:
    """solana-keygen's format (a JSON array of the 64 secret bytes), readable by owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(list(bytes(keypair)), f)


@dataclass(frozen=True)
class DevnetSandbox:
    chain: SandboxChain
    wallets: SandboxWallets
    usdc_mint: Pubkey
    merchant_usdc: Pubkey  # the merchant's associated token account
    payer_usdc: Pubkey
    decimals: int = USDC_DECIMALS


def build_devnet_sandbox(
    *,
    state_dir: Path | None = None,
    payer_usdc: int = 1_000 * 10**USDC_DECIMALS,
    payer_lamports: int = 5 * LAMPORTS_PER_SOL,
    server_lamports: int = 10 * LAMPORTS_PER_SOL,
    merchant_lamports: int = 1 * LAMPORTS_PER_SOL,
    token_program: Pubkey = spl.TOKEN_PROGRAM_ID,
) -> DevnetSandbox:
    """A fresh devnet look-alike: USDC mint, funded wallets, merchant and payer USDC accounts.

    Balances start over on every build; only the keys persist (when `state_dir` is given).
    """
    wallets = (SandboxWallets.load_or_create(state_dir) if state_dir is not None
               else SandboxWallets.generate())
    chain = SandboxChain(genesis_hash=DEVNET_GENESIS_HASH)
    mint = chain.create_mint(DEVNET_USDC_MINT, USDC_DECIMALS, program=token_program)
    for keypair, lamports in ((wallets.payer, payer_lamports), (wallets.server, server_lamports),
                              (wallets.merchant, merchant_lamports)):
        if lamports:
            chain.airdrop(keypair.pubkey(), lamports)
    merchant_usdc = chain.create_token_account(wallets.merchant.pubkey(), mint)
    payer_ata = chain.create_token_account(wallets.payer.pubkey(), mint)
    if payer_usdc:
        chain.mint_to(wallets.payer.pubkey(), mint, payer_usdc)
    return DevnetSandbox(chain, wallets, mint, merchant_usdc, payer_ata)


@dataclass(frozen=True)
class SandboxConfigFiles:
    config: Path  # YAML fragment with the x402 section
    env: Path  # X402_SERVER_WALLET_1 and CEDROS_X402_* overrides
    keypairs: dict[str, Path]


def cedros_x402_settings(sandbox: DevnetSandbox, rpc_url: str, ws_url: str
                         ) -> dict[str, object]:
    return {
        "network": "devnet",
        "rpc_url": rpc_url,
        "ws_url": ws_url,
        "payment_address": str(sandbox.wallets.merchant.pubkey()),
        "token_mint": str(sandbox.usdc_mint),
        "token_decimals": sandbox.decimals,
    }


def write_cedros_config(sandbox: DevnetSandbox, directory: Path, *, rpc_url: str,
                        ws_url: str) -> SandboxConfigFiles:
    """Write the config fragment, env file and keypairs that point Cedros at this sandbox.

    The server wallet goes only into the env file: Cedros reads server keys from
    X402_SERVER_WALLET_N and refuses them in YAML.
    """
    directory.mkdir(parents=True, exist_ok=True)
    settings = cedros_x402_settings(sandbox, rpc_url, ws_url)
    config = directory / "cedros-sandbox.yaml"
    config.write_text(
        "# Cedros Pay x402 settings for the local sandbox chain (written by cedros-pay sandbox).\n"
        "# Merge into your config, or use the CEDROS_X402_* variables in sandbox.env.\n"
        + yaml.safe_dump({"x402": settings}, sort_keys=False))
    env_lines = [f"X402_SERVER_WALLET_1={sandbox.wallets.server}"]
    # token_decimals has no environment variable; 6 is every config's default anyway.
    env_lines += [f"CEDROS_X402_{key.upper()}={value}" for key, value in settings.items()
                  if key != "token_decimals"]
    env = directory / "sandbox.env"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(env_lines) + "\n")
    keypairs: dict[str, Path] = {}
    for role, name in _WALLET_FILES.items():
        keypairs[role] = directory / name
        write_keypair(keypairs[role], getattr(sandbox.wallets, role))
    return SandboxConfigFiles(config, env, keypairs)

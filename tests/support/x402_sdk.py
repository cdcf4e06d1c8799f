"""A virtual environment with the official x402 SDK, for the interoperability tests.

The SDK's Solana code needs solana<0.40 while Cedros runs on solana 0.41, so the SDK cannot
live in the main environment. `ensure_sdk_venv()` creates `.venv-x402/` at the repository
root on first use (installing from PyPI, the only network access the tests make) and reuses
it afterwards; a marker file records what was installed, so a changed pin rebuilds it.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-x402"
REQUIREMENTS = ("x402[svm,httpx]==2.25.0", "solana>=0.36,<0.40")
CLIENT_SCRIPT = Path(__file__).with_name("x402_official_client.py")


def sdk_python() -> Path:
    return VENV / "bin" / "python"


def ensure_sdk_venv() -> Path:
    """The SDK venv's python, building the venv if missing or stale (under a file lock, so
    concurrent test sessions do not build it twice)."""
    marker = VENV / ".installed"
    wanted = "\n".join(REQUIREMENTS)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".venv-x402.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted and sdk_python().exists():
            return sdk_python()
        if not sdk_python().exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        result = subprocess.run(
            [str(sdk_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *REQUIREMENTS], capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise RuntimeError("could not install the official x402 SDK into .venv-x402")
        marker.write_text(wanted)
    return sdk_python()

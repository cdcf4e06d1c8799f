"""`cedros-pay pay`: what it says before any network traffic (the paying runs are e2e)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from solders.keypair import Keypair

from cedros_pay.sandbox.network import write_keypair
from cedros_pay.sandbox.payer import OFFICIAL_DOC, main, show_amount


def test_official_without_the_sdk_is_one_line_pointing_at_the_doc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "x402", None)  # `import x402` now fails, as if absent
    keypair = tmp_path / "payer.json"
    write_keypair(keypair, Keypair())
    # Port 9 (discard): had it tried the network before the SDK, it would fail differently.
    code = main(["demo-api-call", "--official", "--keypair", str(keypair),
                 "--server", "http://127.0.0.1:9", "--rpc-url", "http://127.0.0.1:9"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("cedros-pay pay: --official needs the official x402 SDK")
    assert OFFICIAL_DOC in err and (Path(__file__).parents[2] / OFFICIAL_DOC).is_file()


def test_unreadable_keypair_is_reported_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "payer.json"
    bad.write_text(json.dumps([1, 2, 3]))
    assert main(["demo-article", "--json", "--keypair", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("cedros-pay pay: cannot read keypair:")


@pytest.mark.parametrize(("atomic", "decimals", "symbol", "shown"), [
    (1_000_000, 6, "USDC", "1.000000 USDC (1000000 atomic)"),
    ("10000", 6, "USDC", "0.010000 USDC (10000 atomic)"),
    (5, 0, "", "5 (5 atomic)"),
    (10000, None, "", "10000 atomic units"),
])
def test_amounts_show_major_units_beside_the_atomic_count(
        atomic: int | str, decimals: int | None, symbol: str, shown: str) -> None:
    assert show_amount(atomic, decimals, symbol) == shown

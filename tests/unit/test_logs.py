"""Structured logs: JSON lines carrying the request id, wallets truncated."""

from __future__ import annotations

import json
import logging

from cedros_pay.logs import JsonFormatter, request_id_var, truncate_wallet


def test_wallet_is_truncated_as_spec_14_shows() -> None:
    assert truncate_wallet("7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpT") == "7cVf...jpT"
    assert truncate_wallet("short") == "short"


def test_json_line_has_standard_fields_request_id_and_extras() -> None:
    record = logging.LogRecord("cedros_pay.test", logging.WARNING, __file__, 1,
                               "paid %s", ("r1",), None)
    record.wallet = "7cVf...jpT"
    token = request_id_var.set("req_" + "a" * 32)
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["level"] == "warn"
    assert entry["message"] == "paid r1"
    assert entry["request_id"] == "req_" + "a" * 32
    assert entry["wallet"] == "7cVf...jpT"
    assert entry["timestamp"].endswith("Z")

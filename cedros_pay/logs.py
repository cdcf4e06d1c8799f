"""Structured logging (spec 14): one JSON object per line, request id on every line.

The request id lives in a context variable set by the request middleware, so any log call
made while serving a request carries it without being passed around.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("cedros_request_id", default=None)

# Attributes every LogRecord has; anything else passed via `extra=` becomes a JSON field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def truncate_wallet(addr: str) -> str:
    """`7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpT` -> `7cVf...jpT` (spec 14): enough to correlate."""
    return addr if len(addr) <= 8 else f"{addr[:4]}...{addr[-3:]}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": _level_name(record.levelno),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := request_id_var.get()) is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD and not k.startswith("_"))
        rid = request_id_var.get()
        line = (f"{datetime.fromtimestamp(record.created, UTC):%H:%M:%S} "
                f"{_level_name(record.levelno):5} {record.getMessage()}"
                f"{' ' + extras if extras else ''}{f' request_id={rid}' if rid else ''}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _level_name(levelno: int) -> str:
    return {logging.WARNING: "warn", logging.CRITICAL: "error"}.get(
        levelno, logging.getLevelName(levelno).lower())


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route the root logger (ours, uvicorn's, SQLAlchemy's) through one formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter() if fmt == "console" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": "WARNING"}.get(level.lower(), level.upper()))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access log; uvicorn's would duplicate it without the id.
    logging.getLogger("uvicorn.access").disabled = True
    # Library chatter (every SQLite call, Alembic plugin set-up) drowns our own debug lines.
    for name in ("aiosqlite", "asyncio", "alembic", "sqlalchemy", "httpx", "httpcore",
                 "websockets", "httpx2"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # The Stripe SDK's debug lines carry whole request bodies and API objects (customer
    # emails, metadata, client secrets): never below info, even at debug.
    logging.getLogger("stripe").setLevel(max(root.level, logging.INFO))

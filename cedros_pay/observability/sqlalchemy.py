"""Database instrumentation (spec 14): every statement and transaction of one engine
becomes a `DatabaseQueryEvent`; the pool's open/idle counts feed the pool gauges.

Listening on the engine, not on the repositories, times what the database actually runs,
whatever repository code issued it. Operation and table come from the SQL text; a table
label is only ever a bare identifier (the metrics bound how many distinct ones they keep).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from cedros_pay.observability.hooks import DatabaseHook, DatabaseQueryEvent
from cedros_pay.storage.sql.inline_sqlite import InlineEngine

SqlEngine = AsyncEngine | InlineEngine

_OPERATIONS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
_TABLE = {
    "SELECT": re.compile(r"\bFROM\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE),
    "INSERT": re.compile(r"\bINTO\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE),
    "UPDATE": re.compile(r"^\s*UPDATE\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE),
}
_STARTED = "cedros_query_started"


def classify(statement: str) -> tuple[str, str]:
    """("SELECT", "payment_transactions") from the SQL text; "OTHER"/"" when unsure."""
    words = statement.lstrip().split(None, 1)
    operation = words[0].upper() if words else ""
    if operation not in _OPERATIONS:
        return "OTHER", ""
    match = _TABLE[operation].search(statement)
    return operation, match.group(1).lower() if match else ""


def instrument_engine(engine: SqlEngine, hooks: DatabaseHook) -> Callable[[], None]:
    """Attach the listeners; returns a function that detaches them."""
    sync = engine.sync_engine

    def before(conn: Connection, _cursor: Any, _statement: str, _params: Any,
               _context: Any, _many: bool) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def elapsed(conn: Connection | None) -> float:
        stack = conn.info.get(_STARTED) if conn is not None else None
        return time.perf_counter() - stack.pop() if stack else 0.0

    def after(conn: Connection, _cursor: Any, statement: str, _params: Any,
              _context: Any, _many: bool) -> None:
        operation, table = classify(statement)
        hooks.on_database_query(DatabaseQueryEvent(operation, table, elapsed(conn)))

    def failed(ctx: ExceptionContext) -> None:
        operation, table = classify(ctx.statement or "")
        hooks.on_database_query(DatabaseQueryEvent(
            operation, table, elapsed(ctx.connection),
            error=type(ctx.original_exception).__name__))

    def transaction(operation: str) -> Callable[[Connection], None]:
        def record(_conn: Connection) -> None:
            hooks.on_database_query(DatabaseQueryEvent(operation, "", 0.0))
        return record

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", before), ("after_cursor_execute", after),
        ("handle_error", failed), ("begin", transaction("BEGIN")),
        ("commit", transaction("COMMIT")), ("rollback", transaction("ROLLBACK")),
    ]
    for name, fn in listeners:
        event.listen(sync, name, fn)

    def detach() -> None:
        for name, fn in listeners:
            if event.contains(sync, name, fn):
                event.remove(sync, name, fn)

    return detach


def pool_counts(engine: SqlEngine) -> tuple[Callable[[], float], Callable[[], float]]:
    """Readers for open and idle connections (0 for pools that do not count)."""
    pool = engine.sync_engine.pool

    def read(name: str) -> float:
        fn = getattr(pool, name, None)
        return float(fn()) if callable(fn) else 0.0

    return (lambda: read("checkedout") + read("checkedin")), (lambda: read("checkedin"))


def engine_of(store: object) -> SqlEngine | None:
    """The SQL engine behind a Store, if it has one (memory stores have none)."""
    engine = getattr(store, "engine", None)
    if isinstance(engine, AsyncEngine | InlineEngine):
        return engine
    # SQL stores close by disposing their engine; its bound method leads back to it.
    owner = getattr(getattr(store, "close", None), "__self__", None)
    return owner if isinstance(owner, AsyncEngine | InlineEngine) else None

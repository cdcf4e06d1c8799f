"""GraphQL errors in spec codes (spec 15): `extensions.code` as REST's `error.code`.

A `CedrosError` keeps its message and gets `code`, `retryable` and `details`. Errors the
document itself caused (syntax, validation, limits, variable coercion) are `invalid_field`:
bad input is never a server error. Anything else raised while resolving is a bug: its
traceback is logged here and the client sees only `internal_error`.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.schema import StreamResult
from strawberry.types.execution import ExecutionContext, ExecutionResult

from cedros_pay.core.errors import CedrosError, ErrorCode

log = logging.getLogger("cedros_pay.graphql")


def spec_extensions(code: ErrorCode, details: dict[str, Any] | None = None) -> dict[str, Any]:
    ext: dict[str, Any] = {"code": code.value, "retryable": code.retryable}
    if details:
        ext["details"] = details
    return ext


def _replace(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(message, nodes=error.nodes, source=error.source,
                        positions=error.positions, path=error.path, extensions=extensions)


def shape_error(error: GraphQLError) -> GraphQLError:
    """One error as the client may see it."""
    original = error.original_error
    if isinstance(original, CedrosError):
        if original.http_status >= 500:
            log.error("graphql field failed", extra={"code": original.code.value,
                                                     "error": original.message,
                                                     "path": error.path})
        return _replace(error, original.message,
                        spec_extensions(original.code, original.details))
    if error.extensions and "code" in error.extensions:  # e.g. IsAdmin's refusal
        error.extensions.setdefault("retryable", False)
        return error
    if error.path is None:  # the document or its variables, before any resolver ran
        return _replace(error, error.message, spec_extensions(ErrorCode.INVALID_FIELD))
    log.error("unhandled exception in graphql resolver", exc_info=original or error,
              extra={"path": error.path})
    internal = CedrosError(ErrorCode.INTERNAL_ERROR)
    return _replace(error, internal.message, spec_extensions(internal.code))


class CedrosSchema(strawberry.Schema):
    """A schema whose every answer carries spec codes.

    The errors are rewritten around `execute` rather than in an extension's
    `on_operation`: a parse failure in the parse hook (`PreparedDocuments`: syntax, the
    token limit) escapes the operation hook and would otherwise reach the client unshaped.
    """

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = [shape_error(e) for e in result.errors]
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> StreamResult:
        """Subscriptions (and anything sent over a WebSocket) come through here, not
        `execute`: each streamed result gets the same spec codes."""
        return _shaped(await super().stream(*args, **kwargs))

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        """Strawberry would log every error with a traceback, expected ones included;
        `shape_error` logs only the ones that are bugs."""
        return None


async def _shaped(results: StreamResult) -> StreamResult:
    # aclosing: a client that unsubscribes must reach the resolver's `finally` blocks.
    async with aclosing(results):
        async for result in results:
            if isinstance(result, ExecutionResult) and result.errors:
                result.errors = [shape_error(e) for e in result.errors]
            yield result

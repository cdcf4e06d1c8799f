"""GraphQL errors in spec codes (spec 15): `extensions.code` as REST's `error.code`.

A `CedrosError` keeps its message and gets `code`, `retryable` and `details`. Errors the
document itself caused (syntax, validation, limits, variable coercion) are `invalid_field`:
bad input is never a server error. Anything else raised while resolving is a bug: its
traceback is logged here and the client sees only `internal_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

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


class SpecErrors(SchemaExtension):
    """Rewrite the operation's errors once it has finished (after execution or refusal)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [shape_error(e) for e in errors]


class CedrosSchema(strawberry.Schema):
    """Strawberry logs every error with its traceback, expected ones included;
    `SpecErrors` logs only the ones that are bugs."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        return None

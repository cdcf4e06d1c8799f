"""Documents parsed, validated and planned once, for the endpoint's direct execution.

A dashboard sends the same few documents over and over. Each distinct document is
parsed (with the token cap), validated (graphql-core's rules, Strawberry's two, our
depth and alias rules: what the schema's extensions apply) and given its plan memo
(schema/plans.py) once, and kept in a bounded memo owned by the endpoint. A document
that fails to parse or validate is not prepared: Strawberry's own path answers it, so its
errors read exactly as they always have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql.validation import ASTValidationRule
from strawberry.schema.schema import validate_document

from cedros_pay.core.bounded import BoundedMemo
from cedros_pay.schema.limits import MAX_TOKENS
from cedros_pay.schema.plans import Plans

# Top-level fields whose answer is a function of the tenant's catalog snapshot alone:
# the listing is built from the snapshot and takes no admin check and no per-user data.
CATALOG_FIELDS = frozenset({"products", "__typename"})


def reads_catalog_only(operation: OperationDefinitionNode) -> bool:
    """A query that selects nothing but `CATALOG_FIELDS` at its top level (anything
    below them is the listing's data)."""
    return operation.operation is OperationType.QUERY and all(
        isinstance(s, FieldNode) and s.name.value in CATALOG_FIELDS
        for s in operation.selection_set.selections)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    document: DocumentNode
    plans: Plans = field(default_factory=dict)  # filled by the executions (plans.py)
    # ids of the operations `reads_catalog_only` accepts (the document keeps them alive)
    catalog_only: frozenset[int] = frozenset()

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names (or the only one), as graphql-core picks it."""
        return get_operation_ast(self.document, name)


class Documents:
    """The prepared documents of one schema, at most `limit` of them."""

    def __init__(self, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...],
                 limit: int) -> None:
        self._schema = schema
        self._rules = (*specified_rules, *rules)
        self._memo: BoundedMemo[str, PreparedDocument | None] = BoundedMemo(limit)

    def prepare(self, query: str) -> PreparedDocument | None:
        """The prepared `query`, or None when it does not parse or validate."""
        if query in self._memo:
            return self._memo.get(query)
        return self._memo.put(query, self._prepare(query))

    def _prepare(self, query: str) -> PreparedDocument | None:
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError:
            return None
        if validate_document(self._schema, document, self._rules):
            return None
        cached = frozenset(id(d) for d in document.definitions
                           if isinstance(d, OperationDefinitionNode) and reads_catalog_only(d))
        return PreparedDocument(document, catalog_only=cached)

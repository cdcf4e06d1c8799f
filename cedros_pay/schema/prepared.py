"""Documents parsed, validated and planned once: the endpoint's one document memo.

A dashboard sends the same few documents over and over. Each distinct document that
parses (with the token cap) is validated (graphql-core's rules, Strawberry's two, our depth
and alias rules) and given its plan memo (schema/plans.py) once, and kept in a bounded memo
owned by the endpoint. Both ways a document is executed read it: the endpoint's direct
path (a document without validation errors), and Strawberry's view through the
`PreparedDocuments` extension, which answers the view's parse and validation steps from
the memo. A document that does not parse is not kept: it is parsed again, and fails
again, each time (its error must be raised afresh, and such documents are not what a
dashboard repeats).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from strawberry.extensions import SchemaExtension
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
    errors: tuple[GraphQLError, ...]  # validation's; none: the direct path may run it
    plans: Plans = field(default_factory=dict)  # filled by the executions (plans.py)
    # ids of the operations `reads_catalog_only` accepts (the document keeps them alive)
    catalog_only: frozenset[int] = frozenset()

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names (or the only one), as graphql-core picks it."""
        return get_operation_ast(self.document, name)


class Documents:
    """The prepared documents of one schema, at most `limit` of them."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], limit: int) -> None:
        self._rules = (*specified_rules, *rules)
        self._memo: BoundedMemo[str, PreparedDocument] = BoundedMemo(limit)

    def prepare(self, query: str, schema: GraphQLSchema) -> PreparedDocument:
        """`query` parsed and validated against `schema` (always the endpoint's one);
        raises parsing's `GraphQLError` when it does not parse."""
        found = self._memo.get(query)
        if found is not None:
            return found
        document = parse(query, max_tokens=MAX_TOKENS)
        errors = tuple(validate_document(schema, document, self._rules))
        cached = frozenset(id(d) for d in document.definitions
                           if isinstance(d, OperationDefinitionNode) and reads_catalog_only(d))
        return self._memo.put(query, PreparedDocument(document, errors, catalog_only=cached))


class PreparedDocuments(SchemaExtension):
    """Strawberry's parse and validation steps, answered from the endpoint's memo (made
    per request by the schema, around the one shared `Documents`)."""

    def __init__(self, documents: Documents) -> None:
        self._documents = documents
        self._prepared: PreparedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:  # no query: Strawberry's own refusal
            self._prepared = self._documents.prepare(context.query, context.schema._schema)
            context.graphql_document = self._prepared.document
        yield

    def on_validate(self) -> Iterator[None]:
        if self._prepared is not None:
            self.execution_context.pre_execution_errors = list(self._prepared.errors)
        yield

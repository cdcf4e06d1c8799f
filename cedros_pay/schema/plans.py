"""Plain-data subtrees of a prepared document, completed without graphql-core's per-field
machinery.

Most of a dashboard's answer is data: below `products`, every field of `Connection`,
`Edge`, `Product` and `Money` is a plain attribute of an object a resolver already
built. graphql-core still runs each one through `execute_field`: a resolve-info tuple, the
resolver wrapper, an awaitable check and `complete_value`'s type dispatch, about ten
Python frames per field. A `Plan` is that subtree worked out once per document: for each
selected field, the attribute to read and how to complete its value (non-null check, list,
leaf coercion, or a nested plan), so completing it is one closure call per object or list,
with the leaves completed inline.

A plan covers a selection only where the answer cannot depend on anything but the values
read: every field is a Strawberry basic field (no resolver, no permission, no argument),
no directive, no fragment, one node per response key, object types without `is_type_of`.
Anything else keeps graphql-core's path. A value a plan does not expect (a null for a
non-null field, a scalar that does not coerce, a non-list for a list) abandons the plan for
that object and graphql-core completes it again, which then reports the error exactly as
it always has: reading plain attributes twice has no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

Complete = Callable[[Any], Any]
# A compiled plan, or None where the selection must take graphql-core's path, by object
# type and the id of the selecting node: AST nodes hash their whole subtree, and the
# prepared document that owns this memo keeps its nodes alive, so the ids stay theirs.
Plans = dict[tuple[GraphQLObjectType, int], "Complete | None"]

STRAWBERRY_FIELD = "strawberry-definition"


class Irregular(Exception):
    """A value the plan does not expect; graphql-core completes the object instead."""


def _unused(value: Any) -> Any:  # pragma: no cover - `__typename` is a constant
    raise AssertionError("never called")


def _non_null(inner: Complete) -> Complete:
    def complete(value: Any) -> Any:
        done = inner(value)
        if done is None:
            raise Irregular
        return done
    return complete


def _list(inner: Complete) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if type(value) is not list and type(value) is not tuple:
            raise Irregular
        return [inner(item) for item in value]
    return complete


def _leaf(coerce: Callable[[Any], Any]) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise Irregular
        done = coerce(value)
        if done is None or done is Undefined:
            raise Irregular
        return done
    return complete


# How an object plan completes one field (the leaves inline: one frame fewer each).
TYPENAME, LEAF, NON_NULL_LEAF, NESTED = range(4)
Field = tuple[str, str, int, Callable[[Any], Any]]  # key, attribute, how, coerce/complete


def _object(type_name: str, fields: tuple[Field, ...]) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise Irregular
        out: dict[str, Any] = {}
        for key, attr, how, fn in fields:
            if how == TYPENAME:
                out[key] = type_name
                continue
            item = getattr(value, attr)
            if how == NESTED:
                out[key] = fn(item)
            elif item is None or item is Undefined:
                if how == NON_NULL_LEAF:
                    raise Irregular
                out[key] = None
            elif isinstance(item, Exception):
                raise Irregular
            else:
                done = fn(item)
                if done is None or done is Undefined:
                    raise Irregular
                out[key] = done
        return out
    return complete


def _field(key: str, attr: str, kind: GraphQLOutputType, node: FieldNode) -> Field | None:
    leaf = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    if is_leaf_type(leaf):
        if node.selection_set is not None:
            return None
        how = NON_NULL_LEAF if leaf is not kind else LEAF
        return key, attr, how, leaf.coerce_output_value
    inner = compile_type(kind, node)
    return (key, attr, NESTED, inner) if inner is not None else None


def compile_type(kind: GraphQLOutputType, node: FieldNode) -> Complete | None:
    """How to complete a value of `kind` selected by `node`; None: not plain data."""
    if isinstance(kind, GraphQLNonNull):
        inner = compile_type(kind.of_type, node)
        return _non_null(inner) if inner is not None else None
    if isinstance(kind, GraphQLList):
        inner = compile_type(kind.of_type, node)
        return _list(inner) if inner is not None else None
    if is_leaf_type(kind):
        if node.selection_set is not None:
            return None
        return _leaf(kind.coerce_output_value)
    if isinstance(kind, GraphQLObjectType):
        return compile_object(kind, node)
    return None  # interfaces and unions pick a runtime type per value


def compile_object(kind: GraphQLObjectType, node: FieldNode) -> Complete | None:
    """The plan for `node`'s selection on an object of type `kind`, or None."""
    if kind.is_type_of is not None or node.selection_set is None:
        return None
    fields: list[Field] = []
    seen: set[str] = set()
    for selection in node.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if key in seen:  # merged selections: graphql-core's field collection decides
            return None
        seen.add(key)
        name = selection.name.value
        if name == "__typename":
            fields.append((key, "", TYPENAME, _unused))
            continue
        field = kind.fields.get(name)
        definition = field.extensions.get(STRAWBERRY_FIELD) if field else None
        if (field is None or definition is None or selection.arguments or field.args
                or not getattr(field.resolve, "_is_default", False)
                or not definition.is_basic_field):
            return None
        planned = _field(key, definition.python_name, field.type, selection)
        if planned is None:
            return None
        fields.append(planned)
    return _object(kind.name, tuple(fields))


class PlannedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, completing plain-data objects by their plan.

    `plans` is the prepared document's memo (filled on first use, shared by every
    execution of that document); without one, execution is Strawberry's own.
    """

    def __init__(self, *args: Any, plans: Plans | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans = plans

    def complete_object_value(self, return_type: GraphQLObjectType,
                              field_details_list: FieldDetailsList,
                              info: GraphQLResolveInfo[Any], path: Path, result: Any,
                              position_context: Any) -> Any:
        plans = self.plans
        if plans is not None and len(field_details_list) == 1:
            detail = field_details_list[0]
            key = (return_type, id(detail.node))
            if key in plans:
                plan = plans[key]
            else:
                plan = plans[key] = (compile_object(return_type, detail.node)
                                     if detail.defer_usage is None
                                     and detail.fragment_variable_values is None else None)
            if plan is not None:
                try:
                    return plan(result)
                except Exception:  # Irregular, or a coercion error: see the module docstring
                    pass
        return super().complete_object_value(return_type, field_details_list, info, path,
                                             result, position_context)

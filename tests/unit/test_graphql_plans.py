"""Plain-data plans against graphql-core's own completion, on random data and selections.

The plans (schema/plans.py) must produce exactly what graphql-core produces, data and
errors alike, including for values a plan does not expect (nulls in non-null fields,
scalars that do not coerce, a non-list for a list, an exception as a value): those make
the plan give the object back to graphql-core.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import strawberry
from graphql import ExecutionResult, execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from cedros_pay.schema.plans import PlannedExecutionContext, Plans


@strawberry.type
class Leaf:
    name: str
    count: int | None
    tags: list[str]


@strawberry.type
class Node:
    id: strawberry.ID
    leaf: Leaf
    maybe: Leaf | None
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None] | None

    @strawberry.field
    def shout(self) -> str:  # a resolver: the object it is on takes graphql-core's path
        return self.id.upper()


@strawberry.type
class Query:
    @strawberry.field
    def nodes(self, info: strawberry.Info) -> list[Node | None]:
        data: list[Node | None] = info.root_value
        return data


SCHEMA = strawberry.Schema(query=Query)
LEAF_FIELDS = ("name", "count", "tags", "__typename")
NODE_FIELDS = ("id", "leaf", "maybe", "leaves", "maybeLeaves", "__typename", "shout")


def odd_value(rng: random.Random) -> Any:
    return rng.choice([None, 2**40, "text", ["a", 1], {"k": 1}, ValueError("boom"), 3.5])


def leaf(rng: random.Random, odd: float) -> Any:
    if rng.random() < odd / 3:
        return odd_value(rng)
    return SimpleNamespace(
        name=odd_value(rng) if rng.random() < odd else f"n{rng.randint(0, 9)}",
        count=odd_value(rng) if rng.random() < odd else rng.choice([None, 7]),
        tags=odd_value(rng) if rng.random() < odd else ["x", "y"][:rng.randint(0, 2)])


def node(rng: random.Random, odd: float) -> Any:
    if rng.random() < odd / 4:
        return None
    return SimpleNamespace(
        id=odd_value(rng) if rng.random() < odd else f"id{rng.randint(0, 99)}",
        leaf=leaf(rng, odd), maybe=rng.choice([None, leaf(rng, odd)]),
        leaves=[leaf(rng, odd) for _ in range(rng.randint(0, 3))],
        maybe_leaves=rng.choice([None, [leaf(rng, odd), None]]))


def selection(rng: random.Random) -> str:
    leaf_sel = " ".join(rng.sample(LEAF_FIELDS, rng.randint(1, len(LEAF_FIELDS))))
    parts = []
    for name in rng.sample(NODE_FIELDS, rng.randint(1, len(NODE_FIELDS))):
        alias = f"x{len(parts)}: " if rng.random() < 0.2 else ""
        sub = f" {{ {leaf_sel} }}" if name in ("leaf", "maybe", "leaves", "maybeLeaves") else ""
        parts.append(f"{alias}{name}{sub}")
    if rng.random() < 0.1:  # a fragment: not plain, graphql-core's path throughout
        parts.append("...on Node { id }")
    return f"{{ nodes {{ {' '.join(parts)} }} }}"


def run(query: str, data: list[Any], plans: Plans | None) -> ExecutionResult:
    kwargs: dict[str, Any] = ({"executor_class": PlannedExecutionContext, "plans": plans}
                              if plans is not None else
                              {"executor_class": StrawberryGraphQLCoreExecutionContext})
    result = execute(SCHEMA._schema, parse(query), root_value=data, **kwargs)
    assert isinstance(result, ExecutionResult)
    return result


def test_plans_answer_as_graphql_core_on_random_data() -> None:
    rng = random.Random(20261202)
    used = 0
    for trial in range(400):
        query = selection(rng)
        odd = 0.0 if trial % 3 == 0 else 0.15
        data = [node(rng, odd) for _ in range(rng.randint(0, 4))]
        plans: Plans = {}
        planned, plain = run(query, data, plans), run(query, data, None)
        assert planned.data == plain.data, query
        assert [e.formatted for e in planned.errors or []] == \
            [e.formatted for e in plain.errors or []], query
        used += sum(plan is not None for plan in plans.values())
    assert used > 100  # the plans were taken, not only fallen back from


def test_a_regular_listing_is_completed_by_its_plan_alone() -> None:
    rng = random.Random(7)
    data = [node(rng, 0.0) for _ in range(3)]
    plans: Plans = {}
    query = "{ nodes { id leaf { name tags } leaves { count __typename } } }"
    result = run(query, data, plans)
    assert result.errors is None
    assert [p is not None for p in plans.values()] == [True]  # one plan: the Node selection
    assert result.data == run(query, data, None).data

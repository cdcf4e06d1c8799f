"""hypothesis-graphql against /graphql of a real `cedros-pay serve --sandbox` (SQLite).

Every query and every mutation field of the schema, with generated arguments and
selections, sent with admin credentials so the admin fields run their logic too. A
spec-coded error (`extensions.code`, spec 15) is the server answering bad input as it
should; what fails the test is an HTTP 5xx, an error without a code, or `internal_error`
(a resolver raised something unexpected: "Internal server error" and a logged traceback).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import graphql
import httpx
import hypothesis_graphql
from fuzz.report import record
from fuzz.server import ADMIN_KEY, fuzz_server
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cedros_pay.core.errors import ErrorCode

DEFAULT_EXAMPLES = 12
SPEC_CODES = {c.value for c in ErrorCode} - {ErrorCode.INTERNAL_ERROR.value}

# Value nodes for the schema's own scalars: well-formed values and junk.
_STRING = st.text(max_size=30)
_SCALAR_TEXT = {
    "DateTime": st.one_of(st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
                          _STRING),
    "Decimal": st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
                         _STRING),
}
_JSON = st.one_of(_STRING.map(lambda s: graphql.StringValueNode(value=s)),
                  st.integers(-10, 10).map(lambda i: graphql.IntValueNode(value=str(i))),
                  st.just(graphql.ObjectValueNode(fields=())))


def custom_scalars(schema: graphql.GraphQLSchema) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy for every scalar the schema defines beyond GraphQL's five."""
    out: dict[str, st.SearchStrategy[Any]] = {}
    for name, type_ in schema.type_map.items():
        builtin = name in graphql.specified_scalar_types
        if builtin or not isinstance(type_, graphql.GraphQLScalarType):
            continue
        out[name] = _JSON if name == "JSON" else _SCALAR_TEXT.get(name, _STRING).map(
            lambda s: graphql.StringValueNode(value=s))
    return out


def _problems(status: int, body: Any) -> list[str]:
    if status >= 500:
        return [f"HTTP {status}"]
    if not isinstance(body, dict):
        return ["the answer is not a JSON object"]
    problems = []
    for error in body.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        if code not in SPEC_CODES:
            problems.append(f"{code!r}: {error.get('message')}")
    return problems


def _probe(client: httpx.Client, url: str, strategy: st.SearchStrategy[str],
           examples: int) -> tuple[list[str], int]:
    """The first problem query for one root field, with its problems (or []), and how
    many documents were sent (hypothesis stops early once a small field is exhausted)."""
    found: list[str] = []
    sent = 0

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              derandomize=os.environ.get("CEDROS_FUZZ_SEED") != "random",
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def probe(document: str) -> None:
        nonlocal sent
        sent += 1
        resp = client.post(url, json={"query": document})
        try:
            body = resp.json()
        except ValueError:
            body = None
        problems = _problems(resp.status_code, body)
        if problems and not found:
            found.extend([document, *problems])

    probe()
    return found, sent


def _fuzz(url: str, sdl: str, examples: int) -> tuple[dict[str, list[str]], int, int]:
    """Field -> the first problem query found for it (none when all is well), how many
    root fields were fuzzed and how many documents were sent."""
    schema = graphql.build_schema(sdl)
    scalars = custom_scalars(schema)
    found: dict[str, list[str]] = {}
    fields = documents = 0
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(timeout=30, headers=headers) as client:
        for make, root in ((hypothesis_graphql.queries, schema.query_type),
                           (hypothesis_graphql.mutations, schema.mutation_type)):
            assert root is not None
            for name in sorted(root.fields):
                strategy = make(schema, fields=[name], custom_scalars=scalars,
                                allow_x00=False)
                problems, sent = _probe(client, url, strategy, examples)
                fields, documents = fields + 1, documents + sent
                if problems:
                    found[name] = problems
    return found, fields, documents


async def test_every_graphql_field_answers_bad_arguments_with_spec_codes(tmp_path: Path) -> None:
    examples = int(os.environ.get("CEDROS_FUZZ_GRAPHQL_EXAMPLES", str(DEFAULT_EXAMPLES)))
    async with fuzz_server(tmp_path) as server:
        url = f"{server.url}/graphql"
        async with httpx.AsyncClient() as client:
            intro = (await client.post(url, json={
                "query": graphql.get_introspection_query()})).json()
        sdl = graphql.print_schema(graphql.build_client_schema(intro["data"]))
        # Off the event loop: the fake Stripe the server calls runs on it.
        started = time.monotonic()
        found, fields, documents = await asyncio.to_thread(_fuzz, url, sdl, examples)
        seconds = time.monotonic() - started
        log = server.log.read_text(errors="replace")
    record("graphql", f"hypothesis-graphql, up to {examples} generated documents for each "
                      f"of {fields} root fields (queries and mutations): {documents} documents "
                      f"sent in {seconds:.0f} s, "
                      f"{len(found)} fields with an internal error or an uncoded error"
                      + "".join(f"\n- `{f}`: {p[1]}" for f, p in found.items()))
    assert fields > 20, sdl
    assert found == {}, "\n\n".join(f"{field}:\n" + "\n".join(p) for field, p in found.items())
    assert "Traceback" not in log, log[-10000:]

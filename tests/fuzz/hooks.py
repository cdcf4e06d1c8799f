"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS=fuzz.hooks): generators for the
string formats the OpenAPI document names beyond JSON Schema's own."""

from __future__ import annotations

import ast
import inspect
import re
import sys
import uuid
from types import ModuleType
from typing import Any

import base58
import schemathesis
import schemathesis.generation.jsonschema.strategy as jsonschema_strategy
from hypothesis import strategies as st

# Hypothesis describes a strategy's lambdas by parsing their module's source (ast.parse),
# and it does so deep inside nested strategies (arbitrary JSON). On CPython 3.11.7 a parse
# called from a deep stack can fail with "SystemError: AST constructor recursion depth
# mismatch" (CPython gh-106905, fixed in 3.11.8), which ends the run. Headroom alone did
# not prevent it in CI, so the sources whose lambdas get described are parsed here, from a
# shallow stack, into hypothesis's own cache of parsed sources (hypothesis is pinned in
# pyproject.toml because this reaches into its internals; without them nothing is done).
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))


def _parse_lambda_sources_now(*modules: ModuleType) -> None:
    try:
        from hypothesis.internal import lambda_sources
        cache = lambda_sources.AST_LAMBDAS_CACHE
        extract = lambda_sources.extract_all_lambdas
    except (ImportError, AttributeError):
        return
    for module in modules:
        try:
            lines = tuple(inspect.findsource(module)[0])
        except (OSError, TypeError):
            continue
        if lines not in cache:
            cache[lines] = extract(ast.parse("".join(lines)))


_parse_lambda_sources_now(
    sys.modules[__name__], jsonschema_strategy, *(
        m for name, m in list(sys.modules.items())
        if name.startswith(("hypothesis.strategies", "schemathesis.generation"))
        and isinstance(m, ModuleType) and getattr(m, "__file__", "").endswith(".py")))

# A Solana public key: base58 of 32 bytes (resolvers answer invalid_wallet otherwise).
PUBKEYS = st.binary(min_size=32, max_size=32).map(lambda b: base58.b58encode(b).decode())
schemathesis.openapi.format("solana-pubkey", PUBKEYS)

# An Idempotency-Key names one request: a client sends a new one for each new request, and
# the same key with another body is refused (422 idempotency_key_reused, tested in
# tests/api/test_idempotency_api.py). Generated data would reuse a few short values across
# unrelated requests, so a well-formed generated key is made unique; malformed ones are
# left as generated, for the negative checks.
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _KEY.fullmatch(key):
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"

"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS=fuzz.hooks): generators for the
string formats the OpenAPI document names beyond JSON Schema's own."""

from __future__ import annotations

import re
import sys
import uuid
from typing import Any

import base58
import schemathesis
from hypothesis import strategies as st


# Hypothesis describes a strategy's lambdas (for its repr) by parsing their module's source,
# and does so deep inside nested strategies (arbitrary JSON). On CPython 3.11.7 such a parse
# can fail with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905,
# fixed in 3.11.8), which ended about one REST fuzz run in seven. A description is only a
# repr, so a failed one reads as unknown instead (hypothesis is pinned in pyproject.toml, as
# this wraps one of its internals; if the internal is gone, nothing is wrapped).
def _describe_or_unknown() -> None:
    try:
        from hypothesis.internal import lambda_sources
        describe = lambda_sources._lambda_description
    except (ImportError, AttributeError):
        return

    def guarded(f: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return str(describe(f, *args, **kwargs))
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = guarded


_describe_or_unknown()
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))  # headroom for deep reprs

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

"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS=fuzz.hooks): generators for the
string formats the OpenAPI document names beyond JSON Schema's own."""

from __future__ import annotations

import sys

import base58
import schemathesis
from hypothesis import strategies as st

# Headroom for hypothesis: it parses lambda sources (ast.parse) while describing deeply
# nested strategies (arbitrary JSON), and CPython 3.11.7's AST validator turns a recursion
# limit hit there into "SystemError: AST constructor recursion depth mismatch".
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

# A Solana public key: base58 of 32 bytes (resolvers answer invalid_wallet otherwise).
PUBKEYS = st.binary(min_size=32, max_size=32).map(lambda b: base58.b58encode(b).decode())
schemathesis.openapi.format("solana-pubkey", PUBKEYS)

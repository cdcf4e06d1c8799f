"""Abuse limits for the GraphQL endpoint (DESIGN §6): a body size cap (schema/app.py), a
token cap on parsing, and depth and alias rules on validation.

Both are applied where documents are prepared (schema/prepared.py), once per distinct
document, for the endpoint's direct path and Strawberry's view alike. The rule classes
are made once per schema: the prepared documents are validated with them.
"""

from __future__ import annotations

from graphql.validation import ASTValidationRule
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

MAX_DEPTH = 10  # our deepest real query (cart -> items -> product -> price -> field) is 5
MAX_TOKENS = 2000  # GraphiQL's introspection query is ~300 tokens
MAX_ALIASES = 15  # enough for side-by-side comparisons, too few for alias amplification
CACHE_SIZE = 256  # distinct documents kept parsed and validated
# The largest body taken: introspection is ~5 KiB, a 100-item cart's variables a few KiB.
# Checked on Content-Length and again while reading, before anything is parsed.
MAX_BODY_BYTES = 256 * 1024


def limit_rules() -> tuple[type[ASTValidationRule], ...]:
    """The depth and alias rules, as classes made once per schema."""
    return (depth_rule(MAX_DEPTH, None, None), alias_rule(MAX_ALIASES))

"""Abuse limits and caches for the GraphQL endpoint (DESIGN §6).

The limits are validation rules and parse options; the caches make repeated documents
cheap (DESIGN §6 measured ~3x throughput with both). Extensions are handed to Strawberry
as factories so no state is shared between requests, but the rule *classes* are made
once per schema: `ValidationCache` keys on them, and a class made per request would turn
every lookup into a miss.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

MAX_DEPTH = 10  # our deepest real query (cart -> items -> product -> price -> field) is 5
MAX_TOKENS = 2000  # GraphiQL's introspection query is ~300 tokens
MAX_ALIASES = 15  # enough for side-by-side comparisons, too few for alias amplification
CACHE_SIZE = 256  # distinct documents kept parsed and validated


def limit_rules() -> tuple[type[ASTValidationRule], ...]:
    """The depth and alias rules, as classes made once per schema (see above)."""
    return (depth_rule(MAX_DEPTH, None, None), alias_rule(MAX_ALIASES))


def limit_extensions(rules: tuple[type[ASTValidationRule], ...],
                     ) -> list[Callable[[], SchemaExtension]]:
    """Per-request extension factories: token cap, `rules`, caches."""
    return [
        partial(MaxTokensLimiter, MAX_TOKENS),
        partial(AddValidationRules, list(rules)),
        partial(ParserCache, CACHE_SIZE),
        partial(ValidationCache, CACHE_SIZE),
    ]

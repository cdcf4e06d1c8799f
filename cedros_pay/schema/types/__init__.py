"""GraphQL object types: fields plus a `from_domain` builder per type (STYLE.md)."""

"""Small result types shared by mutations."""

from __future__ import annotations

import strawberry


@strawberry.type(description="A soft delete: the record stays, marked inactive (spec 23).")
class Deleted:
    id: str
    deleted: bool

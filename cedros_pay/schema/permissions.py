"""Admin-only fields (DESIGN §6): a refusal is an error with code `unauthorized`, never data."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLErrorExtensions
from strawberry.permission import BasePermission

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.schema.context import Context
from cedros_pay.schema.errors import spec_extensions


class IsAdmin(BasePermission):
    """A Bearer admin API key, or an Ed25519-signed `X-Message: admin:<nonce>`."""

    message = "admin credentials required"
    error_extensions: GraphQLErrorExtensions = spec_extensions(ErrorCode.UNAUTHORIZED)

    async def has_permission(self, source: Any, info: strawberry.Info[Context],
                             **kwargs: Any) -> bool:
        try:
            await info.context.admin()
        except CedrosError as exc:
            if exc.code is not ErrorCode.UNAUTHORIZED:
                raise  # e.g. `forbidden` when no admin credential is configured at all
            # The resolver says why (no credentials, bad signature, nonce used): keep it.
            extensions = dict(self.error_extensions)
            if exc.details:
                extensions["details"] = exc.details
            raise self.error_class(exc.message, extensions=extensions) from exc
        return True


# The `permission_classes` of every admin field.
ADMIN: list[type[BasePermission]] = [IsAdmin]

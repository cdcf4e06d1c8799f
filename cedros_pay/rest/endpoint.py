"""Per-handler API documentation, read by the OpenAPI generator (rest/openapi.py).

A handler declares what it really does: its body and query models (required fields are
the ones the handler refuses to go without), the success bodies by status, the spec error
codes it can answer (the generator files each under the code's HTTP status), the request
headers it reads, and whether it needs admin credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from cedros_pay.core.errors import ErrorCode

F = TypeVar("F", bound=Callable[..., Any])

# A success answer: one model, several alternatives (the first listed is the usual one),
# None for a body the document does not describe, or a media type with its own schema.
Body = type[BaseModel] | tuple[type[BaseModel], ...] | None


@dataclass(frozen=True, slots=True)
class Header:
    """A request header the handler reads."""

    name: str
    description: str = ""
    required: bool = False
    max_length: int | None = None
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.required:
            out["minLength"] = 1
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out


# Declaring it makes a POST idempotent: the idempotency middleware protects exactly the
# routes whose handlers list it (`rest/middleware/idempotency.py` `idempotent_routes`).
IDEMPOTENCY_KEY = Header("Idempotency-Key", "Replays the first answer for the same request "
                         "and key; another request with the key is 422 (1-255 visible ASCII "
                         "characters)", max_length=255, pattern=r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class EndpointDoc:
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    responses: dict[int, Body] = field(default_factory=dict)
    description: str = ""
    headers: tuple[Header, ...] = ()  # request headers the endpoint reads
    query: type[BaseModel] | None = None  # query parameters, as a model
    path: type[BaseModel] | None = None  # path parameters, when more than any text
    errors: tuple[ErrorCode, ...] = ()  # spec codes the handler itself can answer
    admin: bool = False  # needs admin credentials (Bearer key or signed admin:<nonce>)
    body_required: bool = True  # False: an empty body means `{}` (all defaults)
    html: tuple[int, ...] = ()  # statuses that answer text/html unless JSON is asked for
    response_headers: dict[int, tuple[str, ...]] = field(default_factory=dict)


def endpoint(summary: str, *, tag: str, request: type[BaseModel] | None = None,
             responses: dict[int, Body] | None = None, description: str = "",
             headers: tuple[Header | str, ...] = (), query: type[BaseModel] | None = None,
             path: type[BaseModel] | None = None,
             errors: tuple[ErrorCode, ...] = (), admin: bool = False,
             body_required: bool = True, html: tuple[int, ...] = (),
             response_headers: dict[int, tuple[str, ...]] | None = None) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__cedros_doc__ = EndpointDoc(  # type: ignore[attr-defined]
            summary=summary, tag=tag, request=request, responses=dict(responses or {}),
            description=description,
            headers=tuple(h if isinstance(h, Header) else Header(h) for h in headers),
            query=query, path=path, errors=tuple(dict.fromkeys(errors)), admin=admin,
            body_required=body_required, html=html,
            response_headers=dict(response_headers or {}))
        return fn
    return mark


def doc_of(fn: Any) -> EndpointDoc | None:
    doc = getattr(fn, "__cedros_doc__", None)
    return doc if isinstance(doc, EndpointDoc) else None


_E = ErrorCode
COUPON_ERRORS = (_E.INVALID_COUPON, _E.COUPON_NOT_FOUND, _E.COUPON_EXPIRED,
                 _E.COUPON_USAGE_LIMIT_REACHED, _E.COUPON_NOT_APPLICABLE,
                 _E.COUPON_WRONG_PAYMENT_METHOD)
# What settling an x402 payment can answer: every verification code (402), the offer's
# lookups, the chain's failures.
PAYMENT_ERRORS = (
    *(c for c in ErrorCode if c.http_status == 402),
    _E.MISSING_FIELD, _E.INVALID_FIELD, _E.INVALID_RECIPIENT, _E.INVALID_SENDER,
    _E.INVALID_AMOUNT, _E.INVALID_RESOURCE, _E.INVALID_WALLET, _E.CART_ALREADY_PAID,
    _E.REFUND_ALREADY_PROCESSED, _E.RESOURCE_NOT_FOUND, _E.PRODUCT_NOT_FOUND,
    _E.CART_NOT_FOUND, _E.REFUND_NOT_FOUND, *COUPON_ERRORS, _E.RPC_ERROR, _E.NETWORK_ERROR,
    _E.SERVER_INSUFFICIENT_FUNDS)

"""OpenAPI 3.1 generated from the route table and the endpoint models (never hand-written).

Every route whose handler carries an `@endpoint` doc appears. What a client is told is
what the server does: the request models' required fields are the ones the handler
refuses to go without; every status it can answer is listed with its real body, an error
status with the spec 15 codes it can carry (the handler's own, plus those the middleware
chain answers on every route: rate limits, request timeouts, header checks, body size).
tests/fuzz runs schemathesis against this document and a real server to keep it so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from cedros_pay.core.errors import ErrorCode
from cedros_pay.rest.endpoint import Body, EndpointDoc, doc_of
from cedros_pay.rest.models import ErrorEnvelope
from cedros_pay.x402 import http

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
REF = "#/components/schemas/{model}"
_E = ErrorCode

_STATUS_TEXT = {200: "OK", 201: "Created", 400: "Bad request", 401: "Unauthorized",
                402: "Payment required", 403: "Forbidden", 404: "Not found", 409: "Conflict",
                413: "Body too large", 429: "Too many requests",
                431: "Request headers too large",
                500: "Internal error (never a stack trace)",
                502: "An upstream service (Solana RPC, Stripe) failed",
                503: "Unavailable: the request timed out or a store is unreachable"}

# Answered on every route by the middleware chain (rest/middleware): a malformed
# X-API-Version or X-Tenant-ID header, a rate limit, the request deadline, a bug; and by
# the server before the app, a request head over 64 KiB (rest/head_limit.py).
COMMON_ERRORS: dict[int, tuple[ErrorCode, ...]] = {
    400: (_E.INVALID_FIELD,),
    429: (_E.RATE_LIMIT_EXCEEDED,),
    431: (_E.INVALID_FIELD,),
    500: (_E.INTERNAL_ERROR, _E.DATABASE_ERROR, _E.CONFIG_ERROR),
    # The route's deadline (rest/middleware/timeout.py); a PostgreSQL outage (storage/sql).
    503: (_E.SERVICE_UNAVAILABLE, _E.DATABASE_UNAVAILABLE),
}
BODY_ERRORS: dict[int, tuple[ErrorCode, ...]] = {
    400: (_E.MISSING_FIELD, _E.INVALID_FIELD), 413: (_E.INVALID_FIELD,)}
# rest/middleware/idempotency.py: a malformed key (400), the same request still running
# (409), the key reused for another request (422), a keyed body over 1 MiB (413), its
# store down (503).
IDEMPOTENCY_ERRORS: dict[int, tuple[ErrorCode, ...]] = {
    400: (_E.INVALID_FIELD,), 409: (_E.IDEMPOTENCY_KEY_IN_USE,),
    413: (_E.INVALID_FIELD,), 422: (_E.IDEMPOTENCY_KEY_REUSED,),
    503: (_E.SERVICE_UNAVAILABLE,)}

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window (when limits are on).",
    "X-RateLimit-Remaining": "Requests left in the current window (when limits are on).",
}
REFUSAL_HEADERS = {
    "Retry-After": "Seconds until the limit resets.",
    "X-RateLimit-Reset": "Unix time at which the limit resets.",
    **RATE_LIMIT_HEADERS,
}
PAYMENT_RESPONSE_HEADERS = {
    http.X_PAYMENT_RESPONSE: "Settlement result, base64 JSON (x402Version 0 and 1).",
    http.PAYMENT_RESPONSE: "Settlement result, base64 JSON (x402Version 2).",
}
HEADER_TEXT = {
    http.PAYMENT_REQUIRED: "The offer for official x402 v2 clients: base64 JSON "
                           "PaymentRequired (x402Version 2).",
    **PAYMENT_RESPONSE_HEADERS,
    **REFUSAL_HEADERS,
}

ADMIN_SCHEMES: dict[str, dict[str, Any]] = {
    "adminSigner": {"type": "apiKey", "in": "header", "name": "X-Signer",
                    "description": "Base58 Ed25519 public key of an admin signer "
                                   "(x402.payment_address or admin.public_keys)."},
    "adminSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                       "description": "Base64 signature of the exact X-Message bytes."},
    "adminMessage": {"type": "apiKey", "in": "header", "name": "X-Message",
                     "description": "`admin:<nonce>`, the nonce from POST /paywall/v1/nonce "
                                    "(purpose admin); consumed once."},
}
BEARER_SCHEME: dict[str, Any] = {"type": "http", "scheme": "bearer",
                                 "description": "An admin API key (admin.api_keys)."}


def _walk(routes: Sequence[BaseRoute], base: str = "") -> list[tuple[str, Route]]:
    found: list[tuple[str, Route]] = []
    for route in routes:
        if isinstance(route, Route):
            found.append((base + route.path, route))
        elif isinstance(route, Mount):
            found.extend(_walk(route.routes, base + route.path))
    return found


def _body_models(body: Body) -> tuple[type[BaseModel], ...]:
    if body is None:
        return ()
    return body if isinstance(body, tuple) else (body,)


def _models(docs: list[EndpointDoc]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Request bodies are documented as accepted (aliases in), responses as sent."""
    seen: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {
        ErrorEnvelope.__name__: (ErrorEnvelope, "serialization")}
    for d in docs:
        for m in (d.request, d.query, d.path):
            if m is not None:
                seen.setdefault(m.__name__, (m, "validation"))
        for body in d.responses.values():
            for m in _body_models(body):
                seen.setdefault(m.__name__, (m, "serialization"))
    return list(seen.values())


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _envelope(codes: Iterable[ErrorCode]) -> dict[str, Any]:
    """The error envelope whose `code` is one of `codes`."""
    return {"allOf": [_ref(ErrorEnvelope), {"type": "object", "properties": {"error": {
        "type": "object", "properties": {"code": {"enum": sorted({c.value for c in codes})}}}}}]}


def _errors(doc: EndpointDoc, has_body: bool,
            tenant_tokens: bool = False) -> dict[int, list[ErrorCode]]:
    by_status: dict[int, list[ErrorCode]] = {}
    groups: list[dict[int, tuple[ErrorCode, ...]]] = [COMMON_ERRORS]
    if tenant_tokens:  # rest/middleware/tenant.py: a Bearer JWT that fails its checks
        groups.append({401: (_E.UNAUTHORIZED,)})
    if has_body:
        groups.append(BODY_ERRORS)
    if doc.query is not None or doc.path is not None:
        groups.append({400: (_E.MISSING_FIELD, _E.INVALID_FIELD)})
    if any(h.name.lower() == "idempotency-key" for h in doc.headers):
        groups.append(IDEMPOTENCY_ERRORS)
    if doc.admin:
        groups.append({401: (_E.UNAUTHORIZED,), 403: (_E.FORBIDDEN,)})
    for group in groups:
        for status, codes in group.items():
            by_status.setdefault(status, []).extend(codes)
    for code in doc.errors:
        by_status.setdefault(code.http_status, []).append(code)
    return by_status


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {n: {"description": HEADER_TEXT.get(n, n), "schema": {"type": "string"}}
            for n in names}


def _content(doc: EndpointDoc, status: int, schema: dict[str, Any] | None) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if schema is not None:
        content["application/json"] = {"schema": schema}
    if status in doc.html:
        content["text/html"] = {"schema": {"type": "string"}}
    return {"content": content} if content else {}


def _responses(doc: EndpointDoc, has_body: bool, tenant_tokens: bool = False) -> dict[str, Any]:
    out: dict[int, dict[str, Any]] = {}
    for status, body in doc.responses.items():
        models = _body_models(body)
        schema: dict[str, Any] | None = None
        if len(models) == 1:
            schema = _ref(models[0])
        elif models:
            schema = {"anyOf": [_ref(m) for m in models]}
        names = list(doc.response_headers.get(status, ()))
        if 200 <= status < 300:
            names += list(RATE_LIMIT_HEADERS)
        out[status] = {"description": _STATUS_TEXT.get(status, "Response"),
                       **_content(doc, status, schema), "headers": _headers(names)}
    for status, codes in _errors(doc, has_body, tenant_tokens).items():
        envelope = _envelope(codes)
        names = list(doc.response_headers.get(status, ()))
        names += list(REFUSAL_HEADERS) if status == 429 else []
        if status in out:  # a success body or an error (e.g. 402: offer or refusal)
            existing = out[status].get("content", {}).get("application/json", {}).get("schema")
            alternatives = [*(existing.get("anyOf", [existing]) if existing else []), envelope]
            out[status].setdefault("content", {})["application/json"] = {
                "schema": {"anyOf": alternatives}}
            out[status]["headers"].update(_headers(names))
            continue
        out[status] = {"description": _STATUS_TEXT.get(status, "Response"),
                       "content": {"application/json": {"schema": envelope}},
                       "headers": _headers(names)}
    return {str(s): r for s, r in sorted(out.items())}


def _model_params(where: str, schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    if schema is None:
        return []
    required = set(schema.get("required", ()))
    params = []
    for name, sub in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": where,
                                 "required": where == "path" or name in required,
                                 "schema": {k: v for k, v in sub.items() if k != "title"}}
        if "description" in sub:
            param["description"] = sub["description"]
        params.append(param)
    return params


def _parameters(path: str, doc: EndpointDoc, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    path_schema = schemas.get(doc.path.__name__) if doc.path is not None else None
    params = _model_params("path", path_schema)
    named = {p["name"] for p in params}
    params += [{"name": n, "in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
               for n in _PARAM.findall(path) if n not in named]
    params += _model_params("query", schemas.get(doc.query.__name__) if doc.query else None)
    for h in doc.headers:
        if doc.admin and h.name in ("X-Signer", "X-Signature", "X-Message", "Authorization"):
            continue  # described by the security schemes
        param = {"name": h.name, "in": "header", "required": h.required, "schema": h.schema()}
        if h.description:
            param["description"] = h.description
        params.append(param)
    return params


def _operation(path: str, method: str, doc: EndpointDoc, schemas: dict[str, Any],
               bearer: bool, tenant_tokens: bool = False) -> dict[str, Any]:
    has_body = doc.request is not None and method in ("post", "put", "patch")
    op: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "operationId": f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
        "responses": _responses(doc, has_body, tenant_tokens),
    }
    if doc.description:
        op["description"] = doc.description
    params = _parameters(path, doc, schemas)
    if params:
        op["parameters"] = params
    if has_body and doc.request is not None:
        op["requestBody"] = {"required": doc.body_required, "content": {"application/json": {
            "schema": _ref(doc.request)}}}
    if doc.admin:
        signed: dict[str, list[str]] = {"adminSigner": [], "adminSignature": [],
                                        "adminMessage": []}
        op["security"] = [{"adminBearer": []}, signed] if bearer else [signed]
    return op


def _nullable_optionals(schemas: dict[str, Any], names: Iterable[str]) -> None:
    """`null` for an optional request field means absent (DESIGN §7): say so."""
    for name in names:
        schema = schemas.get(name, {})
        required = set(schema.get("required", ()))
        for prop, sub in schema.get("properties", {}).items():
            if prop in required or _allows_null(sub):
                continue
            default = sub.pop("default", None)
            keep = {k: sub.pop(k) for k in ("title", "description") if k in sub}
            schema["properties"][prop] = {**keep, "anyOf": [dict(sub), {"type": "null"}],
                                          **({"default": default} if default is not None
                                             else {})}


def _allows_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        s.get("type") == "null" for s in schema.get("anyOf", ()))


def build_openapi(routes: Sequence[BaseRoute], *, title: str, version: str,
                  admin_api_keys: bool = True, tenant_tokens: bool = False) -> dict[str, Any]:
    """The document for `routes`; `admin_api_keys`: the server accepts Bearer admin keys;
    `tenant_tokens`: it checks tenant JWTs, so every operation may answer 401."""
    found: list[tuple[str, Route, EndpointDoc]] = []
    for path, route in _walk(routes):
        doc = doc_of(route.endpoint)
        if doc is not None:
            found.append((path, route, doc))
    docs = [d for _, _, d in found]
    _, defs = models_json_schema(_models(docs), ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    requests = {d.request.__name__ for d in docs if d.request is not None}
    nested = {ref.rsplit("/", 1)[-1] for name in requests
              for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(schemas.get(name, {})))}
    _nullable_optionals(schemas, requests | nested)
    paths: dict[str, dict[str, Any]] = {}
    for path, route, doc in found:
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            paths.setdefault(_PARAM.sub(r"{\1}", path), {})[method.lower()] = \
                _operation(path, method.lower(), doc, schemas, admin_api_keys, tenant_tokens)
    query_models = {m.__name__ for d in docs for m in (d.query, d.path) if m is not None}
    security: dict[str, Any] = dict(ADMIN_SCHEMES)
    if admin_api_keys:
        security["adminBearer"] = BEARER_SCHEME
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {k: v for k, v in schemas.items() if k not in query_models},
            "securitySchemes": security,
        },
    }

"""OpenAPI 3.1 generated from the route table and the endpoint models (never hand-written).

Every route whose handler carries an `@endpoint` doc appears; the request and response
models contribute their JSON Schemas under `components/schemas`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from cedros_pay.rest.endpoint import EndpointDoc, doc_of

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
REF = "#/components/schemas/{model}"

_STATUS_TEXT = {200: "OK", 201: "Created", 400: "Bad request", 401: "Unauthorized",
                402: "Payment required", 403: "Forbidden", 404: "Not found", 409: "Conflict",
                413: "Body too large", 429: "Too many requests", 503: "Unavailable"}


def _walk(routes: Sequence[BaseRoute], base: str = "") -> list[tuple[str, Route]]:
    found: list[tuple[str, Route]] = []
    for route in routes:
        if isinstance(route, Route):
            found.append((base + route.path, route))
        elif isinstance(route, Mount):
            found.extend(_walk(route.routes, base + route.path))
    return found


def _models(docs: list[EndpointDoc]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Request bodies are documented as accepted (aliases in), responses as sent."""
    seen: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {}
    for d in docs:
        if d.request is not None:
            seen.setdefault(d.request.__name__, (d.request, "validation"))
        for m in d.responses.values():
            if m is not None:
                seen.setdefault(m.__name__, (m, "serialization"))
    return list(seen.values())


def _operation(path: str, method: str, doc: EndpointDoc) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "operationId": f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
        "responses": {
            str(status): {
                "description": _STATUS_TEXT.get(status, "Response"),
                **({"content": {"application/json": {
                    "schema": {"$ref": REF.format(model=model.__name__)}}}} if model else {}),
            }
            for status, model in sorted(doc.responses.items())
        },
    }
    if doc.description:
        op["description"] = doc.description
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in _PARAM.findall(path)]
    params += [{"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
               for h in doc.headers]
    if params:
        op["parameters"] = params
    if doc.request is not None and method in ("post", "put", "patch"):
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=doc.request.__name__)}}}}
    return op


def build_openapi(routes: Sequence[BaseRoute], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    docs: list[EndpointDoc] = []
    for path, route in _walk(routes):
        doc = doc_of(route.endpoint)
        if doc is None:
            continue
        docs.append(doc)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            paths.setdefault(_PARAM.sub(r"{\1}", path), {})[method.lower()] = \
                _operation(path, method.lower(), doc)
    _, schema = models_json_schema(_models(docs), ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schema.get("$defs", {})},
    }

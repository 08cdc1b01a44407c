"""The OpenAPI 3.1 document of the /v1 API, built from the route table so it cannot leave a route out."""

from __future__ import annotations

import re
from typing import Any

from core.api.table import ROUTES, Route

OPENAPI_PATH = "/v1/openapi.json"
_ERROR = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong and what to do, for a person"},
        "status": {"type": "integer"},
        "problems": {"type": "array", "items": {"type": "string"}, "description": "422: every problem, as validate"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "409: why a plan is stale"},
        "revision": {"type": "string", "description": "409: the file's current revision"},
    },
}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z]+', '_', route.path.removeprefix('/v1/')).strip('_')}",
        "summary": route.summary,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [
        {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string",
         "enum": ["0", "1", "true", "false", "yes", "no"]}}
        for name, text in route.query
    ]  # fmt: skip
    if route.write and route.path.startswith("/v1/services/"):
        params.append({
            "name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "the ETag (revision) the change is based on; 409 with the current one if the file moved",
        })  # fmt: skip
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(route.body)}}}
    for status, text in sorted(route.responses.items()):
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}} if status >= 400 else {}
        op["responses"][str(status)] = {"description": text, **({"content": content} if content else {})}
    if route.handler == "not_yet":
        op["responses"]["501"] = {"description": "not available yet: the engine has no drain or cordon"}
    if route.handler == "get_events":
        op["responses"]["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}}
    if route.write:
        op["security"] = [{"bearer": ["write"]}]
    return op


def document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    paths[OPENAPI_PATH] = {
        "get": {"operationId": "get_openapi", "summary": "This document (no token needed)", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}}}
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loadmaster",
            "version": version,
            "description": "The loadmaster engine over HTTP. Every request but this document needs "
            "`Authorization: Bearer <token>` (`loadmaster api-token`); writes need the read-write token.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
    }

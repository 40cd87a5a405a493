"""The studio app's OpenAPI 3.1 document, made from the same table as its routes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suit_controller.studio.api import CSRF_HEADER, SESSION_COOKIE, Endpoint
from suit_controller.studio.requests import BODIES

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A problem (RFC 9457): what was refused and why, in words.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


@dataclass(frozen=True)
class PageRoute:
    """A route that is not JSON: a page, a script, the console's WebSocket."""

    method: str
    path: str
    summary: str
    tag: str


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _params(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "maxLength": 80},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def _op_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path.removeprefix("/api/v1")).strip("/").replace("-", "_")
    return f"{method.lower()}_{words.replace('/', '_') or 'root'}"


def openapi_document(endpoints: Sequence[Endpoint], pages: Sequence[PageRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint and page route."""
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    # the bodies of requests.py, and those of endpoint modules of their own (the suits page)
    extra = [e.body for e in endpoints if e.body is not None and e.body not in BODIES]
    for model in dict.fromkeys([*BODIES, *extra]):
        doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(doc.pop("$defs", {}))
        schemas[model.__name__] = doc
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        op: dict[str, Any] = {
            "operationId": _op_id(e.method, e.path),
            "summary": e.summary,
            "tags": [e.tag],
            "responses": {
                str(e.status): {
                    "description": "done",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            },
        }
        if _params(e.path):
            op["parameters"] = _params(e.path)
        if e.auth in ("none", "optional"):  # optional: anyone; a login sees more (the summary)
            op["security"] = []
        else:
            op["responses"]["401"] = _problem("not logged in")
        if e.auth in ("change", "manager"):
            op["responses"]["403"] = _problem("read-only token, missing CSRF token, or role")
            op["x-csrf-header"] = CSRF_HEADER
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}
                    }
                },
            }
            op["responses"]["400"] = _problem("not JSON, or hostile JSON")
            op["responses"]["413"] = _problem("body too large")
            op["responses"]["415"] = _problem("not application/json")
            op["responses"]["422"] = _problem("a field is invalid")
        for status in e.refusals:
            op["responses"][str(status)] = _problem("refused (see detail and reasons)")
        paths.setdefault(e.path, {})[e.method.lower()] = op
    for p in pages:
        op = {
            "operationId": _op_id(p.method, p.path) + "_page",
            "summary": p.summary,
            "tags": [p.tag],
            "security": [],
            "responses": {"200": {"description": "a page, script or stylesheet"}},
        }
        if _params(p.path):
            op["parameters"] = _params(p.path)
        paths.setdefault(p.path, {})[p.method.lower()] = op
    paths["/api/v1/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document",
            "tags": ["api"],
            "security": [],
            "responses": {"200": {"description": "the OpenAPI document"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "suit-controller studio",
            "version": "1",
            "description": "The studio controller's API: what the tablet's pages use. "
            "Changes need a trainer's login (cookie and the CSRF header) or are refused; "
            "read-only API tokens (Bearer) read everything and change nothing.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "login": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"login": []}, {"token": []}],
    }

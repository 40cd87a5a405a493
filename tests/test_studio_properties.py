"""Property test against the OpenAPI document: any body its request schemas allow is
taken (never a 400/422/500), and random JSON is refused as a problem, never a 500.

hypothesis-jsonschema does not run with this Hypothesis (its private API moved),
so `from_schema` below covers the part of JSON Schema pydantic writes for the
request bodies (objects, strings with bounds and patterns, numbers with
bounds, booleans, enums, arrays, anyOf) and fails loudly on anything else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .studio_helpers import BASE, PASSWORDS, make_site

_TMP = tempfile.TemporaryDirectory(prefix="studio-props-")  # removed when the run ends
SITE, _ = make_site(Path(_TMP.name))
DOC = SITE.document
NO_ID = "00000000-0000-0000-0000-000000000000"


def body_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, url, resolved request schema) of every operation with a JSON body."""
    out = []
    schemas = DOC["components"]["schemas"]
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody")
            if body is None or path == "/api/v1/login":
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            schema = {**schemas[ref], "$defs": schemas}
            out.append((method.upper(), path.replace("{client_id}", NO_ID)
                        .replace("{class_id}", NO_ID), _resolve(schema)))  # fmt: skip
    return out


def _resolve(schema: Any) -> Any:
    """Inline `#/components/schemas/X` references (hypothesis-jsonschema wants no remote refs)."""
    defs = DOC["components"]["schemas"]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


OPERATIONS = body_operations()


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under `schema` (the subset pydantic writes; see the module's docstring)."""
    if "anyOf" in schema:
        return st.one_of([from_schema(s) for s in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(
            schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda t: schema.get("minLength", 0) <= len(t) <= schema.get("maxLength", 10**6)
            )
        return st.text(
            st.characters(exclude_categories=("Cs",)),
            min_size=schema.get("minLength", 0),
            max_size=schema.get("maxLength", 40),
        )
    if kind == "array":
        return st.lists(
            from_schema(schema["items"]),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 4), 4),
        )
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    raise AssertionError(f"from_schema does not know {schema}")


async def _send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=SITE.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        r = await c.post("/api/v1/login", json={"name": "Mia", "password": PASSWORDS["Mia"]})
        c.headers["x-csrf-token"] = r.json()["csrf"]
        return await c.request(method, url, **kwargs)


def send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return trio.run(lambda: _send(method, url, **kwargs))


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[str, str, Any]:
    method, url, schema = draw(st.sampled_from(OPERATIONS))
    return method, url, draw(from_schema(schema))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_requests())
def test_bodies_the_document_allows_are_never_refused_as_malformed(
    req: tuple[str, str, Any],
) -> None:
    method, url, body = req
    r = send(method, url, json=body)
    assert r.status_code < 500, r.text
    # allowed by the document: at most refused for what it asks (no such client, a rule)
    assert r.status_code not in (400, 415, 422), (url, body, r.text)


# text as httpx can send it (lone surrogates go raw in test_studio_api's hostile bodies)
TEXT = st.text(st.characters(exclude_categories=("Cs",)))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # raw NaN and Infinity: test_studio_api
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(OPERATIONS), json_values)
def test_any_json_is_answered_without_a_server_error(
    op: tuple[str, str, dict[str, Any]], body: Any
) -> None:
    method, url, _ = op
    r = send(method, url, json=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")


def test_the_documents_name_pattern_is_the_rule_names_are_checked_by() -> None:
    """The OpenAPI pattern for names is `unshowable`'s rule, written out for this Unicode."""
    import re

    from suit_controller.commands import SHOWABLE_PATTERN, _showable_pattern, unshowable

    assert _showable_pattern() == SHOWABLE_PATTERN
    shown = re.compile(SHOWABLE_PATTERN)
    for text in ("Zoë O'Neil-Ångström", "Ana\x1b[31m", "a\u202eb", "\U000e0001x", "a\u2028b"):
        assert (shown.fullmatch(text) is not None) == (unshowable(text) is None), text

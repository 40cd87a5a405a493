"""Clear JSON problems (RFC 9457 style) and the careful reading of request bodies.

Every error a client of the API can cause is a `Problem` with a status, a
title and a detail a person can read; none is a traceback or a 500. A body
is read with limits: at most `MAX_BODY` bytes, UTF-8, JSON without NaN or
Infinity, nested at most `MAX_DEPTH` deep, no lone surrogates in its text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from suit_controller.commands import json_depth

MAX_BODY = 64 * 1024
MAX_DEPTH = 16
PROBLEM_TYPE = "application/problem+json"
M = TypeVar("M", bound=BaseModel)


class Problem(Exception):
    """A request the API refuses: HTTP status, a short title, the detail, extra members."""

    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail or title
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"type": "about:blank", "title": self.title, "status": self.status}
        body |= {"detail": self.detail, **self.extra}
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_TYPE)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _strings(value: Any) -> Iterable[str]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


async def read_raw(request: Request) -> bytes:
    """The body's first MAX_BODY bytes, whatever its type or length header says (kept in
    `request.state.raw_body`; `request.state.too_large` if there was more).

    The command endpoint reads this before anything else: an e-stop is recognised in
    the bytes, never refused for its form (content type, size, a bad length header).
    """
    raw = bytearray()
    too_large = False
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            too_large = True
            break
    request.state.raw_body = bytes(raw[:MAX_BODY])
    request.state.too_large = too_large
    return request.state.raw_body  # type: ignore[no-any-return]


async def read_json(request: Request) -> Any:
    """The request's JSON body, or a Problem saying what is wrong with it."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise Problem(413, "Body too large", f"a request body is at most {MAX_BODY} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, "Not JSON", "send the body as application/json")
    raw = getattr(request.state, "raw_body", None)
    if raw is None:
        raw = await read_raw(request)
    if getattr(request.state, "too_large", False):
        raise Problem(413, "Body too large", f"a request body is at most {MAX_BODY} bytes")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "Not UTF-8", "the body is not valid UTF-8 text") from None
    if json_depth(text) > MAX_DEPTH:
        raise Problem(400, "Too deeply nested", f"JSON nested at most {MAX_DEPTH} deep")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise Problem(400, "Not valid JSON", str(e)) from None
    for s in _strings(data):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise Problem(400, "Broken text", "the text holds a lone surrogate") from None
    return data


def validate(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 422 Problem listing every field's problem."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
            for err in e.errors(include_url=False, include_context=False, include_input=False)
        ]
        detail = "; ".join(f"{x['field']}: {x['problem']}" for x in errors)
        raise Problem(422, "Invalid request", detail, errors=errors) from None

"""JSON in and out: error responses a person can act on, and request bodies checked before use."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

MAX_BODY = 64 * 1024  # a service definition is a few hundred bytes; anything near this is a mistake
_INT64 = (-(2**63), 2**63 - 1)  # what a TOML integer can hold


class ApiError(Exception):
    """An error answer: HTTP status, a message for people and fields for programs."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra, self.headers = status, message, extra, dict(headers or {})

    def response(self) -> web.Response:
        return json_response({"error": self.message, "status": self.status, **self.extra}, self.status, self.headers)


def json_response(doc: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(doc, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number")


def _check_numbers(value: Any, where: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        raise ApiError(400, f"{where}{value} is out of range (a whole number must fit in 64 bits)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, f"{k}: ")
    elif isinstance(value, list):
        for v in value:
            _check_numbers(v, where)


async def json_body(request: web.Request, example: str) -> dict[str, Any]:
    """The request's JSON object; 400/413 with what to send instead for anything else."""
    limit = f"the limit is {MAX_BODY} bytes; a request needs far less, e.g. {example}"
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"the body is {request.content_length} bytes; {limit}")
    raw = b""
    try:
        while len(raw) <= MAX_BODY:  # one read returns what has arrived: a body sent in pieces needs several
            piece = await request.content.read(MAX_BODY + 1 - len(raw))
            if not piece:
                break
            raw += piece
    except (ConnectionError, web.HTTPException) as exc:
        raise ApiError(400, f"the body could not be read ({exc}); send it again") from None
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"the body is more than {MAX_BODY} bytes; {limit}")
    if not raw.strip():
        raise ApiError(400, f"the body is empty; send a JSON object, e.g. {example}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); e.g. {example}"
        ) from None
    except RecursionError:
        raise ApiError(400, "the body is not usable JSON: it is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, f"the body is not usable JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
        raise ApiError(400, f"the body must be a JSON object, got {kind.get(type(body), 'null')}; e.g. {example}")
    _check_numbers(body, "")
    return body


def only_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """400 naming each unknown field, with the nearest known one."""
    unknown = [k for k in body if k not in allowed]
    if unknown:
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            parts.append(f'"{key}"' + (f' (did you mean "{close[0]}"?)' if close else ""))
        known = ", ".join(f'"{a}"' for a in allowed)
        raise ApiError(400, f"unknown field {', '.join(parts)}; the fields are: {known}", unknown=unknown)


def whole_number(body: Mapping[str, Any], key: str, *, minimum: int = 0) -> int:
    if key not in body:
        raise ApiError(400, f'"{key}" is required, e.g. {{"{key}": 3}}')
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        got = json.dumps(value)
        raise ApiError(400, f'"{key}" must be a whole number, got {got}; e.g. {{"{key}": 3}}')
    if value < minimum:
        raise ApiError(400, f'"{key}" must be {minimum} or more, got {value}')
    return value

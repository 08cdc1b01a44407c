"""Bad input of every kind gets a 4xx with a message a person can act on, never a 500 or a traceback."""

from __future__ import annotations

import asyncio

import pytest

from core.api.http import MAX_BODY

from .conftest import CLUSTER, Served

SCALE = "/v1/services/web/scale"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"replicas": 4', 400, "not valid JSON"),
        (b"{'replicas': 4}", 400, "not valid JSON"),
        (b"", 400, "the body is empty"),
        (b"   ", 400, "the body is empty"),
        (b"[4]", 400, "must be a JSON object, got an array"),
        (b'"4"', 400, "must be a JSON object, got a string"),
        (b"null", 400, "must be a JSON object, got null"),
        (b'{"replicas": NaN}', 400, "not a JSON number"),
        (b'{"replicas": 1e999}', 400, "must be a whole number"),
        (b'{"replicas": "4"}', 400, 'must be a whole number, got "4"'),
        (b'{"replicas": 4.5}', 400, "must be a whole number, got 4.5"),
        (b'{"replicas": true}', 400, "must be a whole number, got true"),
        (b'{"replicas": null}', 400, "must be a whole number, got null"),
        (b'{"replicas": -1}', 400, "must be 0 or more"),
        (b'{"replicas": 99999999999999999999999}', 400, "out of range"),
        (b"{}", 400, '"replicas" is required'),
        (b'{"replica": 4}', 400, 'unknown field "replica" (did you mean "replicas"?)'),
        (b'{"replicas": 4, "force": true}', 400, 'unknown field "force"'),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b"[" * 100_00 + b"]" * 100_00, 400, "nested too deeply"),
        (b'{"replicas": ' + b"1" * (MAX_BODY + 10) + b"}", 413, f"the limit is {MAX_BODY} bytes"),
    ],
    ids=lambda v: v[:24].decode("latin-1") if isinstance(v, bytes) else str(v)[:24],
)
async def test_bad_scale_bodies(api: Served, body: bytes, status: int, says: str) -> None:
    got, err, _ = await api.call("POST", SCALE, data=body, headers={"Content-Type": "application/json"})
    assert got == status, err
    assert says in err["error"], err
    assert "Traceback" not in err["error"]
    assert api.path.read_text(encoding="utf-8") == CLUSTER  # nothing written


async def test_a_body_streamed_without_length_is_capped(api: Served) -> None:
    async def chunks():
        for _ in range(20):
            yield b" " * 8192

    got, err, _ = await api.call("POST", SCALE, data=chunks())
    assert got == 413 and "limit" in err["error"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"command": "x", "cpu": 1, "mem": "1GiB", "replicas": "two"}, "replicas must be a whole number, got a string"),
        ({"command": "x", "cpu": 1, "mem": "1GiB", "colour": "red"}, "colour is not a known key"),
        ({"command": "x", "cpu": 1, "mem": "1GiB", "require": "zone"}, "require must be a table"),
        ({"command": "x", "cpu": [1], "mem": "1GiB"}, "cpu "),
        ({"cpu": 1, "mem": "1GiB"}, "command is required"),
    ],
)
async def test_bad_service_definitions_are_422_with_the_validate_texts(api: Served, body: dict, says: str) -> None:
    got, err, _ = await api.call("PUT", "/v1/services/x", json=body)
    assert got == 422, err
    assert any(says in p and p.startswith(f'{api.path}: services "x": ') for p in err["problems"]), err


@pytest.mark.parametrize(
    ("method", "path", "says"),
    [
        ("GET", "/v1/events?follow=maybe", "is not a flag"),
        ("GET", "/v1/events?tail=5", "unknown query parameter tail"),
        ("POST", "/v1/plans?repack=2", "is not a flag"),
        ("POST", "/v1/services/nope/scale", 'no service "nope"'),
    ],
)
async def test_bad_queries_and_names(api: Served, method: str, path: str, says: str) -> None:
    got, err, _ = await api.call(method, path, json={"replicas": 1} if "scale" in path else None)
    assert 400 <= got < 500 and says in err["error"], err


async def test_a_bad_if_match(api: Served) -> None:
    got, err, _ = await api.call("POST", SCALE, json={"replicas": 4}, headers={"If-Match": '"a", "b"'})
    assert got == 400 and "one revision" in err["error"]
    got, err, _ = await api.call("POST", SCALE, json={"replicas": 4}, headers={"If-Match": '"sha256:00"'})
    assert got == 409 and err["revision"].startswith("sha256:")


async def test_a_body_that_arrives_in_pieces_is_read_whole(api: Served) -> None:
    async def pieces():  # as a slow client or network delivers it: one read on the server sees the first half
        yield b'{"repli'
        await asyncio.sleep(0.3)
        yield b'cas": 4}'

    got, doc, _ = await api.call("POST", SCALE, data=pieces())
    assert got == 200, doc
    assert doc["replicas"] == 4

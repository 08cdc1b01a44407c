"""An asyncio client for etcd v3 through its JSON gateway (etcd 3.4: `/v3/kv/*`, `/v3/lease/*`, `/v3/watch`).

Why the gateway over aiohttp rather than a gRPC client: aiohttp is already a dependency (the HTTP API),
while the asyncio gRPC clients (aetcd, etcd3aio) pull grpcio and a protobuf that must agree with the one
ortools pins; the few calls loadmaster needs (range, txn, lease grant/keepalive/revoke, watch) are plain
JSON over HTTP. Keys and values are bytes on the wire as base64; 64-bit numbers come back as strings and
fields equal to their zero value are omitted (proto3 JSON), so every read below has a default.

Endpoints are tried in turn: a member that refuses the connection, times out or answers 5xx moves the
client to the next one; when none answers, StoreError names them all.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from core.errors import StoreError

Op = dict[str, Any]  # one RequestOp of a txn
Compare = dict[str, Any]

FIX = "check that the etcd members are running and reachable from here ([cluster] store)"


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range cover every key starting with `prefix`."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return b64(bytes(raw))
        raw.pop()
    return b64(b"\0")


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int

    @classmethod
    def of(cls, doc: dict[str, Any]) -> KV:
        return cls(
            unb64(doc.get("key")).decode(errors="replace"),
            unb64(doc.get("value")),
            int(doc.get("create_revision", 0)),
            int(doc.get("mod_revision", 0)),
            int(doc.get("lease", 0)),
        )


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store's revision after the txn (the put's revision when it wrote)
    responses: list[dict[str, Any]]

    def kvs(self, index: int = 0) -> list[KV]:
        """The kvs of the `index`th response, when it was a range."""
        found = self.responses[index].get("response_range", {}) if index < len(self.responses) else {}
        return [KV.of(d) for d in found.get("kvs", [])]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    deleted: bool
    kv: KV


# -- txn building blocks -------------------------------------------------------------


def put_op(key: str, value: str | bytes, lease: int = 0) -> Op:
    put: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def delete_op(key: str, *, prefix: bool = False, end: str | None = None) -> Op:
    req: dict[str, Any] = {"key": b64(key)}
    if prefix:
        req["range_end"] = prefix_end(key)
    elif end is not None:
        req["range_end"] = b64(end)
    return {"request_delete_range": req}


def range_op(key: str) -> Op:
    return {"request_range": {"key": b64(key)}}


def created_is(key: str, revision: int) -> Compare:
    """Compare: `key`'s create_revision is `revision` (0: the key does not exist)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": str(revision)}


def modified_is(key: str, revision: int) -> Compare:
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


class EtcdClient:
    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 2.0,
    ):
        if not endpoints:
            raise StoreError("(none)", "no etcd endpoint is configured", "name them in [cluster] store")
        self.endpoints = list(endpoints)
        self._ssl = ssl_context
        self.timeout = timeout
        self._current = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return ",".join(self.endpoints)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl or False))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, path: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """POST `body` to `path` on the first endpoint that answers; StoreError when none does."""
        session = self._open()
        errors: list[str] = []
        wait = aiohttp.ClientTimeout(total=timeout or self.timeout)
        for turn in range(len(self.endpoints)):
            index = (self._current + turn) % len(self.endpoints)
            url = self.endpoints[index] + path
            try:
                async with session.post(url, json=body, timeout=wait) as response:
                    text = await response.text()
                    doc = json.loads(text) if text else {}
                    if response.status >= 500 or (response.status != 200 and _unavailable(doc)):
                        errors.append(f"{self.endpoints[index]}: {_message(doc, response.status)}")
                        continue
                    if response.status != 200:
                        why = f"{path} refused: {_message(doc, response.status)}"
                        raise StoreError(self.endpoints[index], why, "etcd 3.4 or newer is needed")
                    self._current = index
                    return doc if isinstance(doc, dict) else {}
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, OSError) as exc:
                errors.append(f"{self.endpoints[index]}: {type(exc).__name__}: {exc}".rstrip(": "))
        raise StoreError(self.where, "no member answered (" + "; ".join(errors) + ")", FIX)

    # -- kv ---------------------------------------------------------------------------

    async def range(self, key: str, *, prefix: bool = False, keys_only: bool = False) -> tuple[list[KV], int]:
        """The keys (all starting with `key` when `prefix`) and the store's revision."""
        body: dict[str, Any] = {"key": b64(key)}
        if prefix:
            body["range_end"] = prefix_end(key)
        if keys_only:
            body["keys_only"] = True
        doc = await self.call("/v3/kv/range", body)
        return [KV.of(d) for d in doc.get("kvs", [])], _revision(doc)

    async def get(self, key: str) -> KV | None:
        kvs, _ = await self.range(key)
        return kvs[0] if kvs else None

    async def put(self, key: str, value: str | bytes, lease: int = 0) -> int:
        body = put_op(key, value, lease)["request_put"]
        return _revision(await self.call("/v3/kv/put", body))

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        body = delete_op(key, prefix=prefix)["request_delete_range"]
        return int((await self.call("/v3/kv/deleterange", body)).get("deleted", 0))

    async def txn(self, compare: list[Compare], success: list[Op], failure: list[Op] | None = None) -> TxnResult:
        body = {"compare": compare, "success": success, "failure": failure or []}
        doc = await self.call("/v3/kv/txn", body)
        return TxnResult(bool(doc.get("succeeded", False)), _revision(doc), list(doc.get("responses", [])))

    # -- leases -------------------------------------------------------------------------

    async def grant(self, ttl: float) -> int:
        doc = await self.call("/v3/lease/grant", {"TTL": str(max(1, round(ttl)))})
        if doc.get("error"):
            raise StoreError(self.where, f"lease refused: {doc['error']}", FIX)
        return int(doc["ID"])

    async def keepalive(self, lease: int) -> int:
        """Renew `lease` once; its TTL in seconds, 0 when it has expired (or was revoked)."""
        doc = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(doc.get("result", {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        await self.call("/v3/lease/revoke", {"ID": str(lease)})

    # -- watch ---------------------------------------------------------------------------

    async def watch(self, key: str, *, prefix: bool = False, start_revision: int = 0) -> AsyncIterator[WatchEvent]:
        """Changes of `key` (or of every key under it) from `start_revision` on, until the stream breaks
        (the caller reconnects from the last revision it saw + 1)."""
        create: dict[str, Any] = {"key": b64(key)}
        if prefix:
            create["range_end"] = prefix_end(key)
        if start_revision:
            create["start_revision"] = str(start_revision)
        session = self._open()
        url = self.endpoints[self._current] + "/v3/watch"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout)
        try:
            async with session.post(url, json={"create_request": create}, timeout=timeout) as response:
                if response.status != 200:
                    raise StoreError(url, f"watch refused (HTTP {response.status})", FIX)
                async for line in response.content:
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    for ev in result.get("events", []):
                        yield WatchEvent(ev.get("type") == "DELETE", KV.of(ev.get("kv", {})))
        except (aiohttp.ClientError, OSError, json.JSONDecodeError) as exc:
            self._current = (self._current + 1) % len(self.endpoints)  # the next try asks another member
            raise StoreError(url, f"watch broke ({type(exc).__name__})", FIX) from None


def _revision(doc: dict[str, Any]) -> int:
    return int(doc.get("header", {}).get("revision", 0))


def _message(doc: Any, status: int) -> str:
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("error") or f"HTTP {status}")
    return f"HTTP {status}"


def _unavailable(doc: Any) -> bool:
    """gRPC Unavailable / DeadlineExceeded (no leader, the member is stopping): another member may answer."""
    return isinstance(doc, dict) and doc.get("code") in (4, 14)


async def sleep_or(event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `event` was set meanwhile."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
        return True
    except TimeoutError:
        return False

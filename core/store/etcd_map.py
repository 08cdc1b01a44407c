"""A shared map in etcd (core.store.shared_map): a key per entry under `<prefix><name>/`, values JSON.

A key per entry, not one document, so that two controllers changing different entries (a drain given
to the leader's API, an uncordon from `loadmaster uncordon` on another machine) never undo each other.
Reads answer from a mirror; `load` re-reads it from etcd — the store does at open, at every `refresh`
(a standby's follow, a new leader's take-over) and every MAP_POLL seconds, so the leader sees a hold
set elsewhere within a second or two. Writes go through the store's queue like every other: in order,
kept while etcd cannot take them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from core.store.etcd import EtcdClient, Op, delete_op, put_op

MAP_POLL = 1.0  # seconds between re-reads of every map


class EtcdMap:
    def __init__(
        self, client: EtcdClient, base: str, write: Callable[[list[Op]], None], flush: Callable[[], Awaitable[None]]
    ) -> None:
        self._client, self._base, self._write, self._flush = client, base, write, flush
        self.where = f"{client.where}{base}"
        self._entries: dict[str, object] = {}
        self._version = 0  # bumped when a load finds the map changed
        self._puts = 0  # this process's puts, so that a load does not undo one made while it read

    def stamp(self) -> object:
        return self._version

    def read(self) -> dict[str, object]:
        return dict(self._entries)

    def put(self, key: str, value: object | None) -> None:
        self._puts += 1
        if value is None:
            self._entries.pop(key, None)
            self._write([delete_op(self._base + key)])
        else:
            self._entries[key] = value
            self._write([put_op(self._base + key, json.dumps(value))])

    async def load(self) -> None:
        """Re-read the map (StoreError when etcd does not answer); what this process queued is sent first."""
        puts = self._puts
        await self._flush()
        kvs, _ = await self._client.range(self._base, prefix=True)
        if puts != self._puts:
            return  # a put came meanwhile: the mirror has it, the next load reads it back
        entries: dict[str, object] = {}
        for kv in kvs:
            try:
                entries[kv.key[len(self._base) :]] = json.loads(kv.value)
            except ValueError:
                continue  # not JSON: not written by loadmaster, not ours to read
        if entries != self._entries:
            self._entries = entries
            self._version += 1

"""Hosts an operator has cordoned or drained (Nomad's `node drain`, Kubernetes' `cordon`).

- cordoned: takes no new replicas; what runs there stays;
- draining: takes none and keeps none: plans move its replicas off (within each service's
  `min_healthy`, as every plan's actions are), and once nothing runs there it is *drained*;
- `uncordon` ends either.

This is the controller's operational state, not desired state, so it is kept in the store's shared map
`holds` (core.store.shared_map): single-machine a file beside the journal (`~/.loadmaster/<cluster>/
journal.holds.json`), clustered a key per host in etcd, so that a new leader keeps the holds; every change
is also an event in the journal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from core.model import HostState, Placement
from core.store.shared_map import FileMap, MapError, SharedMap

LISTS = "cordoned and drained hosts"


class HostHold(enum.StrEnum):
    CORDON = "cordon"
    DRAIN = "drain"


class Holds:
    """host → HostHold, read at start and written on every change."""

    def __init__(self, shared: SharedMap | None = None) -> None:
        self._map = shared if shared is not None else FileMap(None)
        self._seen = self._map.stamp()
        self._holds: dict[str, HostHold] = self._read()
        self._drained: set[str] = set()  # draining hosts already said to be drained

    def refresh(self) -> bool:
        """Read the map again if another process (`loadmaster drain`, another controller) changed it; True
        if the holds changed. A map damaged meanwhile keeps the holds in force (the next start names it)."""
        stamp = self._map.stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            holds = self._read()
        except MapError:
            return False
        changed, self._holds = holds != self._holds, holds
        return changed

    def __getitem__(self, host: str) -> HostHold:
        return self._holds[host]

    def get(self, host: str) -> HostHold | None:
        return self._holds.get(host)

    def all(self) -> Mapping[str, HostHold]:
        return dict(self._holds)

    def set(self, host: str, hold: HostHold | None) -> None:
        self._map.put(host, None if hold is None else hold.value)
        self._seen = self._map.stamp()  # our own write is not news at the next refresh
        if hold is None:
            self._holds.pop(host, None)
        else:
            self._holds[host] = hold
        self._drained.discard(host)

    def words(self) -> dict[str, str]:
        """host → cordoned | draining | drained, as `status` and the console say it."""
        out = {}
        for host, hold in self._holds.items():
            if hold is HostHold.CORDON:
                out[host] = "cordoned"
            else:
                out[host] = "drained" if host in self._drained else "draining"
        return out

    def newly_drained(self, states: Mapping[str, HostState], current: Placement) -> list[str]:
        """The draining hosts that run nothing now (and are reachable, so we know it), each returned once."""
        out = []
        for host, hold in self._holds.items():
            if hold is not HostHold.DRAIN or host in self._drained:
                continue
            if states.get(host, HostState.UNKNOWN).reachable and not current.on_host(host):
                self._drained.add(host)
                out.append(host)
        return out

    def _read(self) -> dict[str, HostHold]:
        try:
            doc = self._map.read()
        except MapError as exc:
            raise MapError(exc.where, exc.why, LISTS) from None
        if not all(v in set(HostHold) for v in doc.values()):
            raise MapError(self._map.where, 'is not {"host": "cordon" | "drain", …}', LISTS)
        return {k: HostHold(v) for k, v in doc.items()}  # type: ignore[arg-type]  # checked just above

"""Hosts an operator has cordoned or drained (Nomad's `node drain`, Kubernetes' `cordon`).

- cordoned: takes no new replicas; what runs there stays;
- draining: takes none and keeps none: plans move its replicas off (within each service's
  `min_healthy`, as every plan's actions are), and once nothing runs there it is *drained*;
- `uncordon` ends either.

This is the controller's operational state, not desired state, so it is kept beside the journal
(`~/.loadmaster/<cluster>/holds.json`), not in cluster.toml; every change is also an event in the
journal. The file is replaced atomically, so a crash leaves the old or the new set, never half.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
from collections.abc import Mapping
from pathlib import Path

from core.errors import LoadmasterError
from core.model import HostState, Placement


class HostHold(enum.StrEnum):
    CORDON = "cordon"
    DRAIN = "drain"


class HoldsFileError(LoadmasterError):
    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}; fix or remove the file (it lists cordoned and drained hosts)")


class Holds:
    """host → HostHold, read at start and written on every change (`path` None: kept in memory only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._seen = self._stamp()
        self._holds: dict[str, HostHold] = self._read() if path is not None else {}
        self._drained: set[str] = set()  # draining hosts already said to be drained

    def refresh(self) -> bool:
        """Read the file again if another process (`loadmaster drain`) changed it; True if the holds changed.
        A file damaged meanwhile keeps the holds in force (the next start names the problem)."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            holds = self._read()
        except HoldsFileError:
            return False
        changed, self._holds = holds != self._holds, holds
        return changed

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_mtime_ns, st.st_ino)

    def __getitem__(self, host: str) -> HostHold:
        return self._holds[host]

    def get(self, host: str) -> HostHold | None:
        return self._holds.get(host)

    def all(self) -> Mapping[str, HostHold]:
        return dict(self._holds)

    def set(self, host: str, hold: HostHold | None) -> None:
        holds = dict(self._holds)
        if hold is None:
            holds.pop(host, None)
        else:
            holds[host] = hold
        self._write(holds)
        self._holds = holds
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
        assert self.path is not None
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise HoldsFileError(self.path, f"cannot be read ({exc})") from None
        if not isinstance(doc, dict) or not all(isinstance(k, str) and v in set(HostHold) for k, v in doc.items()):
            raise HoldsFileError(self.path, 'is not {"host": "cordon" | "drain", …}')
        return {k: HostHold(v) for k, v in doc.items()}

    def _write(self, holds: Mapping[str, HostHold]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "w") as f:
                json.dump({k: v.value for k, v in sorted(holds.items())}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._seen = self._stamp()  # our own write is not news at the next refresh
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

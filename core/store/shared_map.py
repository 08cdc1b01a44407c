"""Small maps a controller keeps beside its plans, which must outlive it and be seen by the others: the
operator's holds (host → cordon | drain, core.engine.holds) and the rolling updates a failing copy stopped
(service → generation and why, core.engine.rollout).

- Single machine (`FileMap`, from `Journal.shared_map`): one JSON object in a file next to the SQLite
  journal (`journal.holds.json`), replaced atomically (core.private.write_private) so a crash leaves the
  old or the new map, never half of one; re-read when another process on this machine (`loadmaster drain`)
  replaced it.
- Clustered (`core.store.etcd_store.EtcdMap`, from `EtcdStore.shared_map`): a key per entry under the
  cluster's prefix (`holds/<host>`), so a new leader keeps what the old one was told — a drained host
  stays drained across a takeover — and two controllers changing different entries never undo each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from core.errors import LoadmasterError
from core.private import private_dir, write_private


class MapError(LoadmasterError):
    """A map that cannot be read as one: where it is, what is wrong, and what it holds (so a person can
    judge whether removing it is safe)."""

    def __init__(self, where: str, why: str, lists: str = ""):
        self.where, self.why = where, why
        held = f" (it lists {lists})" if lists else ""
        super().__init__(f"{where}: {why}; fix or remove it{held}")


class SharedMap(Protocol):
    where: str  # for messages: a file, or etcd's endpoints and the key prefix

    def stamp(self) -> object:
        """Changes whenever the map does: a reader compares it with the stamp of what it last read."""
        ...

    def read(self) -> dict[str, object]:
        """Every entry (JSON values); MapError when the map is damaged."""
        ...

    def put(self, key: str, value: object | None) -> None:
        """Set one entry (None removes it). OSError when a file cannot be written; a clustered map queues
        the write as every other (the store's contract: never lost, written once etcd takes it)."""
        ...


class FileMap:
    """The whole map in one JSON file (`path` None: in memory only, as a `:memory:` journal)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.where = str(path) if path is not None else "memory"
        self._memory: dict[str, object] = {}

    def stamp(self) -> object:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ino

    def read(self) -> dict[str, object]:
        if self.path is None:
            return dict(self._memory)
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise MapError(self.where, f"cannot be read ({exc})") from None
        if not isinstance(doc, dict):
            raise MapError(self.where, "is not a JSON object")
        return doc

    def put(self, key: str, value: object | None) -> None:
        doc = self.read()
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
        if self.path is None:
            self._memory = doc
            return
        private_dir(self.path.parent)
        write_private(self.path, json.dumps(dict(sorted(doc.items())), indent=1))

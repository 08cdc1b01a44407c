"""The state store the engine writes through: plans and their action states, events, fencing epochs, and
which replica copies are ours. Two implementations: `core.engine.journal.Journal` (SQLite, embedded, the
default) and `core.store.etcd_store.EtcdStore` (clustered mode, shared by every daemon of the cluster).

The contract both keep (DESIGN.md, "journal first"):
- writes never raise: one that cannot be made now is kept in memory, in order, and written once the
  store can take it; `watch` is told once when writes start failing and once when the backlog is written;
- `flush` returns once every write made before it is durable (or raises StoreError/JournalError): the
  runtime awaits it before a host action runs, so the step is recorded before it happens;
- `allocate_epoch` is durable before it returns and never hands out the same epoch twice;
- reads answer from what this process knows (`refresh` re-reads what other controllers wrote).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.model import Action, ReplicaId
from core.store.shared_map import SharedMap

# (problem, 0, 0) when writes start failing; (None, entries written late, events dropped) once they succeed.
Watcher = Callable[[str | None, int, int], None]


@dataclass(frozen=True, slots=True)
class JournaledAction:
    plan_id: str
    seq: int
    action: Action
    state: str
    error: str | None


class StateStore(Protocol):
    path: str  # where it lives, for messages (a file, or the etcd endpoints and prefix)
    trouble: str | None  # why the last write failed, while the backlog is not written

    def watch(self, watcher: Watcher) -> None: ...

    def close(self) -> int: ...

    @property
    def backlog(self) -> int: ...

    def retry(self, *, force: bool = False) -> None: ...

    async def flush(self) -> None: ...

    async def refresh(self) -> None: ...

    def begin_plan(self, plan_id: str, reason: str, basis: str, actions: tuple[Action, ...]) -> None: ...

    def set_action(self, plan_id: str, seq: int, state: str, error: str | None = None) -> None: ...

    def finish_plan(self, plan_id: str, status: str) -> None: ...

    def record_rejected(self, plan_id: str, reason: str, basis: str) -> None: ...

    def log_event(self, at: float, doc: dict[str, object]) -> None: ...

    def allocate_epoch(self, holder: str, above: int = 0) -> int: ...

    def record_placed(self, replica: ReplicaId, host: str, epoch: int) -> None: ...

    def record_removed(self, replica: ReplicaId, host: str) -> None: ...

    def trust_epoch(self, epoch: int, holder: str) -> None: ...

    def placed(self) -> set[tuple[ReplicaId, str]]: ...

    def epochs(self) -> set[int]: ...

    def unfinished(self) -> list[tuple[str, list[JournaledAction]]]: ...

    def actions(self, plan_id: str) -> list[JournaledAction]: ...

    def plan_status(self, plan_id: str) -> str | None: ...

    def shared_map(self, name: str) -> SharedMap:
        """The map `name` (holds, rollouts) kept with this store (core.store.shared_map)."""
        ...

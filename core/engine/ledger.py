"""Journal first: which replica copies are this cluster's, whatever the hosts report.

State owned here: the (replica, host) pairs the journal says this cluster's controllers started
and have not stopped (`placed`, written before each start, removed after each stop), and the
fencing epochs whose records are ours (`trusted`: those this journal handed out and those it took
the cluster over from). `recording` writes them around every start and stop; the engine reloads
them when this controller starts acting (another controller may have written the journal).

A host's records are evidence, not authority. A live record is ours if the journal placed that
replica on that host; or, when no copy the journal placed runs anywhere, if it was started under a
trusted epoch (a controller we took over from, with a journal of its own, started it). Anything
else is `foreign`: reported, counted nowhere, never stopped nor kept in place of ours — so a
host that reports `web/0..2` with `started_at=1` cannot make the controller stop the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core.engine.ports import ReplicaRuntime
from core.model import ReplicaId, ReplicaStatus, Service
from core.store.base import StateStore


class Ledger:
    def __init__(self, journal: StateStore):
        self._journal = journal
        self.placed: set[tuple[ReplicaId, str]] = set()
        self.trusted: set[int] = set()
        self._frozen: frozenset[tuple[ReplicaId, str]] | None = None
        self.reload()

    def reload(self) -> None:
        self.placed = self._journal.placed()
        self.trusted = self._journal.epochs()
        self._frozen = None

    def frozen(self) -> frozenset[tuple[ReplicaId, str]]:
        """`placed`, copied for a view's derivation in a thread: the same copy until a start, a stop or a reload
        changes it (every tick asks; at 50,000 replicas a copy each time is milliseconds on the loop)."""
        if self._frozen is None:
            self._frozen = frozenset(self.placed)
        return self._frozen

    def recording(self, runtime: ReplicaRuntime, epoch: Callable[[], int]) -> ReplicaRuntime:
        """`runtime`, journaling each start before it runs and each stop once it is done."""
        return _Recording(runtime, self, epoch)

    def _placed(self, replica: ReplicaId, host: str, epoch: int) -> None:
        self._journal.record_placed(replica, host, epoch)
        self.placed.add((replica, host))
        self._frozen = None

    def _removed(self, replica: ReplicaId, host: str) -> None:
        self._journal.record_removed(replica, host)
        self.placed.discard((replica, host))
        self._frozen = None


class _Recording:
    def __init__(self, runtime: ReplicaRuntime, ledger: Ledger, epoch: Callable[[], int]):
        self._runtime, self._ledger, self._epoch = runtime, ledger, epoch

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        self._ledger._placed(ReplicaId(service.name, index), host, self._epoch())
        return await self._runtime.start_replica(host, service, index, generation)

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        await self._runtime.stop_replica(host, replica, grace)
        self._ledger._removed(replica, host)


def split(
    records: Mapping[str, tuple[ReplicaStatus, ...]],
    placed: frozenset[tuple[ReplicaId, str]],
    trusted: frozenset[int],
) -> tuple[dict[str, tuple[ReplicaStatus, ...]], list[ReplicaStatus]]:
    """`Ledger.split` on a copy of the ledger (`placed`, and the `trusted` epochs with those the fences
    show): pure, so the observer runs it in a thread with the rest of a view's derivation."""
    placed_live = {r.replica for host, rs in records.items() for r in rs if r.running and (r.replica, host) in placed}
    ours: dict[str, tuple[ReplicaStatus, ...]] = {}
    foreign: list[ReplicaStatus] = []
    for host, rs in records.items():
        kept = []
        for r in rs:
            if (r.replica, host) in placed or (
                r.epoch is not None and r.epoch in trusted and r.replica not in placed_live
            ):
                kept.append(r)
            elif r.running:
                foreign.append(r)
        ours[host] = tuple(kept) if len(kept) != len(rs) else rs
    return ours, foreign

"""Failed actions are retried with backoff until they succeed or a new desired state supersedes them.

State owned here: per replica, how many times its last action failed, when it may be tried again and
why it failed. The engine records each applied plan's outcome (`record`), asks every tick whether a
retry is due (`due`: the drift that needs the action is then planned again) and drops them all when
the desired state changes (`forget`: a reload is a new plan) or the fleet has nothing left to do.
Without this a failed start (a state directory briefly unwritable, a host refusing) was never tried
again: the drift it left looked already planned for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from core.engine.api import ApplyProgress
from core.model import ActionKind, ReplicaId

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before retry n (the last one repeats)


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int  # failures so far
    not_before: float  # clock time of the next try
    reason: str

    def __str__(self) -> str:
        return f"retrying ({self.attempts}): {self.reason}"


class Retries:
    def __init__(self) -> None:
        self._by_replica: dict[ReplicaId, Retry] = {}
        self._tried: set[ReplicaId] = set()  # due retries handed to a plan, awaiting its outcome

    @property
    def pending(self) -> Mapping[ReplicaId, Retry]:
        return dict(self._by_replica)

    def record(self, progress: ApplyProgress, now: float, halted: Collection[str] = ()) -> None:
        """A plan was applied: its failed actions wait their backoff, its done ones are settled. The restarts
        of services whose rollout stopped (`halted`) are not retried: that stop is the answer until the file changes."""
        for action in progress.done:
            self._by_replica.pop(action.replica, None)
        for action, error in progress.failed.items():
            if action.kind is ActionKind.RESTART and action.replica.service in halted:
                self._by_replica.pop(action.replica, None)
                continue
            before = self._by_replica.get(action.replica)
            attempts = before.attempts + 1 if before else 1
            delay = BACKOFF[min(attempts, len(BACKOFF)) - 1]
            self._by_replica[action.replica] = Retry(attempts, now + delay, error)
        self._tried.clear()

    def due(self, now: float) -> bool:
        """True once some failed action's backoff has passed and it has not been tried again yet."""
        ready = {r for r, retry in self._by_replica.items() if retry.not_before <= now} - self._tried
        self._tried |= ready
        return bool(ready)

    def forget(self) -> None:
        self._by_replica.clear()
        self._tried.clear()

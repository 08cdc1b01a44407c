"""The engine's event stream: what happened, when, to which host or replica."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.model import Action, ReplicaId


class EventKind(enum.StrEnum):
    HOST_UP = "host.up"
    HOST_SUSPECT = "host.suspect"
    HOST_DOWN = "host.down"
    HOST_KEY_MISMATCH = "host.key-mismatch"
    HOST_KEY_TRUSTED = "host.key-trusted"  # an operator trusted the key a host presented (console)
    HOST_UNSUPPORTED = "host.unsupported"
    HOST_MISBEHAVING = "host.misbehaving"
    HOST_EXCLUDED = "host.excluded"  # no plan may use it: impossible numbers, or a reserve larger than it has
    HOST_CORDONED = "host.cordoned"  # an operator's hold: no new replicas (core.engine.holds)
    HOST_DRAINING = "host.draining"  # no new replicas, and what runs there moves off
    HOST_DRAINED = "host.drained"  # a draining host runs nothing any more
    HOST_UNCORDONED = "host.uncordoned"  # the hold is lifted
    REPLICA_STARTED = "replica.started"
    REPLICA_STOPPED = "replica.stopped"
    REPLICA_CRASHED = "replica.crashed"
    REPLICA_FOREIGN = "replica.foreign"  # a live record the journal never started: reported, left alone
    REPLICA_HEALTHY = "replica.healthy"  # its check passes (healthy_after in a row)
    REPLICA_UNHEALTHY = "replica.unhealthy"  # its check fails (unhealthy_after in a row, after grace)
    HOST_WARNING = "host.warning"  # something its probe cannot do (e.g. no tool for http checks), once
    ROLLOUT_HALTED = "rollout.halted"  # a new copy failed its check: the service's rolling update stopped there
    PLAN_COMPUTED = "plan.computed"
    PLAN_APPROVED = "plan.approved"
    PLAN_REJECTED = "plan.rejected"
    ACTION_STARTED = "action.started"
    ACTION_DONE = "action.done"
    ACTION_FAILED = "action.failed"
    APPLY_FINISHED = "apply.finished"
    FAILOVER_STARTED = "failover.started"
    CONFIG_RELOADED = "config.reloaded"
    CONFIG_INVALID = "config.invalid"
    SERVICE_SCALED = "service.scaled"  # an operator set a service's replicas (console, CLI); the file was written
    AUTOSCALE_UP = "autoscale.up"  # with the inputs that made the decision
    AUTOSCALE_DOWN = "autoscale.down"
    AUTOSCALE_BLOCKED = "autoscale.blocked"  # a scale-up the optimizer cannot place, undone
    CONTROLLER_ACTING = "controller.acting"  # this controller took the hosts' fences: it acts
    CONTROLLER_STANDBY = "controller.standby"  # another live controller holds the cluster: read-only
    CONTROLLER_FENCED = "controller.fenced"  # a host showed a higher token: another took over; read-only
    JOURNAL_UNWRITABLE = "journal.unwritable"  # writes fail (disk full, locked): kept in memory meanwhile
    JOURNAL_RECOVERED = "journal.recovered"  # what was kept in memory is written
    API_WRITE = "api.write"  # a change made through the HTTP API, with the name of the token that made it
    DEMO_WEDGED = "demo.wedged"  # demo only: a replica's server made to fail its check (core.hostlink.demo_wedge)
    STATE_UPDATED = "state.updated"  # a poll cycle changed the snapshot; no message for people


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # unix seconds
    kind: EventKind
    message: str
    host: str | None = None
    replica: ReplicaId | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": round(self.at, 3), "event": self.kind.value, "message": self.message}
        if self.host is not None:
            out["host"] = self.host
        if self.replica is not None:
            out["replica"] = str(self.replica)
        out.update(self.data)
        return out


def action_fields(plan: str, action: Action) -> dict[str, Any]:
    """The fields of an `action.*` event: which plan, what kind, which replica, from where to where."""
    return {
        "plan": plan,
        "kind": action.kind.value,
        "service": action.replica.service,
        "replica": str(action.replica),
        "from": action.from_host,
        "to": action.to_host,
    }


class Emit(Protocol):
    """How every part of the engine says what happened (`Bus.emit`)."""

    def __call__(
        self,
        kind: EventKind,
        message: str,
        host: str | None = None,
        replica: ReplicaId | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None: ...

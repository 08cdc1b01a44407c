"""Messages of the console, one class per step (Harlequin's pattern).

The engine's follower posts `EngineChanged`; screens post what the operator asked for and never
call the app; the app's handlers do it (in a worker when it waits on the engine) and post back
what came of it (`WhatIfAnswered`).
"""

from __future__ import annotations

from textual.message import Message

from core.engine.events import Event
from core.model import FailoverPlan, Plan


class EngineChanged(Message):
    """The engine published something: a new snapshot is ready, plus the events (if any) that came with it."""

    def __init__(self, events: tuple[Event, ...]) -> None:
        super().__init__()
        self.events = events


class HostOpened(Message):
    """The operator drilled down into one host."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host


class WhatIfAsked(Message):
    """The operator asked what losing `host` would do (may solve: answered by `WhatIfAnswered`)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host


class WhatIfAnswered(Message):
    """The engine's answer to `WhatIfAsked`, for the app to show."""

    def __init__(self, plan: FailoverPlan) -> None:
        super().__init__()
        self.plan = plan


class DemoHostToggled(Message):
    """The operator stops a running demo host, or restarts a stopped one."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host


class PlanApproved(Message):
    """The operator said yes in the approve dialog: apply `plan` (refused if stale or read-only)."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan


class PlanRejected(Message):
    """The operator dropped the pending plan."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan


class PlanExportChosen(Message):
    """The operator chose where and in which format to write `plan`."""

    def __init__(self, plan: Plan, path: str, fmt: str) -> None:
        super().__init__()
        self.plan = plan
        self.path = path
        self.fmt = fmt


class PlanActionOpened(Message):
    """The operator opened one action of `plan` (its index): the app shows it whole, with the plan's JSON."""

    def __init__(self, plan: Plan, index: int) -> None:
        super().__init__()
        self.plan = plan
        self.index = index


class ReplanRequested(Message):
    """The operator asked for a plan now; `repack` puts it on the fewest hosts even if running replicas move."""

    def __init__(self, *, repack: bool = False) -> None:
        super().__init__()
        self.repack = repack


class CommandLineOpened(Message):
    """The operator pressed `:` (or a key that prefills a command, e.g. `s` → `scale web `)."""

    def __init__(self, prefill: str = "") -> None:
        super().__init__()
        self.prefill = prefill


class HostHoldAsked(Message):
    """The operator asked to cordon, drain or uncordon `host` (`verb`); drain is confirmed first."""

    def __init__(self, host: str, verb: str) -> None:
        super().__init__()
        self.host = host
        self.verb = verb


class ServiceChosen(Message):
    """`:svc NAME`: the services screen shows that service."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service


class ReplicaWedgeAsked(Message):
    """Demo only: the operator wedged one replica's demo server (`w` in host detail): its check fails."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica


class HostKeyTrustAsked(Message):
    """The operator asked to trust the host key a host presents and was refused for (`t` in host detail)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host


class ReplicaLogAsked(Message):
    """The operator asked for one replica's log (`l` in host detail): its last lines on `host`, then live."""

    def __init__(self, host: str, replica: str) -> None:
        super().__init__()
        self.host, self.replica = host, replica


class ReplicaActionAsked(Message):
    """The operator asked to restart one replica where it runs (`r` in host detail, `:restart web/3`) or to stop
    it (Ctrl+K, `:stop web/3`); `verb` is "restart" or "stop"."""

    def __init__(self, replica: str, verb: str) -> None:
        super().__init__()
        self.replica, self.verb = replica, verb

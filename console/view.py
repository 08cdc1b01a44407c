"""What the screens draw from: one value the app replaces whenever the engine publishes.

Screens read `ConsoleView` and post messages (console/messages.py); they never reach into the
app's attributes or call its methods, so the app alone decides how state changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from console.derive import Capacities, FleetSummary, HostLoad
from console.history import CpuHistory
from core.engine.api import Snapshot
from core.engine.events import Event


@dataclass(frozen=True, slots=True)
class ConsoleView:
    snapshot: Snapshot
    summary: FleetSummary
    loads: Mapping[str, HostLoad]  # what the placed replicas request, per host
    read_only: bool  # refused by the console (--read-only) or by the engine
    planning: bool  # a re-plan the operator asked for is waiting on the engine
    events: tuple[Event, ...]  # the newest events, oldest first
    event_count: int  # every event ever logged, so a screen can tell how many are new
    # Caches the app fills as snapshots arrive; screens only read through them.
    capacities: Capacities
    history: CpuHistory
    notice: str = ""  # the header's word on the cluster file: what its last reload changed, or its errors

"""Messages that carry engine state into the console's widgets."""

from __future__ import annotations

from textual.message import Message

from core.engine.events import Event


class EngineChanged(Message):
    """The engine published something: a new snapshot is ready, plus the events (if any) that came with it."""

    def __init__(self, events: tuple[Event, ...]) -> None:
        super().__init__()
        self.events = events

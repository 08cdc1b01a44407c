"""The in-memory fleet lives in core.engine.memfleet (benchmarks use it too); tests import it from here."""

from core.engine.memfleet import FakeFleet

__all__ = ["FakeFleet"]

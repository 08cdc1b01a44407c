"""Run the console on the fake engine in a real terminal (used by the tmux test; handy by hand too).

python tests/console/run_fake_console.py [--read-only] [--tick SECONDS] [--failure-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))  # the checkout: tests.console is importable

from console.app import LoadmasterApp
from tests.console import fake_engine
from tests.console.fleet_data import small_events


class TickingApp(LoadmasterApp):
    """Polls like the real engine would: one new snapshot per `tick` seconds."""

    def __init__(self, engine: fake_engine.FakeEngine, tick: float, read_only: bool) -> None:
        super().__init__(engine, read_only=read_only)
        self.fake = engine
        self.tick = tick

    def on_mount(self) -> None:
        self.set_interval(self.tick, self.fake.tick)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--failure-timeout", type=float, default=1.0)
    args = parser.parse_args()
    engine = fake_engine.FakeEngine(
        fake_engine.small_snapshot(demo=True),
        small_events(),
        plan_delay=2.0,
        apply_delay=0.5,
        failure_timeout=args.failure_timeout,
        failover_auto=True,  # as the demo's cluster.toml has it (auto_apply = true)
    )
    asyncio.run(TickingApp(engine, args.tick, args.read_only).run_async())


if __name__ == "__main__":
    main()

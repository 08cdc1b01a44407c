"""Console benchmark: the fleet screen with a large model.

    python benchmarks/console.py --hosts 1000 --replicas 10000 [--updates 30]

Runs the real LoadmasterApp headless (Textual's test driver) on the in-memory
engine from tests/console/fake_engine.py, and measures:

- update_median_ms: a full snapshot update (every host reports new load, memory
  and last-seen; a few replicas moved) from the engine's event to the fleet
  screen's cells updated and the visible screen re-rendered by the compositor;
- filter_ms: one filter keystroke (posted to the app as a key event) to the
  table showing the matching rows and the screen re-rendered;
- extra_mem_mib: resident memory the console adds on top of the model, after
  all updates;
- startup_s: opening the engine to the first full fleet view (every host a row
  with a first observation, first frame rendered), on the in-memory fleet;
  with --demo, demo_startup_s is the same on the embedded demo fleet (real
  engine, real SSH hosts on loopback). `measure_startup` takes an engine opener.

Targets (issue 6): update < 50 ms median, extra memory < 100 MiB, filter
< 100 ms; startup on the demo fleet < 2 s. The JSON summary is the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.widgets import Input  # noqa: E402

from console.app import LoadmasterApp  # noqa: E402
from console.screens.fleet import FleetScreen  # noqa: E402
from core.engine.api import EngineAPI  # noqa: E402
from core.model import HostState  # noqa: E402
from tests.console import fake_engine, fleet_data  # noqa: E402

SIZE = (120, 40)


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1024**2


def render(app: LoadmasterApp) -> None:
    """What a terminal frame costs: headless Textual skips writing, so render the visible screen ourselves."""
    app.screen._compositor.render_update(full=True)


async def wait_for(condition: Callable[[], bool], pilot: Any, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not reach the expected state")
        await pilot.pause(0)


def fleet_ready(app: LoadmasterApp) -> bool:
    if not app.screen_stack:  # not started yet
        return False
    screen = app.screen
    return (
        isinstance(screen, FleetScreen)
        and screen.is_mounted
        and screen.table.row_count == len(app.view.snapshot.config.hosts)
        and screen.table.region.height > 0
    )


EngineOpener = Callable[[], AbstractAsyncContextManager[EngineAPI]]


async def measure_startup(open_engine: EngineOpener, repeats: int = 3) -> float:
    """Seconds from opening the engine (connecting to the hosts) to the first full fleet view: every host
    in the table with a first observation, and the frame rendered. Median of `repeats`."""

    async def once() -> float:
        start = time.perf_counter()
        async with open_engine() as engine:
            app = LoadmasterApp(engine)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(lambda: fleet_ready(app) and all_observed(app), pilot)
                render(app)
                return time.perf_counter() - start

    return statistics.median([await once() for _ in range(repeats)])


def all_observed(app: LoadmasterApp) -> bool:
    return all(obs.state is not HostState.UNKNOWN for obs in app.view.snapshot.hosts.values())


def fake_opener(fake: ModuleType, hosts: int, replicas: int) -> EngineOpener:
    @contextlib.asynccontextmanager
    async def open_engine() -> AsyncIterator[EngineAPI]:
        yield fake.FakeEngine(fleet_data.big_snapshot(hosts=hosts, replicas=replicas))

    return open_engine


def measure_demo_startup(config_path: Path) -> float:
    """`loadmaster console` on the embedded demo fleet: the fleet is serving first (as `loadmaster demo --serve`
    would), then the engine connects and the console draws. Uses the real engine and demo hosts."""
    from console.commands.runtime import make_engine
    from core import config as config_file
    from core.hostlink.demo import DemoFleet

    with tempfile.TemporaryDirectory(prefix="lm-console-bench-") as tmp:
        os.environ["HOME"] = tmp  # the engine's journal lives under ~/.loadmaster
        workdir = Path(tmp) / "demo"
        fleet = DemoFleet(config_file.load(config_path), workdir)

        @contextlib.asynccontextmanager
        async def open_engine() -> AsyncIterator[EngineAPI]:
            engine = make_engine(fleet.config, demo=fleet, demo_workdir=workdir)
            await engine.start(first_contact_timeout=1.5)
            try:
                yield engine
            finally:
                await engine.close(grace=5)

        async def measure() -> float:
            await fleet.start()  # its servers live on this event loop
            try:
                return await measure_startup(open_engine)
            finally:
                await fleet.stop()

        return asyncio.run(measure())


async def measure_fleet(fake: ModuleType, hosts: int, replicas: int, updates: int) -> dict[str, float]:
    base = fleet_data.big_snapshot(hosts=hosts, replicas=replicas)
    ticks = [fleet_data.big_tick(base, 0)]
    for t in range(1, updates + 1):
        ticks.append(fleet_data.big_tick(ticks[-1], t))
    engine = fake.FakeEngine(base)
    before = rss_mib()
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: fleet_ready(app), pilot)
        render(app)
        times = []
        for snapshot in ticks:
            start = time.perf_counter()
            engine.publish(snapshot)
            await wait_for(lambda s=snapshot: app.view.snapshot is s, pilot)
            render(app)
            times.append((time.perf_counter() - start) * 1000)
            await pilot.pause(0.05)  # let the idle frame catch up, like a 1 s poll would
        extra = rss_mib() - before
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        filter_times = []
        typed = ""
        # Keys go straight into the app's queue (Pilot.press would add its own idle-detection waits).
        for key in ("h", "o", "s", "t", "-", "0", "0", "1", "backspace", "backspace", "backspace"):
            typed = typed[:-1] if key == "backspace" else typed + key
            start = time.perf_counter()
            app.post_message(events.Key(key, None if key == "backspace" else key))
            await wait_for(lambda t=typed: box.value == t and screen.filter == t, pilot)
            render(app)
            filter_times.append((time.perf_counter() - start) * 1000)
        shown = screen.table.row_count
    return {
        "update_median_ms": round(statistics.median(times[1:]), 2),
        "update_max_ms": round(max(times[1:]), 2),
        "filter_ms": round(statistics.median(filter_times), 2),
        "filter_max_ms": round(max(filter_times), 2),
        "extra_mem_mib": round(extra, 1),
        "rows_after_filter": shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument(
        "--demo",
        metavar="CLUSTER_TOML",
        nargs="?",
        const=str(ROOT / "cluster.toml"),
        help="also measure startup_s on the embedded demo fleet of this file (real engine, real SSH hosts)",
    )
    args = parser.parse_args()
    fake = fake_engine
    result: dict[str, Any] = {"hosts": args.hosts, "replicas": args.replicas}
    result.update(asyncio.run(measure_fleet(fake, args.hosts, args.replicas, args.updates)))
    result["startup_s"] = round(asyncio.run(measure_startup(fake_opener(fake, args.hosts, args.replicas))), 3)
    result["engine"] = "in-memory fake (tests/console/fake_engine.py)"
    if args.demo:
        result["demo_startup_s"] = round(measure_demo_startup(Path(args.demo)), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

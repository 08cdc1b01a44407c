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

With --real (issue 12), the same console on the real engine over a demo fleet of
--hosts demo hosts (default 1,000) served by `loadmaster demo --serve` in its own
process, running 2,000+ real replica processes the engine placed itself:

- update_median_ms / update_p95_ms: the engine's notice of a new snapshot (the
  console's EngineChanged message) to the screen in front redrawn and rendered;
- keypress_p95_ms: a key (typing a `/` filter, switching screens 2 ↔ 1) to the
  resulting screen rendered;
- engine_cpu_core: cpu of this process (the engine, its SSH links) per wall
  second over --seconds before the console starts; console_cpu_core the same
  with the console on screen; demo_cpu_core: the demo fleet's server process.

Targets (issue 6): update < 50 ms median, extra memory < 100 MiB, filter
< 100 ms; startup on the demo fleet < 2 s; --real: update median < 50 ms,
key-press-to-paint p95 < 100 ms. Run under `flock /tmp/loadmaster-bench.lock`.
The JSON summary is the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
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


def real_cluster(ports: list[int], tag: int, replicas: int) -> str:
    """A demo cluster of one host per port and `replicas` replicas of `sleep TAG…` in three services."""
    hosts = "".join(
        f'[[hosts]]\nname = "d{i + 1:04d}"\naddress = "127.0.0.1"\nport = {p}\n'
        f'labels = {{ zone = "z{i % 4 + 1}" }}\ncapacity = {{ cpu = 4, mem = "8GiB" }}\n\n'
        for i, p in enumerate(ports)
    )
    web, api = replicas // 2, replicas * 3 // 10
    services = "".join(
        f'[[services]]\nname = "{name}"\ncommand = "sleep {tag}{k}"\nreplicas = {n}\ncpu = "250m"\nmem = "128MiB"\n\n'
        for k, (name, n) in enumerate((("web", web), ("api", api), ("worker", replicas - web - api)))
    )
    return f"""
[cluster]
name = "bench{tag}"
demo = true
poll_interval = "1s"
failure_timeout = "3s"

[policy]
auto_apply = true
solver_time_limit = "10s"
solver_workers = 1

{hosts}{services}"""


class TimedApp(LoadmasterApp):
    """The console, timing each engine notice from its arrival to the screen in front rendered."""

    def __init__(self, engine: EngineAPI) -> None:
        super().__init__(engine)
        self.update_ms: list[float] = []

    def on_engine_changed(self, message: Any) -> None:
        before = self.view
        super().on_engine_changed(message)
        if self.view is not before and self.screen_stack:
            render(self)
            self.update_ms.append((time.monotonic() - message.time) * 1000)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def cpu_per_second(processes: list[psutil.Process], seconds: float) -> list[float]:
    """Each process's cpu per wall second over `seconds` (the event loop keeps running meanwhile)."""
    start, before = time.monotonic(), [cpu_seconds(p) for p in processes]
    await asyncio.sleep(seconds)
    wall = time.monotonic() - start
    return [round((cpu_seconds(p) - b) / wall, 3) for p, b in zip(processes, before, strict=True)]


async def keypress_times(app: LoadmasterApp, pilot: Any) -> tuple[list[float], list[float], list[float]]:
    """Key-press-to-paint, each key waited for and rendered: typing a `/` filter; switching screens 2 ↔ 1; opening
    a dialog (`?` help, `:` command line) over the live fleet — issue 12 item 2 saw dialogs open unpainted."""
    times: list[float] = []
    screen = app.screen
    assert isinstance(screen, FleetScreen)
    await pilot.press("slash")
    box = screen.query_one("#filter", Input)
    typed = ""
    for key in ("d", "0", "0", "1", "backspace", "backspace", "backspace", "backspace") * 3:
        typed = typed[:-1] if key == "backspace" else typed + key
        start = time.perf_counter()
        app.post_message(events.Key(key, None if key == "backspace" else key))
        await wait_for(lambda t=typed: box.value == t and screen.filter == t, pilot)
        render(app)
        times.append((time.perf_counter() - start) * 1000)
    await pilot.press("escape", "escape")
    filtering, times = times, []
    for key, kind in (("2", "ServicesScreen"), ("1", "FleetScreen")) * 6:
        start = time.perf_counter()
        app.post_message(events.Key(key, key))
        await wait_for(lambda k=kind: type(app.screen).__name__ == k and app.screen.is_mounted, pilot)
        await pilot.pause(0)  # the switched-to screen's redraw from the latest view
        render(app)
        times.append((time.perf_counter() - start) * 1000)
    switching, times = times, []
    for key, kind in (("question_mark", "HelpScreen"), ("colon", "CommandScreen")) * 5:
        start = time.perf_counter()
        app.post_message(events.Key(key, "?" if key == "question_mark" else ":"))
        await wait_for(lambda k=kind: type(app.screen).__name__ == k and app.screen.is_mounted, pilot)
        await pilot.pause(0)
        render(app)
        times.append((time.perf_counter() - start) * 1000)
        app.post_message(events.Key("escape", None))
        await wait_for(lambda: isinstance(app.screen, FleetScreen), pilot)
    return filtering, switching, times


def progress(engine: EngineAPI) -> str:
    """Host states, the pending plan and the last events: what a run that waits is waiting for."""
    snap = engine.snapshot()
    states = dict(Counter(o.state.value for o in snap.hosts.values()))
    pending = f"pending plan of {len(snap.pending.actions)} actions" if snap.pending is not None else "no pending plan"
    last = "; ".join(e.message[:100] for e in engine.recent_events()[-3:])
    return f"hosts {states}, {pending}, last events: {last}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)


def measure_real(hosts: int, replicas: int, seconds: float) -> dict[str, Any]:
    """The console on the real engine over `hosts` demo hosts served by another process (see the docstring)."""
    import random
    import signal
    import subprocess

    from console.commands.runtime import make_engine
    from core import config as config_file

    tag = random.randint(10_000, 99_999)
    with tempfile.TemporaryDirectory(prefix="lm-console-real-") as tmp:
        with contextlib.ExitStack() as held:  # every port bound at once: one closed and bound again repeats
            sockets = [held.enter_context(socket.socket()) for _ in range(hosts)]
            for s in sockets:
                s.bind(("127.0.0.1", 0))
            ports = [int(s.getsockname()[1]) for s in sockets]
        path = Path(tmp) / "cluster.toml"
        path.write_text(real_cluster(ports, tag, replicas), encoding="utf-8")
        os.environ["HOME"] = tmp  # the journal and the demo's keys live under ~/.loadmaster
        # Its output goes to a file, never to a pipe nobody reads once it serves: a full pipe stops the whole demo
        # fleet at its next write to stderr.
        said = Path(tmp) / "demo.out"
        with said.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "demo", "--serve", "-c", str(path)],
                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            while not any(line.startswith("serving") for line in said.read_text(errors="replace").splitlines()):
                if server.poll() is not None:
                    tail = said.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"demo --serve did not start (exit {server.returncode}): {tail}")
                time.sleep(0.2)
            config = config_file.load(path)
            return asyncio.run(_measure_real(lambda: make_engine(config), server.pid, seconds, tag))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=120)
            for proc in psutil.process_iter(["cmdline"]):  # this run's replicas only (their tag)
                if (proc.info["cmdline"] or [""])[:2] in (["sleep", f"{tag}{k}"] for k in range(3)):
                    proc.kill()


async def _measure_real(make: Callable[[], Any], server_pid: int, seconds: float, tag: int) -> dict[str, Any]:
    me, server = psutil.Process(), psutil.Process(server_pid)
    start = time.monotonic()
    engine = make()  # on this event loop
    await engine.start(first_contact_timeout=60)
    try:
        want = sum(s.replicas for s in engine.snapshot().config.services)
        said = 0.0
        while (running := sum(1 for o in engine.snapshot().hosts.values() for r in o.replicas if r.running)) < want:
            if time.monotonic() - start > 600:
                raise TimeoutError(f"the engine did not place {want} replicas in 600 s: {progress(engine)}")
            if time.monotonic() - said > 30:  # where it is, on stderr: a run that never ends says why
                said = time.monotonic()
                print(
                    f"{time.monotonic() - start:.0f} s: {running} of {want} running; {progress(engine)}",
                    file=sys.stderr,
                )
            await asyncio.sleep(1)
        placed_s = time.monotonic() - start
        await asyncio.sleep(5)  # settle: the last starts' frames, the failover plans
        engine_cpu, demo_idle = await cpu_per_second([me, server], seconds)
        app = TimedApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: fleet_ready(app), pilot, timeout=120)
            app.update_ms.clear()
            console_cpu, demo_cpu = await cpu_per_second([me, server], seconds)
            updates = list(app.update_ms)
            filtering, switching, dialogs = await keypress_times(app, pilot)
            keys = filtering + switching + dialogs
        snap = engine.snapshot()
        return {
            "hosts": len(snap.config.hosts),
            "replicas_running": sum(1 for o in snap.hosts.values() for r in o.replicas if r.running),
            "placed_s": round(placed_s, 1),
            "updates": len(updates),
            "update_median_ms": round(statistics.median(updates), 2) if updates else None,
            "update_p95_ms": p95(updates) if updates else None,
            "keypress_p95_ms": p95(keys),
            "keypress_median_ms": round(statistics.median(keys), 2),
            "filter_p95_ms": p95(filtering),
            "switch_p95_ms": p95(switching),
            "switch_max_ms": round(max(switching), 2),
            "dialog_p95_ms": p95(dialogs),
            "dialog_max_ms": round(max(dialogs), 2),
            "engine_cpu_core": engine_cpu,
            "console_cpu_core": console_cpu,
            "demo_cpu_core": demo_cpu,
            "demo_cpu_core_before_console": demo_idle,
            "engine": "real Engine over `loadmaster demo --serve` (real SSH, real processes)",
            "replica_tag": tag,
        }
    finally:
        await engine.close(grace=30)


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
    parser.add_argument("--real", action="store_true", help="the real engine over a served demo fleet of --hosts")
    parser.add_argument("--seconds", type=float, default=20.0, help="--real: each cpu and update window")
    args = parser.parse_args()
    if args.real:
        replicas = max(args.replicas if args.replicas != 10_000 else 2 * args.hosts, 1)
        print(json.dumps(measure_real(args.hosts, replicas, args.seconds)))
        return
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

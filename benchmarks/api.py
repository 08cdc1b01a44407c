"""API benchmark: the /v1 API on the real engine over a 1,000-host in-memory fleet, measured from other processes.

    python benchmarks/api.py --hosts 1000 --seconds 30

The server (the engine on its event loop, the API on its own loop in its own thread) runs in this process;
the load comes from child processes on loopback, so their CPU does not count against the server:

1. idle: the engine's tick durations with no API traffic (the baseline, taken before and after 2.);
2. load: 10 clients send GET /v1/services at 200 requests/s in total, each request on a
   fixed schedule (latency is counted from when it should have been sent, so a slow
   answer also delays the ones behind it); the engine's ticks are timed meanwhile;
3. follow: 100 SSE followers (GET /v1/events?follow=1) while the engine journals 10
   events a second; each follower must receive every event, latency = arrival − event time.

Prints a JSON summary on its last line: get_services_p99_ms, tick_p99_growth_pct,
sse_followers, sse_dropped, sse_p99_ms, and the details behind them. A tick is timed on the event loop
(its coroutine's steps, as benchmarks/engine.py does: the loop time requests compete with); its wall time,
which includes the threads and solves it awaits, is tick_wall_*. Where a slow request's time went:
server_handler_* (inside the server), api_loop_lag_* (the API loop's lateness: what a request waits for),
loop_lag_* (the engine loop's), client_lag_p99_ms (the load process's own), render_* (building the list
document) and the load average over the run.
Targets (issue 14): p99 < 50 ms at 200 req/s, tick p99 growth <= 20 %, no SSE event dropped,
SSE p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from aiohttp import web  # noqa: E402

REPLICAS_PER_HOST = 2
SERVICES = 20


@types.coroutine
def _on_loop(coro: Coroutine[Any, Any, None], spent: list[float]) -> Generator[Any, Any, None]:
    """Drive `coro` as the event loop would, adding the time of each of its steps to spent[0] (as
    benchmarks/engine.py does): the time the tick holds the loop, not the time it waits on threads."""
    value: Any = None
    error: BaseException | None = None
    while True:
        t0 = time.perf_counter()
        try:
            step = coro.send(value) if error is None else coro.throw(error)
        except StopIteration:
            spent[0] += time.perf_counter() - t0
            return
        spent[0] += time.perf_counter() - t0
        try:
            value, error = (yield step), None
        except BaseException as e:  # handed back to the coroutine, as the loop would
            value, error = None, e


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cluster_text(hosts: int) -> str:
    """`hosts` hosts in 4 zones; SERVICES services of hosts × REPLICAS_PER_HOST / SERVICES replicas each."""
    lines = ['[cluster]\nname = "api-bench"\npoll_interval = "1s"\nfailure_timeout = "3s"\n',
             '[policy]\nsolver_time_limit = "10s"\n']  # fmt: skip
    for i in range(hosts):
        lines.append(
            f'[[hosts]]\nname = "node-{i:04d}"\naddress = "10.{i // 250}.{i % 250}.1"\n'
            f'labels = {{ zone = "z{i % 4}" }}\ncapacity = {{ cpu = 4, mem = "8GiB" }}\n'
        )
    per_service = hosts * REPLICAS_PER_HOST // SERVICES
    for s in range(SERVICES):
        lines.append(
            f'[[services]]\nname = "svc-{s:02d}"\ncommand = "sleep 1000"\nreplicas = {per_service}  # benchmark\n'
            'cpu = "500m"\nmem = "512MiB"\nspread_over = "zone"\n'
        )
    return "\n".join(lines)


# -- the load generators (child processes) ------------------------------------------------------------


async def load(url: str, token: str, rate: float, clients: int, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    per_client = rate / clients
    start = time.perf_counter() + 0.5
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []

    async def client(c: int) -> None:
        async with aiohttp.ClientSession(headers=headers) as session:
            i = 0
            while True:
                due = start + (i + c / clients) / per_client
                if due - start > seconds:
                    return
                now = time.perf_counter()
                if due > now:
                    await asyncio.sleep(due - now)
                async with session.get(url + "/v1/services") as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        errors.append(f"{resp.status}: {body[:200]!r}")
                latencies.append(time.perf_counter() - due)
                sizes.append(len(body))
                i += 1

    lags: list[float] = []

    async def heartbeat() -> None:  # this process's own lateness: a request it sends late counts as slow
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t0 - 0.01)

    beat = asyncio.create_task(heartbeat())
    await asyncio.gather(*(client(c) for c in range(clients)))
    beat.cancel()
    return {"latencies": latencies, "errors": errors, "bytes": statistics.median(sizes) if sizes else 0,
            "client_lag_p99": _percentile(lags, 0.99)}  # fmt: skip


async def follow(url: str, token: str, followers: int, expect: int, timeout: float) -> dict[str, Any]:
    """Each follower (its own connection) reads the stream until it has seen `expect` bench events."""
    headers = {"Authorization": f"Bearer {token}"}
    connected = 0
    results: list[tuple[set[int], list[float]]] = []
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(total=None))

    async def one() -> None:
        nonlocal connected
        seen: set[int] = set()
        delays: list[float] = []
        results.append((seen, delays))
        async with session.get(url + "/v1/events?follow=1") as resp, asyncio.timeout(timeout):
            await resp.content.readline()
            connected += 1
            while len(seen) < expect:
                line = await resp.content.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    doc = json.loads(line[6:])
                    if "bench_seq" in doc:
                        delays.append(time.time() - doc["at"])
                        seen.add(doc["bench_seq"])

    tasks = [asyncio.create_task(one()) for _ in range(followers)]
    while connected < followers and not any(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    print("connected", flush=True)  # the server starts the events once every follower listens
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    return {"received": [len(s) for s, _ in results], "delays": [d for _, ds in results for d in ds]}


def child(mode: str, token: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BENCH_API_TOKEN": token}  # not on the command line, where ps shows it
    return subprocess.Popen([sys.executable, __file__, f"--{mode}", *args], stdout=subprocess.PIPE, text=True, env=env)


# -- the server side ----------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from core import config as config_io
    from core.api.bind import parse_bind
    from core.api.server import ApiServer
    from core.api.tokens import Access, TokenStore
    from core.engine.engine import Engine
    from core.engine.events import EventKind
    from core.engine.journal import Journal
    from core.engine.memfleet import FakeFleet
    from core.model import Placement, ReplicaId

    work = Path(tempfile.mkdtemp(prefix="lm-api-bench-"))
    path = work / "cluster.toml"
    path.write_text(cluster_text(args.hosts), encoding="utf-8")
    config = config_io.load(path)
    # A host's frame is kept for a poll interval, as a real link keeps its last probe: the engine is measured,
    # not the fake rebuilding 1,000 observations at every look.
    fleet = FakeFleet(config, frame_interval=config.poll_interval)
    # Everything already runs (two replicas per host), so the engine only observes: the steady state. The
    # replicas were started under epoch 0, which the journal trusts (as benchmarks/engine.py does): without
    # that they are foreign, the engine sees all 2,000 missing and awaits a 2,000-start drift solve in a tick
    # (11–21 s tick walls in the idle phases on a loaded machine, where the solve ran into the measurement).
    slots = [h.name for h in config.hosts for _ in range(REPLICAS_PER_HOST)]
    replicas = [r for s in config.services for r in s.replica_ids()]
    fleet.run(Placement(dict(zip(replicas, slots, strict=True))))
    for records in fleet.records.values():
        records.update({r: dataclasses.replace(status, epoch=0) for r, status in records.items()})
    journal = Journal(work / "journal.db")
    journal.trust_epoch(0, "-")
    engine = Engine(config, fleet, journal, workers=1)
    kinds: collections.Counter[str] = collections.Counter()  # events while measured: no plan is expected
    ticks: list[float] = []  # wall time of each tick, awaited threads and solves included
    spans: list[float] = []  # the tick's time on the event loop: its coroutine's steps, what the API competes with
    tick = engine._tick

    async def timed_tick() -> None:  # the engine's loop calls this once per interval
        t0, spent = time.perf_counter(), [0.0]
        await _on_loop(tick(), spent)
        ticks.append(time.perf_counter() - t0)
        spans.append(spent[0])

    engine._tick = timed_tick  # type: ignore[method-assign]
    await engine.start(first_contact_timeout=2)
    await engine.wait_failover(timeout=120)
    tokens = TokenStore(work / "api-tokens.json", env={})
    server = ApiServer(engine, path, tokens)
    handled: list[float] = []  # GET /v1/services inside the server: from its handler's start to its answer

    @web.middleware
    async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
        t0 = time.perf_counter()
        response = await handler(request)
        if request.path == "/v1/services":
            handled.append(time.perf_counter() - t0)
        return response

    server.app.middlewares.append(timing)
    url = await server.start(parse_bind("127.0.0.1:0"), lambda m: print(m, file=sys.stderr))

    # Where a request's time goes: the event loop's lateness (a 10 ms heartbeat: a request waits at least this
    # long behind whatever holds the loop, an engine tick's synchronous steps or a render) and the list
    # renders themselves (the time /v1/services spends building its JSON on a cache miss).
    lags: list[float] = []
    renders: list[float] = []
    loads: list[float] = []
    from core.api import lists  # rendered in a thread of the API's loop

    dumps = lists._dumps

    def timed_dumps(build: Any) -> bytes:
        t0 = time.perf_counter()
        body = dumps(build)
        renders.append(time.perf_counter() - t0)
        return body

    lists._dumps = timed_dumps

    async def heartbeat(lags: list[float], loads: list[float] | None = None) -> None:
        loop = asyncio.get_running_loop()
        n = 0
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - t0 - 0.01)
            n += 1
            if loads is not None and n % 100 == 0:
                loads.append(os.getloadavg()[0])

    async def count_events() -> None:
        queue = engine.subscribe()
        while True:
            kinds[(await queue.get()).kind.value] += 1

    api_lags: list[float] = []  # the API loop's lateness (its own thread)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}  # the garbage collector's, by generation: every thread stops
    gc_began = [0.0]

    def gc_timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - gc_began[0])

    gc.callbacks.append(gc_timed)
    beat = asyncio.create_task(heartbeat(lags, loads))
    api_beat = server.on_api_loop(heartbeat(api_lags))
    counting = asyncio.create_task(count_events())
    token = tokens.token(Access.READ_ONLY).secret
    assert len(fleet.running()) == len(replicas) and all(isinstance(r, ReplicaId) for r in fleet.running())
    # the engine counts every replica as its own (none foreign, none missing): the steady state it would keep
    assert len(engine.snapshot().placement.assignments) == len(replicas), "the engine does not adopt the replicas"
    try:
        await asyncio.sleep(3)  # settle
        kinds.clear()
        me = psutil.Process()
        ticks.clear()
        spans.clear()
        lags.clear()
        cpu0 = sum(me.cpu_times()[:2])
        await asyncio.sleep(args.seconds)
        idle, span_idle = list(ticks), list(spans)
        lag_idle = list(lags)
        cpu_idle = sum(me.cpu_times()[:2]) - cpu0

        ticks.clear()
        spans.clear()
        lags.clear()
        api_lags.clear()
        for paused in pauses.values():
            paused.clear()
        renders.clear()
        handled.clear()
        cpu0, t0 = sum(me.cpu_times()[:2]), time.perf_counter()
        proc = child("load", token, url, str(args.rate), str(args.clients), str(args.seconds))
        out = await asyncio.to_thread(proc.communicate)
        loaded, span_load = list(ticks), list(spans)
        lag_load, render_load, handled_load = list(lags), list(renders), list(handled)
        api_lag_load = list(api_lags)
        gc_load = {g: list(p) for g, p in pauses.items()}
        cpu_load, load_seconds = sum(me.cpu_times()[:2]) - cpu0, time.perf_counter() - t0
        got = json.loads(out[0].strip().splitlines()[-1])

        # A second idle phase after the load: the machine's other work drifts over minutes, and a
        # baseline taken on both sides of the load cancels that drift instead of counting it as growth.
        ticks.clear()
        spans.clear()
        await asyncio.sleep(args.seconds)
        idle += ticks
        span_idle += spans

        events = int(args.sse_seconds * args.sse_rate)
        proc = child("follow", token, url, str(args.followers), str(events), str(args.sse_seconds + 30))
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)
        assert ready.strip() == "connected", ready
        await asyncio.sleep(0.5)
        ticks.clear()
        for seq in range(events):
            engine.record(EventKind.API_WRITE, f"benchmark event {seq}", data={"bench_seq": seq})
            await asyncio.sleep(1 / args.sse_rate)
        following = list(ticks)
        out = await asyncio.to_thread(proc.communicate)
        sse = json.loads(out[0].strip().splitlines()[-1])
    finally:
        beat.cancel()
        api_beat.cancel()
        counting.cancel()
        gc.callbacks.remove(gc_timed)
        await server.close()
        await engine.close(grace=5)

    lat_ms = [x * 1000 for x in got["latencies"]]
    idle_p99, load_p99 = _percentile(span_idle, 0.99) * 1000, _percentile(span_load, 0.99) * 1000
    wall_idle_p99, wall_load_p99 = _percentile(idle, 0.99) * 1000, _percentile(loaded, 0.99) * 1000
    sse_ms = [d * 1000 for d in sse["delays"]]
    return {
        "hosts": args.hosts,
        "replicas": len(replicas),
        "requests": len(lat_ms),
        "request_errors": len(got["errors"]),
        "rate_per_s": args.rate,
        "clients": args.clients,
        "services_body_bytes": got["bytes"],
        "get_services_p50_ms": round(_percentile(lat_ms, 0.5), 2),
        "get_services_p99_ms": round(_percentile(lat_ms, 0.99), 2),
        "get_services_max_ms": round(max(lat_ms), 2),
        "server_cpu_idle_pct": round(cpu_idle / args.seconds * 100, 1),  # of one core: engine + loop
        "server_cpu_load_pct": round(cpu_load / load_seconds * 100, 1),
        "ticks_idle": len(idle),
        "ticks_loaded": len(loaded),
        # the tick's time on the event loop (what API requests compete with); wall: with awaited threads and solves
        "tick_p50_idle_ms": round(_percentile(span_idle, 0.5) * 1000, 2),
        "tick_p99_idle_ms": round(idle_p99, 2),
        "tick_p99_loaded_ms": round(load_p99, 2),
        "tick_p99_growth_pct": round((load_p99 - idle_p99) / idle_p99 * 100, 1),
        "tick_wall_p50_idle_ms": round(_percentile(idle, 0.5) * 1000, 2),
        "tick_wall_p99_idle_ms": round(wall_idle_p99, 2),
        "tick_wall_p99_loaded_ms": round(wall_load_p99, 2),
        "tick_wall_p99_growth_pct": round((wall_load_p99 - wall_idle_p99) / wall_idle_p99 * 100, 1),
        "tick_wall_max_ms": round(max(idle + loaded, default=0) * 1000, 2),
        "plans_computed": kinds["plan.computed"],  # while measured; in the steady state none
        "server_handler_p50_ms": round(_percentile(handled_load, 0.5) * 1000, 2),
        "server_handler_p99_ms": round(_percentile(handled_load, 0.99) * 1000, 2),
        "client_lag_p99_ms": round(got["client_lag_p99"] * 1000, 2),
        "tick_p99_following_ms": round(_percentile(following, 0.99) * 1000, 2),
        "sse_followers": len(sse["received"]),
        "sse_events": events,
        "sse_dropped": sum(events - n for n in sse["received"]),
        "sse_p50_ms": round(_percentile(sse_ms, 0.5), 2),
        "sse_p99_ms": round(_percentile(sse_ms, 0.99), 2),
        "sse_max_ms": round(max(sse_ms), 2) if sse_ms else None,
        "api_loop_lag_p99_load_ms": round(_percentile(api_lag_load, 0.99) * 1000, 2),
        "api_loop_lag_max_load_ms": round(max(api_lag_load, default=0) * 1000, 2),
        "gc_load": {f"gen{g}": {"n": len(p), "max_ms": round(max(p, default=0) * 1000, 2)} for g, p in gc_load.items()},
        "loop_lag_p99_idle_ms": round(_percentile(lag_idle, 0.99) * 1000, 2),
        "loop_lag_p99_load_ms": round(_percentile(lag_load, 0.99) * 1000, 2),
        "loop_lag_max_load_ms": round(max(lag_load, default=0) * 1000, 2),
        "renders_load": len(render_load),
        "render_p50_ms": round(_percentile(render_load, 0.5) * 1000, 2),
        "render_p99_ms": round(_percentile(render_load, 0.99) * 1000, 2),
        "context": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load1_min": round(min(loads, default=0), 2),
            "load1_mean": round(statistics.fmean(loads), 2) if loads else None,
            "load1_max": round(max(loads, default=0), 2),
            "load1_at_end": os.getloadavg()[0],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the idle and of the load phase")
    parser.add_argument("--rate", type=float, default=200.0, help="GET /v1/services per second, all clients")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--sse-seconds", type=float, default=20.0)
    parser.add_argument("--sse-rate", type=float, default=10.0, help="events per second while followed")
    parser.add_argument("--load", nargs=4, metavar=("URL", "RATE", "CLIENTS", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--follow", nargs=4, metavar=("URL", "N", "EVENTS", "TIMEOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    token = os.environ.get("BENCH_API_TOKEN", "")
    if args.load:
        url, rate, clients, seconds = args.load
        print(json.dumps(asyncio.run(load(url, token, float(rate), int(clients), float(seconds)))))
    elif args.follow:
        url, n, events, timeout = args.follow
        print(json.dumps(asyncio.run(follow(url, token, int(n), int(events), float(timeout)))))
    else:
        print(json.dumps(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()

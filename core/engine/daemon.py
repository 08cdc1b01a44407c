"""Headless mode: the engine without a screen, logging one JSON object per line.

SIGTERM/SIGINT stop it cleanly (actions in flight finish, the journal keeps the
rest); SIGHUP or an edit of the cluster file re-reads it, and a bad file is
reported while the old desired state stays in force.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from core import config as config_io
from core.engine.engine import Engine
from core.engine.events import Event, EventKind
from core.errors import ConfigError
from core.model import ClusterConfig


class JsonLog:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, doc: dict[str, object]) -> None:
        self.stream.write(json.dumps(doc, sort_keys=False) + "\n")
        self.stream.flush()

    def event(self, event: Event) -> None:
        self.write(event.as_json())


async def run_daemon(
    path: Path,
    config: ClusterConfig,
    make_engine: Callable[[ClusterConfig], Engine],
    log: JsonLog,
    *,
    watch_interval: float = 1.0,
) -> int:
    engine = make_engine(config)
    queue = engine.subscribe()
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)

    async def forward() -> None:
        while True:
            event = await queue.get()
            if event.kind is not EventKind.STATE_UPDATED:
                log.event(event)

    def mtime() -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    async def watch() -> None:
        seen = mtime()
        while True:
            await asyncio.sleep(watch_interval)
            now = mtime()
            if now != seen:
                seen = now
                reload.set()

    async def reloader() -> None:
        while True:
            await reload.wait()
            reload.clear()
            try:
                engine.reload(config_io.load(path))
            except ConfigError as exc:
                log.write({
                    "at": round(time.time(), 3),
                    "event": EventKind.CONFIG_INVALID.value,
                    "message": f"{path} is invalid; keeping the previous configuration",
                    "errors": [str(p) for p in exc.problems],
                })  # fmt: skip

    log.write({"at": round(time.time(), 3), "event": "daemon.started", "message": f"watching {len(config.hosts)} hosts",
               "cluster": config.name, "auto_apply": engine.auto_apply, "read_only": engine.read_only})  # fmt: skip
    helpers = [asyncio.create_task(c) for c in (forward(), watch(), reloader())]
    try:
        await engine.start()
        await stop.wait()
        log.write({"at": round(time.time(), 3), "event": "daemon.stopping",
                   "message": "signal received: finishing actions in flight"})  # fmt: skip
        await engine.close()
        while not queue.empty():
            event = queue.get_nowait()
            if event.kind is not EventKind.STATE_UPDATED:
                log.event(event)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    log.write({"at": round(time.time(), 3), "event": "daemon.stopped", "message": "clean exit"})
    return 0

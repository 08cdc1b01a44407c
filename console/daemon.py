"""The headless front end: the engine without a screen, logging one JSON object per line.

SIGTERM/SIGINT stop it cleanly (actions in flight finish, the journal keeps the
rest); SIGHUP or an edit of the cluster file re-reads it (core.engine.config_watch,
which every front end shares), and a bad file is reported while the old desired
state stays in force.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from console.commands.api_server import ApiRequest, serving
from console.commands.autoscaling import autoscaling
from core.engine.config_watch import ConfigWatch
from core.engine.events import Event, EventKind
from core.errors import ConfigError
from core.model import ClusterConfig
from core.sanitize import PrintableFormatter

if TYPE_CHECKING:
    from console.clustered import Cluster
    from core.engine.engine import Engine
    from core.store.desired_doc import DesiredWatch


class JsonLog:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, doc: dict[str, object]) -> None:
        self.stream.write(json.dumps(doc, sort_keys=False) + "\n")
        self.stream.flush()

    def event(self, event: Event) -> None:
        self.write(event.as_json())

    def line(self, event: str, message: str, **fields: object) -> None:
        """A line of the daemon's own (not one of the engine's events)."""
        self.write({"at": round(time.time(), 3), "event": event, "message": message, **fields})


# The engine for a config; in clustered mode with the cluster's store and election.
MakeEngine = Callable[[ClusterConfig, "Cluster | None"], "Engine"]


async def run_daemon(
    path: Path,
    config: ClusterConfig,
    make_engine: MakeEngine,
    log: JsonLog,
    *,
    watch_interval: float = 1.0,
    api: ApiRequest | None = None,
    state_dir: Path | None = None,
    campaign: bool = True,
) -> int:
    """`state_dir`: where a clustered daemon keeps what is local (its copy of the desired state); `campaign`:
    False for a read-only daemon, which never leads."""
    # Warnings on stderr are for people and may quote hosts: sanitized (core.sanitize) like every front end.
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(PrintableFormatter("%(message)s"))
    logging.getLogger("loadmaster").addHandler(stderr)
    try:
        if not config.store.clustered:
            return await _run_daemon(path, config, make_engine, log, watch_interval=watch_interval, api=api)
        from console.clustered import clustered  # etcd's client only when the cluster uses it

        async with clustered(config, path, state_dir or path.parent, campaign=campaign) as cluster:
            log.line("store.connected", f"clustered: store {cluster.client.where}{cluster.prefix}, "
                     f"desired state revision {cluster.revision}", controller=cluster.election.me)  # fmt: skip
            return await _run_daemon(path, cluster.config, make_engine, log, watch_interval=watch_interval,
                                     api=api, cluster=cluster)  # fmt: skip
    finally:
        logging.getLogger("loadmaster").removeHandler(stderr)


async def _run_daemon(
    path: Path,
    config: ClusterConfig,
    make_engine: MakeEngine,
    log: JsonLog,
    *,
    watch_interval: float,
    api: ApiRequest | None,
    cluster: Cluster | None = None,
) -> int:
    engine = make_engine(config, cluster)
    queue = engine.subscribe()
    stop = asyncio.Event()

    def invalid(exc: ConfigError) -> None:
        log.line(EventKind.CONFIG_INVALID.value, f"{path} is invalid; keeping the previous configuration",
                 errors=[str(p) for p in exc.problems])  # fmt: skip

    # Clustered, the stored document is the desired state (`config push`); alone, the local file is.
    watch: ConfigWatch | DesiredWatch
    editor: StoredEditor | None = None
    if cluster is None:
        watch = ConfigWatch(path, engine.reload, invalid, interval=watch_interval, adopted=lambda: engine.revision)
    else:
        from core.store.desired_doc import DesiredWatch, StoredEditor

        # The API and the autoscaler write the stored document; the API reads its views from a local copy.
        mirror = Path(cluster.store.path).parent / "desired.toml"
        editor = StoredEditor(cluster.client, cluster.prefix, asyncio.get_running_loop(), mirror)
        watch = DesiredWatch(cluster.client, cluster.prefix, engine.reload, invalid, seen=cluster.revision,
                             mirror=mirror)  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, watch.request)
    if cluster is not None:  # SIGUSR1: step down (another daemon takes the lead)
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: stepping.append(asyncio.create_task(cluster.election.step_down()))
        )
    stepping: list[asyncio.Task[bool]] = []

    def write(event: Event) -> None:
        if event.kind is not EventKind.STATE_UPDATED:  # a snapshot changed: nothing to log
            log.event(event)

    async def forward() -> None:
        while True:
            write(await queue.get())

    log.line("daemon.started", f"watching {len(config.hosts)} hosts",
             cluster=config.name, auto_apply=engine.auto_apply, read_only=engine.read_only)  # fmt: skip
    helpers = [asyncio.create_task(forward()), asyncio.create_task(watch.run())]
    try:
        await engine.start()
        if editor is not None:
            await asyncio.to_thread(editor.read)  # the mirror holds the document in force from the start
        async with (
            autoscaling(engine, path if editor is None else editor, read_only=engine.read_only),
            serving(engine, api, read_only=engine.read_only, editor=editor) as server,
        ):
            if server is not None:
                log.line("api.listening", f"HTTP API on {server.url}/v1", url=server.url)
            await stop.wait()
            log.line("daemon.stopping", "signal received: finishing actions in flight")
        await engine.close()
        while not queue.empty():  # what the last actions reported
            write(queue.get_nowait())
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    log.line("daemon.stopped", "clean exit")
    return 0

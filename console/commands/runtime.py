"""Builds the engine the commands drive: the fleet (real or the local demo's), the journal, the policy.

The engine (ortools) and hostlink (asyncssh) are imported when an engine is built, not when the
CLI starts, so that `--help`, `--version` and `validate` answer at once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.api import Snapshot
from core.model import ClusterConfig
from core.private import private_dir

if TYPE_CHECKING:
    from console.clustered import Cluster
    from core.engine.engine import Engine
    from core.engine.journal import Journal
    from core.engine.ports import DemoControl
    from core.hostlink.fleet import Fleet


def journal_path(config: ClusterConfig) -> Path:
    return Path(os.path.expanduser(f"~/.loadmaster/{config.name}/journal.db"))


def api_tokens_path(config: ClusterConfig) -> Path:
    """The HTTP API's tokens, beside the journal in the controller's state directory."""
    return journal_path(config).parent / "api-tokens.json"


def open_journal(config: ClusterConfig, *, read_only: bool) -> Journal:
    """The cluster's journal. A command that only looks (status, plan) goes on without it when it is
    locked or corrupted, saying so on stderr; one that acts stops with the JournalError (file and fix)."""
    from core.engine.journal import Journal
    from core.errors import JournalError

    private_dir(journal_path(config).parent.parent)  # ~/.loadmaster, made world-readable by older versions
    try:
        return Journal(journal_path(config))
    except JournalError as exc:
        if not read_only:
            raise
        print(f"loadmaster: warning: {exc} (going on without it: nothing is recorded)", file=sys.stderr)
        return Journal(":memory:")


def fleet_for(config: ClusterConfig, demo_workdir: Path | None = None) -> Fleet:
    """A demo cluster is reached with the keys its demo fleet wrote (`loadmaster demo [--serve]`
    running); any other with the user's own keys, agent and known_hosts."""
    from core.hostlink.demo import default_workdir
    from core.hostlink.fleet import Fleet

    workdir = demo_workdir or default_workdir(config.name)
    if config.demo and (workdir / "known_hosts").exists():
        return Fleet(config, known_hosts=str(workdir / "known_hosts"), client_keys=[str(workdir / "client_key")])
    return Fleet(config)


def make_engine(
    config: ClusterConfig,
    *,
    read_only: bool = False,
    auto_apply: bool | None = None,
    failover_auto: bool | None = None,
    demo: DemoControl | None = None,
    demo_workdir: Path | None = None,
    take_over: bool = False,
    cluster: Cluster | None = None,
) -> Engine:
    """`cluster`: clustered mode — the etcd store and election instead of the local journal."""
    from core.engine.engine import Engine

    return Engine(
        config,
        fleet_for(config, demo_workdir),
        open_journal(config, read_only=read_only) if cluster is None else cluster.store,
        read_only=read_only,
        auto_apply=auto_apply,
        failover_auto=failover_auto,
        demo=demo,
        take_over=take_over,
        election=None if cluster is None else cluster.election,
    )


def demo_hint(snapshot: Snapshot) -> str | None:
    """What to do when a demo cluster's hosts are all unreachable: its fleet is simply not running."""
    if snapshot.config.demo and all(not o.state.reachable for o in snapshot.hosts.values()):
        return "hint: no demo host answers; start the demo fleet with `loadmaster demo` (or `loadmaster demo --serve`)"
    return None


@contextlib.asynccontextmanager
async def open_engine(config: ClusterConfig, *, read_only: bool, roll_forward: bool = True) -> AsyncIterator[Engine]:
    """An engine that has looked at every host once, for one-shot commands. On a clustered cluster it joins
    as a standby that never campaigns: it reads the shared store (plans, holds) and what it writes there
    (`drain`, `uncordon`) reaches the leader, which acts on it; actions of its own are refused, naming the
    leader."""
    async with contextlib.AsyncExitStack() as stack:
        cluster = None
        if config.store.clustered:
            from console.clustered import clustered

            where = journal_path(config).parent
            cluster = await stack.enter_async_context(clustered(config, Path(config.source), where, campaign=False))
        engine = make_engine(config if cluster is None else cluster.config, read_only=read_only, cluster=cluster)
        try:
            await engine.start(run_loop=False, roll_forward=roll_forward)
            yield engine
        finally:
            await engine.close()

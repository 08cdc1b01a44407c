"""`loadmaster console`: the interactive console on the fleet in cluster.toml."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands.api_server import ApiRequest, add_api, api_request, serving
from console.commands.autoscaling import autoscaling
from console.commands.ending import Ending
from console.commands.options import add_config, add_read_only, add_take_over, load_config
from console.commands.runtime import journal_path, make_engine
from core import config as config_io
from core.model import ClusterConfig

if TYPE_CHECKING:
    from core.engine.engine import Engine


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="the interactive console (the default command)")
    add_config(p)
    add_read_only(p)
    add_take_over(p)
    add_api(p, by_default="only when asked")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    path = config_io.resolve_path(args.config)
    api = api_request(args.api, cfg, path, from_file=False)
    if args.take_over and not confirm_take_over(cfg.name):
        print("not taking over: nothing changed")
        return 1
    if cfg.store.clustered:
        return asyncio.run(_clustered_console(cfg, path, api))
    engine = make_engine(cfg, read_only=args.read_only, take_over=args.take_over)
    return asyncio.run(_console(engine, read_only=args.read_only, api=api, path=path))


async def _console(engine: Engine, *, read_only: bool, api: ApiRequest | None, path: Path) -> int:
    with Ending() as ending:
        await run_console(engine, ending, read_only=read_only, api=api, path=path)
    return ending.code or 0


async def _clustered_console(cfg: ClusterConfig, path: Path, api: ApiRequest | None) -> int:
    """Clustered, the daemons act (the elected leader); the console follows the election without campaigning:
    it is a standby, read-only, with a banner naming the leader. Changes go through `loadmaster config push`."""
    from console.clustered import clustered

    with Ending() as ending:
        async with clustered(cfg, path, journal_path(cfg).parent, campaign=False) as cluster:
            engine = make_engine(cluster.config, cluster=cluster)
            await run_console(engine, ending, read_only=True, api=api, path=None)
    return ending.code or 0


def confirm_take_over(cluster: str) -> bool:
    """--take-over fences off a controller that may be running fine: a person says so twice."""
    try:
        answer = input(
            f"Take over cluster {cluster!r}? A controller that holds it now is fenced off every host "
            "and goes read-only. [y/N] "
        )
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


async def run_console(
    engine: Engine, ending: Ending, *, read_only: bool, api: ApiRequest | None = None, path: Path | None = None
) -> None:
    """`path`: the cluster file the engine's config came from: the console follows its edits (as the daemon does),
    `:scale` writes it, and so does the autoscaler. None in a demo with `--hosts` beyond its file (the fleet is
    larger than the file): nothing is followed or written there."""
    # Textual is imported here so that the other commands start without it.
    from console.app import LoadmasterApp

    await engine.start(first_contact_timeout=1.5)
    try:
        async with (
            autoscaling(engine, path, read_only=read_only),
            serving(engine, api, read_only=read_only),  # the same engine the screens draw
        ):
            ending.app = app = LoadmasterApp(engine, read_only=read_only, config_path=path)
            await app.run_async()
    finally:
        await engine.close(grace=10)

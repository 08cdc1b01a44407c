"""`loadmaster console`: the interactive console on the fleet in cluster.toml."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from console.commands.options import add_config, add_read_only, load_config
from console.commands.runtime import make_engine

if TYPE_CHECKING:
    from core.engine.engine import Engine


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="the interactive console (the default command)")
    add_config(p)
    add_read_only(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    return asyncio.run(run_console(make_engine(cfg, read_only=args.read_only), read_only=args.read_only))


async def run_console(engine: Engine, *, read_only: bool) -> int:
    # Textual is imported here so that the other commands start without it.
    from console.app import LoadmasterApp

    await engine.start(first_contact_timeout=1.5)
    try:
        await LoadmasterApp(engine, read_only=read_only).run_async()
    finally:
        await engine.close(grace=10)
    return 0

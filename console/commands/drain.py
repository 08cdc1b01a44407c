"""`loadmaster drain HOST [--cordon-only]` and `loadmaster uncordon HOST`: hold a host, or let it go.

The hold is kept beside the journal (core.engine.holds), so a console or daemon running on the same
controller sees it at its next tick; a drain's moves are applied here, action by action, like `apply`.
"""

from __future__ import annotations

import argparse
import asyncio

from console.commands.options import add_config, add_read_only, load_config
from console.commands.runtime import open_engine
from core.engine.events import EventKind
from core.errors import ReadOnly
from core.sanitize import printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "drain",
        help="move every replica off a host and keep new ones away (--cordon-only: only keep new ones away)",
    )
    p.add_argument("host", help="a host of the cluster file")
    p.add_argument("--cordon-only", action="store_true", help="take no new replicas; what runs there stays")
    add_config(p)
    add_read_only(p)
    p.set_defaults(run=run_drain)
    u = sub.add_parser("uncordon", help="let a cordoned or drained host take replicas again")
    u.add_argument("host", help="a host of the cluster file")
    add_config(u)
    add_read_only(u)
    u.set_defaults(run=run_uncordon)


def run_drain(args: argparse.Namespace) -> int:
    verb = "cordon" if args.cordon_only else "drain"
    if args.read_only:
        raise ReadOnly(f"{verb} {args.host}")
    return asyncio.run(_drain(args))


def run_uncordon(args: argparse.Namespace) -> int:
    if args.read_only:
        raise ReadOnly(f"uncordon {args.host}")
    return asyncio.run(_uncordon(args))


async def _drain(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    async with open_engine(cfg, read_only=False) as engine:
        if args.cordon_only:
            await engine.cordon(args.host)
            print(f"{args.host} cordoned: it takes no new replicas (what runs there stays)")
            return 0
        queue = engine.subscribe()
        task = asyncio.create_task(engine.drain(args.host))
        while not (task.done() and queue.empty()):
            try:
                event = await asyncio.wait_for(queue.get(), 0.2)
            except TimeoutError:
                continue
            if event.kind in (EventKind.ACTION_DONE, EventKind.ACTION_FAILED):
                mark = "ok  " if event.kind is EventKind.ACTION_DONE else "FAIL"
                print(f"{mark} {printable(event.message)}", flush=True)
        plan = task.result()
        held = engine.snapshot().holds.get(args.host)
        left = engine.snapshot().placement.on_host(args.host)
        if held == "drained":
            print(f"{args.host} drained: it runs no replica and takes none")
            return 0
        names = ", ".join(str(r) for r in left)
        if plan is None:  # another controller acts on the cluster: the hold is its cue
            print(f"{args.host} draining: the controller acting on the cluster moves its replicas ({names})")
            return 0
        print(
            f"{args.host} draining: {len(plan.actions)} actions run, {len(left)} replicas still there ({names}); "
            "a running console or daemon keeps moving them"
        )
        return 4


async def _uncordon(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    async with open_engine(cfg, read_only=False) as engine:
        await engine.uncordon(args.host)
        print(f"{args.host} uncordoned: it takes replicas again")
    return 0

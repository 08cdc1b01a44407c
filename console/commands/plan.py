"""`loadmaster plan`: compute a plan (or every failover plan) and export it; applies nothing."""

from __future__ import annotations

import argparse
import asyncio

from console.commands.options import add_config, load_config
from console.commands.runtime import demo_hint, open_engine
from console.plan_words import solver_words
from core.engine.planfile import FORMATS
from core.sanitize import printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="compute and export a plan; apply nothing")
    add_config(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: print the actions)")
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the file name, else json)")
    p.add_argument("--failover", action="store_true", help="export the failover plan of every host and zone")
    p.add_argument(
        "--repack", action="store_true", help="pack onto the fewest hosts even if running replicas must move"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    async with open_engine(load_config(args), read_only=True) as engine:
        if args.failover:
            await engine.wait_failover()
            plans = engine.snapshot().failover
            if args.output:
                engine.export_failover(args.output, args.format)
                print(f"wrote {len(plans)} failover plans to {args.output}")
            for f in plans:
                verdict = "survives" if f.survives else f"DEGRADES {', '.join(f.degraded)}"
                print(f"lose {f.scope} {f.target}: {len(f.moves)} replicas move, {verdict}")
            return 0
        plan = await engine.plan(repack=args.repack)
        for action in plan.actions:
            print(printable(action))  # replica names come from the hosts' records
        for replica, why in sorted(plan.unplaced.items()):
            print(f"unplaced {printable(replica)}: {printable(why)}")
        for replica, why in sorted(plan.waiting.items()):
            print(f"waits {printable(replica)}: {printable(why)}")
        print(f"{len(plan.actions)} actions; solver {plan.status.value}{solver_words(plan, 'plan --repack repacks')}")
        hint = demo_hint(engine.snapshot())
        if hint:
            print(hint)
        if args.output:
            engine.export(plan, args.output, args.format)
            print(f"wrote {args.output}")
        return 0

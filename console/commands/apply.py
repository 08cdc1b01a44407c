"""`loadmaster apply FILE`: apply an exported plan, refusing a malformed or stale one before any change.

Order matters: the file is read and checked (schema, then every action against the current
config), then its staleness, and only then does the journal's unfinished plan (if a controller
was killed mid-apply) roll forward — after which the plan is checked for staleness once more.
"""

from __future__ import annotations

import argparse
import asyncio

from console.commands.options import add_config, add_read_only, load_config
from console.commands.runtime import open_engine
from core.engine.events import EventKind
from core.engine.planfile import read_plan
from core.errors import ReadOnly, StalePlan
from core.model import Plan
from core.sanitize import printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="apply an exported plan (refuses a stale one)")
    p.add_argument("file", help="a plan written by `loadmaster plan -o` (json or toml)")
    add_config(p)
    add_read_only(p)
    p.add_argument("--force", action="store_true", help="apply even though the fleet changed since the plan")
    p.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = read_plan(args.file)
    if args.read_only and not args.dry_run:
        raise ReadOnly(f"apply {args.file}")
    return asyncio.run(_run(args, plan))


async def _run(args: argparse.Namespace, plan: Plan) -> int:
    cfg = load_config(args)
    async with open_engine(cfg, read_only=args.dry_run, roll_forward=False) as engine:
        engine.check_plan(plan, args.file)
        reasons = engine.check_stale(plan)
        if reasons and not args.force:
            raise StalePlan(reasons)
        resumed = await engine.roll_forward()
        if resumed:
            print(f"rolled forward {resumed} unfinished plans from the journal first")
            reasons = engine.check_stale(plan)
            if reasons and not args.force:
                raise StalePlan(reasons)
        for reason in reasons:
            print(f"warning (forced): {reason}")
        if args.dry_run:
            for action in plan.actions:
                print(f"would {printable(action)}")
            print(f"{len(plan.actions)} actions; nothing changed (--dry-run)")
            return 0
        queue = engine.subscribe()
        total = len(plan.actions)
        task = asyncio.create_task(engine.apply_file_plan(plan, force=args.force, source=args.file))
        seen = 0
        while not (task.done() and queue.empty()):
            try:
                event = await asyncio.wait_for(queue.get(), 0.2)
            except TimeoutError:
                continue
            if event.kind in (EventKind.ACTION_DONE, EventKind.ACTION_FAILED):
                seen += 1
                mark = "ok  " if event.kind is EventKind.ACTION_DONE else "FAIL"
                print(f"[{seen}/{total}] {mark} {printable(event.message)}", flush=True)
        progress = task.result()
        print(f"applied: {len(progress.done)} done, {len(progress.failed)} failed")
        return 0 if not progress.failed else 4

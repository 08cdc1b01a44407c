"""`loadmaster leader step-down`: ask the daemon that leads a clustered cluster to give up the lead.

It stops acting at once and lets another daemon campaign first (SIGUSR1 to the leader's process, or
the API's POST /v1/leader/step-down, do the same). `loadmaster status` shows who leads afterwards.
"""

from __future__ import annotations

import argparse
import asyncio

from console.commands.options import add_config, load_config
from core.errors import LoadmasterError
from core.model import ClusterConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leader", help="clustered mode: ask the leading daemon to step down")
    verbs = p.add_subparsers(title="verbs", metavar="VERB", required=True)
    down = verbs.add_parser("step-down", help="the leader stops acting; another daemon takes the lead")
    add_config(down)
    down.set_defaults(run=run_step_down)


def run_step_down(args: argparse.Namespace) -> int:
    config = load_config(args)
    if not config.store.clustered:
        raise LoadmasterError(f'{config.source}: [cluster] store is "sqlite": there is no election to step down '
                              "from (stop the controller, or start another one with --take-over)")  # fmt: skip
    leader = asyncio.run(_step_down(config))
    if leader is None:
        print(f"cluster {config.name!r}: no daemon leads now; nothing to step down from")
        return 1
    print(f"asked {leader} to step down; another daemon takes the lead (see `loadmaster status`)")
    return 0


async def _step_down(config: ClusterConfig) -> str | None:
    from console.clustered import client_for, prefix_of
    from core.store.election import request_step_down

    client = client_for(config)
    try:
        return await request_step_down(client, prefix_of(config))
    finally:
        await client.close()

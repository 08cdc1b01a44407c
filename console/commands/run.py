"""`loadmaster run --headless`: the daemon that observes, fails over and (optionally) rebalances."""

from __future__ import annotations

import argparse
import asyncio
import sys

from console.commands.api_server import add_api, api_request
from console.commands.options import add_config, add_read_only, add_take_over, load_config
from console.commands.runtime import journal_path, make_engine
from console.daemon import JsonLog, run_daemon
from core import config as config_io
from core.errors import LoadmasterError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the daemon: observe, fail over, apply within policy, log JSON lines")
    add_config(p)
    add_read_only(p)
    add_take_over(p)
    p.add_argument("--headless", action="store_true", required=True, help="run without the console (required)")
    p.add_argument("--auto-apply", action="store_true", help="apply rebalancing plans within [policy] on its own")
    p.add_argument("--log", metavar="FILE", help="append JSON lines here instead of stdout")
    add_api(p, by_default="also where [api] listen says")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = config_io.resolve_path(args.config)
    cfg = load_config(args)
    # Without --auto-apply the file's [policy] auto_apply decides, also after an edit (None: follow the file).
    auto = True if args.auto_apply else None
    api = api_request(args.api, cfg, path, from_file=True)
    stream = open(args.log, "a", buffering=1) if args.log else sys.stdout  # noqa: SIM115
    try:
        return asyncio.run(
            run_daemon(
                path,
                cfg,
                lambda c, cluster: make_engine(
                    c,
                    read_only=args.read_only,
                    auto_apply=auto,
                    failover_auto=True,
                    take_over=args.take_over,
                    cluster=cluster,
                ),
                JsonLog(stream),
                api=api,
                state_dir=journal_path(cfg).parent,
                campaign=not args.read_only,
            )
        )
    except OSError as exc:
        raise LoadmasterError(f"cannot run: {exc}") from None
    finally:
        if stream is not sys.stdout:
            stream.close()

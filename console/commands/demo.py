"""`loadmaster demo --serve`: the embedded demo fleet alone, until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from console.commands.options import add_config, load_config
from core.errors import LoadmasterError
from core.hostlink.demo import DemoFleet, default_workdir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="serve the embedded demo fleet (SSH hosts on loopback running real processes)",
        description="Serve the demo hosts of the cluster file, one SSH server per host on loopback, "
        "and print an ssh command line for each. --serve is the only mode for now: "
        "the console on top of the demo fleet comes later.",
    )
    add_config(p)
    p.add_argument("--serve", action="store_true", help="run only the fleet (no console) until interrupted")
    p.add_argument("--hosts", type=int, metavar="N", help="serve N demo hosts in all, adding hosts beyond the file's")
    p.add_argument("--workdir", metavar="DIR", help="keys, known_hosts, host homes (default ~/.loadmaster/demo/NAME)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.serve:
        raise LoadmasterError("demo: only --serve is available for now (loadmaster demo --serve)")
    cfg = load_config(args)
    declared = sum(1 for h in cfg.hosts if h.demo)
    if declared == 0 and not args.hosts:
        raise LoadmasterError(f"{cfg.source}: no demo hosts (set demo = true in [cluster], or pass --hosts N)")
    extra = 0
    if args.hosts is not None:
        if args.hosts < max(declared, 1):
            raise LoadmasterError(f"--hosts {args.hosts}: {cfg.source} has {declared} demo hosts; use at least that")
        extra = args.hosts - declared
    workdir = Path(args.workdir) if args.workdir else default_workdir(cfg.name)
    return asyncio.run(_serve(DemoFleet(cfg, workdir, extra_hosts=extra)))


async def _serve(fleet: DemoFleet) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    try:
        width = max(len(h.name) for h in fleet.hosts)
        for host in fleet.hosts:
            print(f"{host.name:<{width}}  {fleet.ssh_command(host.name)}")
        print(f"serving {len(fleet.hosts)} demo hosts (known_hosts {fleet.known_hosts}); Ctrl-C stops them", flush=True)
        await stop.wait()
    finally:
        await fleet.stop()
    return 0

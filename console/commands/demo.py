"""`loadmaster demo`: the console on the embedded demo fleet; `--serve`: the fleet alone, until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands.console import run_console
from console.commands.ending import Ending
from console.commands.options import add_config, add_read_only, load_config
from console.commands.runtime import make_engine
from core.errors import LoadmasterError
from core.model import ClusterConfig, ReplicaId

if TYPE_CHECKING:
    from core.hostlink.demo import DemoFleet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the console on the embedded demo fleet (SSH hosts on loopback running real processes)",
        description="Start the demo hosts of the cluster file, one SSH server per host on loopback running "
        "real processes, and open the console on them (press x on a host to stop or restart it). "
        "With --serve, only serve the fleet and print an ssh command line per host.",
    )
    add_config(p)
    add_read_only(p)
    p.add_argument("--serve", action="store_true", help="run only the fleet (no console) until interrupted")
    p.add_argument("--hosts", type=int, metavar="N", help="serve N demo hosts in all, adding hosts beyond the file's")
    p.add_argument("--workdir", metavar="DIR", help="keys, known_hosts, host homes (default ~/.loadmaster/demo/NAME)")
    p.add_argument(
        "--load",
        action="append",
        metavar="SERVICE=SHARE",
        help="set a demo service's load and exit: its replicas (running, or started later) burn SHARE of "
        "their cpu request, e.g. --load web=0.9; repeatable",
    )
    p.add_argument(
        "--wedge",
        metavar="SERVICE/INDEX",
        help="in a demo running already (the console or --serve, same file and workdir): make that replica's "
        "server answer 503, so its http check fails and the controller restarts it; then exit",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.hostlink.demo import DemoFleet, default_workdir  # asyncssh loads only when a fleet runs

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
    if args.load:
        return _set_load(cfg, workdir, args.load)
    if args.wedge is not None:
        return _wedge(cfg, workdir, args.wedge)
    fleet = DemoFleet(cfg, workdir, extra_hosts=extra)
    if args.serve:
        return asyncio.run(_serve(fleet))
    # the fleet is the file's (no --hosts beyond it): the console follows the file and the autoscaler writes it
    path = Path(cfg.source) if extra == 0 else None
    return asyncio.run(_console(fleet, workdir, read_only=args.read_only, path=path))


def _set_load(cfg: ClusterConfig, workdir: Path, items: list[str]) -> int:
    from core.hostlink import demoload

    for load in demoload.write(workdir, cfg, demoload.parse(items)):
        print(load)
    print(f"set in {demoload.path(workdir)}: replicas read it within a second")
    return 0


def _wedge(cfg: ClusterConfig, workdir: Path, replica: str) -> int:
    from core.hostlink.demo_wedge import wedge

    try:
        which = ReplicaId.parse(replica)
    except ValueError as exc:
        raise LoadmasterError(f"--wedge: {exc}") from None
    host, pid = wedge(cfg, workdir, which)
    print(f"{which} wedged on {host} (pid {pid}): it answers 503 until the controller restarts it")
    return 0


async def _console(demo: DemoFleet, workdir: Path, *, read_only: bool, path: Path | None) -> int:
    with Ending() as ending:  # a signal, too, stops the demo hosts' processes (no orphans)
        try:
            await demo.start()
            engine = make_engine(demo.config, read_only=read_only, demo=demo, demo_workdir=workdir)
            await run_console(engine, ending, read_only=read_only, path=path)
        finally:
            await demo.stop()
    return ending.code or 0


async def _serve(fleet: DemoFleet) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
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

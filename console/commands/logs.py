"""`loadmaster logs SERVICE/INDEX [-f] [-n N]`: a replica's stdout and stderr, from the host that has them.

The host is the one running the replica; when none runs it, the reachable host whose log of it was
written last (where it ran before it stopped or crashed). Everything sent to a host is one quoted
argument of the LOGS script (core/hostlink/scripts.py); what the log holds is shown with control and
bidi characters as visible escapes (a log is host-supplied text), line breaks kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import TYPE_CHECKING

from console.commands.options import add_config, load_config
from console.commands.runtime import fleet_for
from core.errors import HostUnreachable, LoadmasterError
from core.model import ClusterConfig, HostState, ReplicaId
from core.sanitize import printable

if TYPE_CHECKING:
    from core.hostlink.fleet import Fleet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "logs",
        help="print a replica's stdout and stderr (-f to follow)",
        description="Print the last lines of a replica's log from the host that runs it (or, when it does not "
        "run, the host that has its newest log), following new lines and rotations with -f.",
    )
    add_config(p)
    p.add_argument("replica", metavar="SERVICE/INDEX", help="the replica, e.g. web/0")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing what it writes (Ctrl-C ends)")
    p.add_argument("-n", "--lines", type=_lines, default=50, metavar="N", help="last N lines first (default 50)")
    p.add_argument("--wait", type=float, metavar="SECONDS", help="give up on silent hosts after this long")
    p.set_defaults(run=run)


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} lines: use 0 or more")
    return value


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    try:
        replica = ReplicaId.parse(args.replica)
    except ValueError as exc:
        raise LoadmasterError(str(exc)) from None
    if replica.service not in {s.name for s in cfg.services}:
        known = ", ".join(s.name for s in cfg.services) or "none"
        raise LoadmasterError(f'"{replica.service}" is not a service in {cfg.source} (services: {known})')
    wait = args.wait if args.wait is not None else cfg.defaults.connect_timeout + 2 * cfg.poll_interval
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_logs(cfg, replica, args.lines, args.follow, wait))
    return 0


async def _logs(cfg: ClusterConfig, replica: ReplicaId, lines: int, follow: bool, wait: float) -> None:
    fleet = fleet_for(cfg)
    await fleet.start()
    try:
        host = await _where(fleet, replica, wait)
        print(f"==> {replica} on {host} <==", file=sys.stderr)
        async for chunk in fleet.log_stream(host, replica, lines, follow):
            _write(chunk)
    finally:
        await fleet.close()


def _write(data: bytes) -> None:
    sys.stdout.write(printable(data.decode("utf-8", "replace"), newlines=True))
    sys.stdout.flush()


async def _where(fleet: Fleet, replica: ReplicaId, wait: float) -> str:
    """The host that runs `replica`, else the reachable one with its newest log."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        observations = fleet.observations()
        for o in observations.values():
            if any(r.replica == replica and r.running for r in o.replicas):
                return o.host
        if all(o.state is not HostState.UNKNOWN for o in observations.values()):
            break
        await asyncio.sleep(0.1)
    observations = fleet.observations()
    for o in observations.values():  # seen late, on a host that answered after the others
        if any(r.replica == replica and r.running for r in o.replicas):
            return o.host
    reachable = [name for name, o in observations.items() if o.state.reachable]
    ages: dict[str, float] = {}
    for name in reachable:
        with contextlib.suppress(HostUnreachable, LoadmasterError):
            age = await fleet.log_age(name, replica)
            if age is not None:
                ages[name] = age
    if ages:
        return min(ages, key=lambda name: ages[name])
    silent = [f"{name} ({o.state.value})" for name, o in observations.items() if not o.state.reachable]
    where = f"; not reachable: {', '.join(silent)}" if silent else ""
    raise LoadmasterError(f"{replica} is not running and no reachable host has its log{where}")
